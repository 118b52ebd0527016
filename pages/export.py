"""Step 7: take the trained model away: a bundle with its model card, ONNX, TorchScript, or code."""

import streamlit as st

from appkit import exports, inference, navigation
from tlcore.errors import TLCoreError
from tlcore.export.exporter import FILE_NAMES, FORMATS, export_into_run, recorded_exports
from tlcore.export.model_card import CARD_FILE, CONFUSION_FILE
from tlcore.export.reproduce import SCRIPT_FILE

navigation.through_app()

FORMAT_TEXT = {
    "bundle": (
        "Model bundle",
        "The weights (`model.safetensors`), `tlcore.json` (classes in order, preprocessing, "
        "settings, metrics) and a `README.md` model card with the validation numbers. "
        'Load it anywhere with `tlcore.load("bundle.zip")`.',
    ),
    "onnx": (
        "ONNX",
        "One `.onnx` file for ONNX Runtime, phones, browsers and other languages. Any batch "
        "size. Checked against PyTorch on your photos as it is written.",
    ),
    "torchscript": (
        "TorchScript",
        "One `.pt` file that PyTorch (C++ or Python) runs without timm or this app: "
        "`torch.jit.load(...)`. Checked against PyTorch on your photos as it is written.",
    ),
    "script": (
        "Reproduce in code",
        "A `train.py` you can read and run with torch and timm only: the same split, the same "
        "frozen layers and the same settings, retrained from the same pretrained weights.",
    ),
}

st.title("7 · Export")
st.markdown(
    "Take the trained model with you. Images must be prepared the way the bundle says "
    "(size, crop, normalisation); `tlcore.load` does that for you."
)

picked = inference.pick_run("export")
if picked is None:
    st.stop()
run, checkpoint = picked

try:
    done = recorded_exports(run)
except TLCoreError as exc:
    st.error(str(exc))
    st.stop()

for fmt in FORMATS:
    title, text = FORMAT_TEXT[fmt]
    with st.container(border=True):
        st.subheader(title)
        st.markdown(text)
        label = "Export again" if fmt in done else "Export"
        if st.button(label, key=f"export_{fmt}"):
            with st.spinner(f"Writing the {title.lower()}…"):
                try:
                    done[fmt] = export_into_run(run, fmt, checkpoint)
                except TLCoreError as exc:
                    st.error(str(exc))
        result = done.get(fmt)
        if result is None:
            continue
        if result.checkpoint != checkpoint:
            st.caption(
                f"This file holds the **{result.checkpoint}** checkpoint; press "
                "*Export again* for the one selected above."
            )
        elif exports.is_older_than_checkpoint(result, inference.checkpoint_stamp(run, checkpoint)):
            st.warning(
                "The run saved a newer model after this file was written; press "
                "*Export again* to take the newer one.",
                icon=":material/update:",
            )
        exports.show_check(result)
        exports.download_button(result, f"{run.id}-{FILE_NAMES[fmt]}", key=f"download_{fmt}")
        if fmt == "bundle":
            card = exports.member(result, CARD_FILE)
            if card is not None:
                with st.expander("Model card (README.md)"):
                    st.markdown(
                        card.decode("utf-8").replace(f"![Confusion matrix]({CONFUSION_FILE})", "")
                    )
                    chart = exports.member(result, CONFUSION_FILE)
                    if chart is not None:
                        st.image(chart, caption="confusion_matrix.png", width=420)
        if fmt == "script":
            script = exports.member(result, SCRIPT_FILE)
            if script is not None:
                with st.expander("train.py"):
                    st.code(script.decode("utf-8"), language="python")
