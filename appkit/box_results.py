"""The Evaluate and Predict pages of a detection run (``appkit.tasks.BOXES`` points here).

Evaluate reads the checkpoint's detections on the validation photos, made once and kept in
the run (``tlcore.runs.boxes_run.box_scores``): mAP and each class in words, the
score-threshold slider (it only re-counts the kept boxes), precision-recall curves, the
worst photos and any validation photo with its true and found boxes side by side. Predict
runs the detector once per uploaded, camera or validation photo and filters by the slider:
boxes drawn with class and score, the counts per class, a CSV of the boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from appkit import inference
from appkit.box_drawing import draw_boxes, legend
from appkit.text import md, plot_text
from tlcore.data.images import UPLOAD_TYPES
from tlcore.errors import TLCoreError
from tlcore.results.box_evaluation import (
    DEFAULT_THRESHOLD,
    SCORE_FLOOR,
    BoxScores,
    PhotoBoxes,
    at_threshold,
    average_precision,
    counts_in_words,
)
from tlcore.runs.run import Run

THRESHOLD_HELP = (
    "Boxes scored below this are not drawn. Lower: finds more objects, draws more wrong boxes; "
    "higher: fewer wrong boxes, more missed objects."
)


# --- Evaluate ----------------------------------------------------------------------------


@st.cache_data(show_spinner="Finding the boxes in every validation photo…", max_entries=8)
def _scores(run_dir: str, checkpoint: str, stamp: tuple[int, int]) -> BoxScores:
    from tlcore.runs.boxes_run import box_scores

    return box_scores(Run.open(run_dir), checkpoint)


@st.cache_data(show_spinner="Measuring mAP…", max_entries=8)
def _average_precision(run_dir: str, checkpoint: str, stamp: tuple[int, int]) -> dict[str, Any]:
    return average_precision(_scores(run_dir, checkpoint, stamp))


def pr_figure(curves: dict[str, dict[str, list[float]]]) -> go.Figure:
    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=curve["recall"], y=curve["precision"], mode="lines",
                                 name=plot_text(name)))  # fmt: skip
    fig.update_layout(title="Precision and recall per class (IoU 0.5)", xaxis_title="recall",
                      yaxis_title="precision", height=320, xaxis_range=[0, 1],
                      yaxis_range=[0, 1.02], margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return fig


def _side_by_side(photo: PhotoBoxes, classes: list[str], threshold: float) -> None:
    """The photo with its true boxes, and with the boxes the detector draws at ``threshold``."""
    from PIL import Image

    truth = [(classes[c], *b, None) for b, c in zip(photo.true_boxes, photo.true_labels,
                                                     strict=True)]  # fmt: skip
    found = [(classes[c], *b, s) for b, s, c in zip(photo.boxes, photo.scores, photo.labels,
                                                     strict=True) if s >= threshold]  # fmt: skip
    try:
        with Image.open(photo.path) as im:
            im.load()
            image = im.copy()
    except OSError as exc:  # the data folder moved since the run: say so, keep the page
        st.warning(f"{md(Path(photo.path).name)} cannot be read any more ({md(exc)}).")
        return
    left, right = st.columns(2)
    left.image(draw_boxes(image, truth, classes), caption=f"True: {len(truth)} boxes")
    right.image(draw_boxes(image, found, classes),
                caption=md(f"Found: {counts_in_words([f[0] for f in found])}"))  # fmt: skip


def evaluate_page(run: Run, checkpoint: str) -> None:
    """mAP and each class in words, the threshold slider, PR curves, the worst photos."""
    stamp = inference.checkpoint_stamp(run, checkpoint)
    if inference.is_training(run):
        asked = st.session_state.setdefault("boxes_scored", {})
        if st.button("Score the model saved so far", key="boxes_score_now"):
            asked[(run.id, checkpoint)] = stamp
        if (run.id, checkpoint) not in asked:
            st.info("This run is still training. Press the button to score the model saved "
                    "so far.")  # fmt: skip
            return
        stamp = asked[(run.id, checkpoint)]
    try:
        scores = _scores(str(run.dir), checkpoint, stamp)
        ap = _average_precision(str(run.dir), checkpoint, stamp)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    classes = scores.classes
    st.markdown(f"On the **{len(scores.photos)} validation photos** it never trained on:")
    cols = st.columns(3)
    cols[0].metric("mAP@0.5", f"{ap['map50']:.3f}", help="Average precision when a box counts "
                   "as found if it overlaps the true box by half or more, averaged over classes.")  # fmt: skip
    cols[1].metric("mAP@0.5:0.95", f"{ap['map']:.3f}", help="The same, averaged over overlaps "
                   "from 0.5 to 0.95: rewards boxes that sit tightly.")  # fmt: skip
    cols[2].metric("True boxes", sum(len(p.true_boxes) for p in scores.photos))
    threshold = st.slider("Score threshold", SCORE_FLOOR, 0.99, DEFAULT_THRESHOLD, 0.01,
                          key="boxes_eval_threshold", help=THRESHOLD_HELP)  # fmt: skip
    view = at_threshold(scores, threshold)
    st.markdown("\n".join(f"- It {md(line)}" for line in view.words()))
    st.dataframe(pd.DataFrame([{
        "class": c, "AP@0.5": ap["ap50_per_class"].get(c), "AP@0.5:0.95": ap["ap_per_class"].get(c),
        "true boxes": view.truth[c], "found": view.found[c], "boxes drawn": view.drawn[c],
        "wrong boxes": view.wrong[c]} for c in classes]), hide_index=True, key="boxes_per_class")  # fmt: skip
    st.subheader("Which classes it confuses")
    confused = view.confusion_words()
    if confused:
        st.markdown("\n".join(f"- {md(line)}" for line in confused))
    else:
        st.markdown("No box it draws at this threshold sits on a true box of another class.")
    if ap["pr_curves"]:
        st.plotly_chart(pr_figure(ap["pr_curves"]), key="boxes_pr")
        st.caption("Each curve walks the threshold from high (left: few boxes, mostly right) "
                   "to low (right: most objects found, more wrong boxes).")  # fmt: skip
    st.caption(f"Box colours: {legend(classes)}.")
    st.subheader("The worst photos")
    worst = view.worst(4)
    if not worst:
        st.markdown("At this threshold it misses nothing and draws no wrong box.")
    by_path = {p.path: p for p in scores.photos}
    for verdict in worst:
        st.markdown(f"**{md(Path(verdict.path).name)}**: {verdict.missed} missed, "
                    f"{verdict.false} wrong boxes ({verdict.found} of {verdict.truth} found).")  # fmt: skip
        _side_by_side(by_path[verdict.path], classes, threshold)
    st.subheader("Any validation photo")
    names = [Path(p.path).name for p in scores.photos]
    picked = st.selectbox("Photo", range(len(names)), format_func=lambda i: names[i],
                          key="boxes_eval_photo")  # fmt: skip
    _side_by_side(scores.photos[picked], classes, threshold)


# --- Predict -----------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the detector…", max_entries=2)
def _detector(run_dir: str, checkpoint: str, stamp: tuple[int, int]) -> tuple[Any, list[str], tuple[int, int]]:  # fmt: skip
    from tlcore.runs.boxes_run import load_detector

    model, classes, size = load_detector(Run.open(run_dir), checkpoint)
    model.roi_heads.score_thresh = SCORE_FLOOR  # the slider filters; the model runs once
    return model, classes, size


@st.cache_data(show_spinner="Looking for boxes…", max_entries=64)
def _found(run_dir: str, checkpoint: str, stamp: tuple[int, int], name: str,
           data: bytes) -> tuple[Any, list[dict[str, Any]]]:  # fmt: skip
    from tlcore.results.predict import read_upload
    from tlcore.runs.boxes_run import detect

    model, classes, size = _detector(run_dir, checkpoint, stamp)
    image = read_upload(name, data)
    return image, detect(model, classes, size, image, min_score=SCORE_FLOOR)


def _validation_photos(run: Run) -> list[str]:
    from tlcore.runs.boxes_run import boxes_data

    try:
        return [p.path for p in boxes_data(run).split("val") if Path(p.path).is_file()]
    except TLCoreError:
        return []


def predict_page(run: Run, checkpoint: str) -> None:
    """Photos or the camera → boxes drawn with class and score, counts, a CSV of boxes."""
    from tlcore.export.box_csv import boxes_csv

    uploads = st.file_uploader("Photos", type=list(UPLOAD_TYPES), accept_multiple_files=True,
                               key="boxes_predict_files")  # fmt: skip
    with st.expander("Take a photo with the camera"):
        camera = st.camera_input("Camera", key="boxes_predict_camera")
    known = _validation_photos(run)
    example = st.selectbox("…or try a validation photo", known, index=None,
                           format_func=lambda path: Path(path).name, key="boxes_predict_example")  # fmt: skip
    threshold = st.slider("Score threshold", SCORE_FLOOR, 0.99, DEFAULT_THRESHOLD, 0.01,
                          key="boxes_predict_threshold", help=THRESHOLD_HELP)  # fmt: skip
    files = [(f.name, f.getvalue()) for f in uploads or []]
    if camera is not None:
        files.append(("camera.jpg", camera.getvalue()))
    if example is not None:
        files.append((Path(example).name, Path(example).read_bytes()))
    if not files:
        st.info("Upload photos (or take one) to see the boxes the detector draws.")
        return
    stamp = inference.checkpoint_stamp(run, checkpoint)
    answers = []
    for name, data in files:
        try:
            image, found = _found(str(run.dir), checkpoint, stamp, name, data)
        except TLCoreError as exc:
            st.error(f"{md(name)}: {md(exc)}")
            continue
        kept = [b for b in found if b["score"] >= threshold]
        answers.append({"path": name, "boxes": kept})
        classes = _detector(str(run.dir), checkpoint, stamp)[1]
        st.markdown(f"**{md(name)}**: {md(counts_in_words([b['label'] for b in kept]))}")
        st.image(draw_boxes(image, [(b["label"], b["xmin"], b["ymin"], b["xmax"], b["ymax"],
                                     b["score"]) for b in kept], classes))  # fmt: skip
    if answers:
        st.download_button("Download the boxes (CSV)", boxes_csv(answers), "boxes.csv",
                           mime="text/csv", key="boxes_csv")  # fmt: skip
