"""A demo: Predict and the model card of one model, and nothing that changes the server.

Shown by the ``?demo=<token>`` page of the class server (``pages/demo.py``) and by the
app ``tlcore demo`` starts (``appkit/demo_app.py``). The model comes from a run folder or
an exported bundle, loaded once per file version; a visitor's photos stay in memory
(nothing is written), and the page offers no other run, no wizard and no sidebar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from appkit import photo_scores
from appkit.text import md, md_list
from tlcore import settings
from tlcore.data.images import UPLOAD_TYPES
from tlcore.errors import TLCoreError
from tlcore.export.tasks import model_task
from tlcore.results.predict import Predictor, read_upload
from tlcore.results.unknown import is_unknown_score

MAX_PHOTOS = 6


def source_stamp(source: str) -> tuple[int, int]:
    """Changes when the model's file is replaced (the cache key of the loaded model)."""
    from tlcore.results.bundle_format import is_bundle

    path = Path(source)
    if not is_bundle(source):
        path = path / "checkpoints" / "best.safetensors"
    try:
        stat = path.stat()
    except OSError:
        return 0, 0
    return stat.st_size, stat.st_mtime_ns


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _model(source: str, stamp: tuple[int, int]) -> Predictor:
    import tlcore

    return tlcore.load(source)


@st.cache_data(show_spinner=False, max_entries=4)
def _card(source: str, stamp: tuple[int, int]) -> str:
    from tlcore.export.demo_card import demo_card
    from tlcore.results.bundle_format import is_bundle
    from tlcore.runs.run import Run

    target = source if is_bundle(source) else Run(Path(source))
    return demo_card(target, _model(source, stamp))


@st.cache_data(show_spinner="Looking at the photo…", max_entries=64)
def _explained(source: str, stamp: tuple[int, int], name: str, data: bytes) -> dict[str, Any]:
    from tlcore.results.explain import gradcam

    predictor = _model(source, stamp)
    image = read_upload(name, data)
    probabilities, scores = predictor.predict_with_unknown([image])
    answer: dict[str, Any] = {"image": image, "probabilities": probabilities[0].tolist(),
                              "unknown": None if scores is None else float(scores[0]),
                              "cam": None, "no_cam": ""}  # fmt: skip
    try:
        answer["cam"] = gradcam(predictor, image)
    except TLCoreError as exc:
        answer["no_cam"] = str(exc)
    return answer


def render(source: str) -> None:
    """The whole demo page for the model in ``source`` (a run folder or a bundle)."""
    stamp = source_stamp(source)
    try:
        predictor = _model(source, stamp)
    except TLCoreError as exc:
        st.error(md(exc))
        st.stop()
    st.title("Try the model")
    st.markdown(f"It tells apart: **{md_list(predictor.classes)}**.")
    if model_task(predictor).is_text:
        _texts(predictor)
    else:
        _photos(source, stamp, predictor)
    with st.expander("Model card", icon=":material/description:"):
        try:
            st.markdown(_card(source, stamp))
        except TLCoreError as exc:
            st.error(md(exc))


def _photos(source: str, stamp: tuple[int, int], predictor: Predictor) -> None:
    uploads = st.file_uploader("Upload photos", type=list(UPLOAD_TYPES),
                               accept_multiple_files=True, key="demo_uploads")  # fmt: skip
    with st.expander("Take a photo with the camera"):
        shot = st.camera_input("Camera", key="demo_camera")
    files = [(f.name, f.getvalue()) for f in uploads or []]
    if shot is not None:
        files.append(("camera.jpg", shot.getvalue()))
    for name, data in files[:MAX_PHOTOS]:
        try:
            answer = _explained(source, stamp, name, data)
        except TLCoreError as exc:
            st.error(f"{md(name)}: {md(exc)}")
            continue
        _one_photo(name, answer, predictor)
    if len(files) > MAX_PHOTOS:
        st.info(f"Showing the first {MAX_PHOTOS} of {len(files)} photos.")


def _one_photo(name: str, answer: dict[str, Any], predictor: Predictor) -> None:
    ranked = sorted(zip(predictor.classes, answer["probabilities"], strict=True),
                    key=lambda cp: -cp[1])[:3]  # fmt: skip
    threshold = predictor.unknown_threshold
    if is_unknown_score(answer["unknown"], threshold):
        photo_scores.not_sure(name, predictor.classes, *ranked[0], answer["unknown"], threshold)
    else:
        st.markdown(photo_scores.headline(name, *ranked[0]))
    left, middle, right = st.columns(3)
    left.image(answer["image"], caption="your photo", width="stretch")
    frame = pd.DataFrame({"class": [c for c, _ in ranked], "probability": [p for _, p in ranked]})
    middle.bar_chart(frame, x="class", y="probability", horizontal=True, sort="-probability",
                     height=60 + 40 * len(ranked))  # fmt: skip
    if answer["cam"] is None:
        right.warning(f"No heat map: {md(answer['no_cam'])}")
    else:
        right.image(answer["cam"].overlay, caption="where it looked (red = most)", width="stretch")


def _texts(predictor: Any) -> None:
    text = st.text_area("Type a sentence (one per line for several)", key="demo_texts")
    lines = [line for line in text.splitlines() if line.strip()][:20]
    for result in predictor.predict_texts(lines) if lines else []:
        if result.error:
            st.error(f"{md(result.path)}: {md(result.error)}")
        else:
            st.markdown(photo_scores.headline(result.path, result.label, result.probability))


# -- sharing a run as a demo (the Predict page) ------------------------------------------------
def share_offer(run: Any) -> None:
    """ "Share as demo": a link with an unguessable token that opens this run's Predict alone."""
    from urllib.parse import urljoin

    from tlcore.runs.demo_links import share_run, token_of, withdraw

    with st.expander("Share as demo", icon=":material/share:"):
        st.markdown("A link anyone on this server's network can open: only this model's "
                    "Predict and its model card, no wizard, no other run, nothing to change.")  # fmt: skip
        if not settings.multi_user():
            st.warning(
                "This server is not shared by a class (no `TLCORE_MULTI_USER`): whoever opens "
                "the link can remove `?demo=` from the address and use the whole app, your runs "
                "included. To show this model alone, run `tlcore demo` with the run's id on "
                "the command line: a small app with Predict and the model card only."
            )
        token = token_of(run)
        if token is None and st.button("Make a demo link", key="demo_share"):
            try:
                token = share_run(run)
            except TLCoreError as exc:
                st.error(md(exc))
        if token:
            base = urljoin(str(st.context.url or "http://localhost:8501/"), "./")
            st.code(f"{base}?demo={token}", language=None)
            if st.button("Withdraw the link", key="demo_withdraw"):
                withdraw(token)
                st.rerun()
