"""Step 7: take the trained model away: a bundle with its model card, ONNX, TorchScript, or code."""

import time

import streamlit as st

from appkit import exports, inference, navigation, tasks
from appkit.text import md
from tlcore.errors import TLCoreError
from tlcore.export.exporter import FILE_NAMES, FORMATS, ExportResult, recorded_exports
from tlcore.export.jobs import ACTIVE, export_job, job_progress, start_export
from tlcore.export.model_card import CARD_FILE, CONFUSION_FILE
from tlcore.export.reproduce import SCRIPT_FILE
from tlcore.export.tasks import export_task

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


def start(fmt: str) -> None:
    """Queue the export in its own process: later clicks on this page cannot cancel it."""
    try:
        start_export(run, fmt, checkpoint)
    except TLCoreError as exc:
        st.session_state[f"export_error_{fmt}"] = str(exc)


def any_active() -> bool:
    jobs = [export_job(run, fmt) for fmt in FORMATS]
    return any(job and job.get("state") in ACTIVE for job in jobs)


def show_result(fmt: str, result: ExportResult) -> None:
    """The written file: its check, a download button, and a look inside."""
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


@st.fragment(run_every=1.0 if any_active() else None)
def formats() -> None:
    """Every format the same way: a button, the job's progress, then the file. Re-read
    every second while an export is being written."""
    try:
        done = recorded_exports(run)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    task = tasks.run_task(run)
    for fmt in export_task(task).formats:  # a text run has no train.py
        title, text = FORMAT_TEXT[fmt]
        text = tasks.view(task).export_words.get(fmt, text)  # a detector's ONNX: its own
        job = export_job(run, fmt)
        state = job.get("state") if job else None
        with st.container(border=True):
            st.subheader(title)
            st.markdown(text)
            st.button(
                "Export again" if fmt in done else "Export",
                key=f"export_{fmt}",
                on_click=start,
                args=(fmt,),
                disabled=state in ACTIVE,
                help="Runs in the background: you can export other formats or leave the page.",
            )
            problem = st.session_state.pop(f"export_error_{fmt}", None)
            if problem:
                st.error(md(problem))
            if state in ACTIVE:
                since = job.get("started_at") or job.get("queued_at") or time.time()
                if state == "running":
                    waiting = f"Writing the {title.lower()}"
                elif job.get("pid"):  # its process waits for this run's other export
                    waiting = "Waiting for the other export of this run to finish"
                else:
                    waiting = "Starting the export"
                st.info(
                    f"{waiting}… ({time.time() - since:.0f} s so far). It carries on if you "
                    "click elsewhere.",
                    icon=":material/hourglass_top:",
                )
                step = job_progress(job) if state == "running" else None
                if step is not None:  # k of N steps, or of the photos it scores, and time left
                    st.progress(step.fraction, text=md(step.text()))
                continue
            if state == "failed":
                st.error(f"The last export failed: {md(job.get('message', ''))}")
            result = done.get(fmt)
            if result is not None:
                show_result(fmt, result)
    active = any_active()
    if active != st.session_state.get("export_polling", False):
        st.session_state["export_polling"] = active
        st.rerun(scope="app")  # an export started or the last one ended: poll, or stop


formats()
