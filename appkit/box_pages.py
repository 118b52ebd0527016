"""The Data report and the Train page of photos with boxes (object detection).

``appkit.tasks.BOXES`` points its whole-page hooks here (this module imports neither
``appkit.tasks`` nor ``appkit.data_choice``: they import it). Train: the detection settings (the
backbone's trainable blocks from the Layers page's preset, the input size, epochs), Start
(``tlcore.runs.boxes_run.create_boxes_run`` and the same detached worker as any run), and
the followed run live: the fast path's pass over the photos (k of N, time left), the loss
parts per step, validation mAP per epoch, Stop and Resume, and a time left measured from the
epochs done. Before Start, the run's time from a few photos timed here
(``tlcore.training.detection_estimate``), or "unknown" when that cannot be measured. The
Detector choice adds torchvision's COCO-pretrained detectors (``tlcore.models.detector``).
The Evaluate and Predict pages are ``appkit.box_results``.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from appkit import active_run, state
from appkit.box_drawing import show_boxes_data
from appkit.text import md, md_list
from tlcore.data.box_report import training_size
from tlcore.data.boxes import BoxData, read_boxes
from tlcore.data.progress import Progress
from tlcore.errors import TLCoreError
from tlcore.runs.run import ACTIVE_STATES, Run
from tlcore.training.detection import LOSS_PARTS, DetectionSettings

LONG_SIDES = [128, 160, 192, 256, 320, 384, 448, 512, 640, 800]
LAYERS = {
    "frozen": "Backbone frozen: its feature maps are computed once (fast path)",
    "last": "The backbone's last blocks learn too",
    "all": "The whole backbone learns (slowest)",
}
LOSS_WORDS = {
    "loss_objectness": "proposals: object or not",
    "loss_rpn_box_reg": "proposals: where",
    "loss_classifier": "boxes: which class",
    "loss_box_reg": "boxes: where",
}
REFRESH_S = 3.0
SETTINGS_KEY = "tl_boxes_settings"


# --- the chosen data ---------------------------------------------------------------------


@st.cache_data(show_spinner="Reading the boxes…", max_entries=4)
def _read(source: str, val_fraction: float, seed: int) -> BoxData:
    return read_boxes(source, val_fraction=val_fraction, seed=seed)


def chosen_boxes() -> BoxData:
    """The chosen photos with boxes, read once per folder and split; DataError in words."""
    data = state.get("data") or {}
    return _read(str(data.get("source")), float(state.get("val_fraction")), int(state.get("seed")))


def data_section() -> None:
    """The Data page's report of chosen photos with boxes."""
    data = state.get("data") or {}
    st.subheader(f"Photos with boxes: {md(data.get('label', ''))}")
    try:
        show_boxes_data(chosen_boxes())
    except TLCoreError as exc:
        st.error(md(exc))


# --- Train -------------------------------------------------------------------------------


def _layers_from_preset() -> tuple[str, int]:
    """The Layers page's choice as the backbone's trainable blocks: feature extraction is the
    frozen backbone, last-K its last K blocks, full the whole; the others start frozen."""
    freeze = state.get("freeze") or {}
    preset = freeze.get("preset", "features")
    return {"last-k": ("last", int(freeze.get("k", 1) or 1)), "full": ("all", 1)}.get(
        preset, ("frozen", 1)
    )


def detector_words(name: str, backbone: str) -> str:
    """The Detector choice in words: Faster R-CNN on the Model page's backbone, or one of
    torchvision's detectors pretrained on COCO, with where its weights would come from."""
    from tlcore.models.detector import COCO_DETECTORS, coco_weights_file  # torch: on this page

    if name not in COCO_DETECTORS:
        return f"Faster R-CNN on {backbone} (the Model page's backbone)"
    here = coco_weights_file(name).is_file()
    return (f"{name}: torchvision's, pretrained on COCO "
            f"({'in the local torch hub cache' if here else 'needs the internet once'})")  # fmt: skip


def _settings(data: BoxData) -> DetectionSettings:
    """The detection settings chosen on this page (kept for the session: a widget's own
    value is forgotten when another page is shown)."""
    from tlcore.data.box_report import box_report
    from tlcore.models.detector import COCO_DETECTORS

    kept = st.session_state.setdefault(SETTINGS_KEY, {})
    preset = state.get("freeze") or {}
    layer, k = _layers_from_preset()
    if kept.get("preset") == preset:  # chosen here since the Layers page last changed
        layer, k = kept.get("layer", layer), kept.get("blocks", k)
    backbone = str(state.get("model"))
    detectors = [backbone, *COCO_DETECTORS]
    detector = st.selectbox(
        "Detector", detectors, format_func=lambda name: detector_words(name, backbone),
        index=detectors.index(kept["detector"]) if kept.get("detector") in detectors else 0,
        key="boxes_detector",
    )  # fmt: skip
    left, middle, right = st.columns(3)
    epochs = left.number_input("Epochs", 1, 100, kept.get("epochs", DetectionSettings.epochs),
                               key="boxes_epochs")  # fmt: skip
    side = max(training_size(data))
    sides = sorted({*LONG_SIDES, side})
    long_side = middle.selectbox(
        "Input size (long side, pixels)", sides,
        index=sides.index(kept["long_side"] if kept.get("long_side") in sides else side),
        key="boxes_long_side",
        help="Every photo is resized to this. Larger finds small objects better and is slower.",
    )  # fmt: skip
    batches = [1, 2, 4, 8]
    batch = right.selectbox("Photos per step", batches, key="boxes_batch",
                            index=batches.index(kept.get("batch", DetectionSettings.batch_size)))  # fmt: skip
    sizes = next((line for line in box_report(data, training_size(data, long_side))
                  if line.startswith("At the training size")), "")  # fmt: skip
    st.caption(md(sizes))
    layer = st.radio(
        "What learns (from the Layers page's choice)", list(LAYERS), index=list(LAYERS).index(layer),
        format_func=LAYERS.get, key="boxes_layers",
    )  # fmt: skip
    blocks: int | None = 0
    if layer == "last":
        k = int(st.number_input("Backbone blocks that learn", 1, 7, k, key="boxes_blocks"))
        blocks = k
    elif layer == "all":
        blocks = None
    kept.update(preset=preset, layer=layer, blocks=k, epochs=int(epochs), long_side=long_side,
                batch=batch, detector=detector)  # fmt: skip
    coco = detector in COCO_DETECTORS
    return DetectionSettings(
        model=detector, weights="coco" if coco else state.get("weights"), epochs=int(epochs),
        batch_size=int(batch), long_side=int(long_side), trainable_blocks=blocks,
        seed=int(state.get("seed")),
    )  # fmt: skip


def _start(settings_: DetectionSettings) -> Run:
    from tlcore.runs.boxes_run import create_boxes_run
    from tlcore.training.config import TrainConfig

    data = state.get("data")
    config = TrainConfig(data=str(data["source"]), model=settings_.model, weights=settings_.weights,
                         seed=settings_.seed, epochs=settings_.epochs,
                         batch_size=settings_.batch_size,
                         val_fraction=float(state.get("val_fraction")), owner=state.owner_id())  # fmt: skip
    run, _, _ = create_boxes_run(config, settings_)
    run.spawn_worker(resume=False)
    return run


def train_page() -> None:
    """Settings, Start, and the followed detection run live."""
    data = state.get("data") or {}
    try:
        boxes = chosen_boxes()
    except TLCoreError as exc:
        st.error(md(exc))
        st.page_link("pages/data.py", label="Go to Data", icon=":material/photo_library:")
        return
    counts = {c: sum(b.label == c for p in boxes.photos for b in p.boxes) for c in boxes.classes}
    st.markdown(
        f"**{md(data.get('label', ''))}**: {len(boxes.photos)} photos, "
        f"{sum(counts.values())} boxes of {md_list(boxes.classes)} · object detection "
        f"(Faster R-CNN) on {md(state.get('model'))}"
    )
    with st.expander("The data report"):
        show_boxes_data(boxes)
    settings_ = _settings(boxes)
    if settings_.trainable_blocks == 0:
        st.caption("Fast path: the frozen backbone reads each photo once; then only the "
                   "pyramid and the box heads learn, each epoch.")  # fmt: skip
    run = _followed_boxes_run()
    busy = run is not None and run.status().get("state") in ACTIVE_STATES
    label = "Start another run (it waits in the queue)" if busy else "Start training"
    if st.button(label, key="boxes_start", type="primary"):
        try:
            with st.spinner("Preparing the run…"):
                run = _start(settings_)
            state.update(run_id=run.id)
            st.rerun()
        except TLCoreError as exc:
            st.error(md(exc))
    if run is None:
        st.caption(f"{time_before_start(boxes, settings_)} Press Start: the losses and the "
                   "validation mAP appear here.")  # fmt: skip
        return
    st.divider()
    st.subheader("Training run")
    _live(run, busy)


@st.cache_data(show_spinner="Timing a few of your photos through the detector…", max_entries=8)
def _speed(source: str, val_fraction: float, seed: int, settings_: dict[str, Any]) -> Any:
    from tlcore.training.detection_estimate import measure_detection

    return measure_detection(DetectionSettings(**settings_), _read(source, val_fraction, seed))


def time_before_start(boxes: BoxData, settings_: DetectionSettings) -> str:
    """The run's time from a short measurement on a few of the photos (what it covers said),
    or "unknown until the first epoch ends" when it cannot be measured here."""
    data = state.get("data") or {}
    from tlcore.training.detection_estimate import estimate_detection

    try:  # measured once per setting that changes the time of a step (not the epochs)
        speed = _speed(str(data.get("source")), float(state.get("val_fraction")),
                       int(state.get("seed")), {**settings_.to_dict(), "epochs": 1})  # fmt: skip
    except (TLCoreError, OSError, RuntimeError, ValueError):  # e.g. out of memory, a bad photo
        return "Time: unknown until the first epoch ends (it is measured, not guessed)."
    found = estimate_detection(settings_, boxes, speed)
    return (
        f"Time: **{found.text}** ({md(found.covers)}); the first epoch's own time "
        "replaces it once it ends."
    )


def _followed_boxes_run() -> Run | None:
    run = active_run.followed()
    try:
        return run if run is not None and run.task.key == "image-boxes" else None
    except TLCoreError:  # a run whose files cannot say its task: not this page's
        return None


def time_left(epochs: list[dict[str, Any]], total: int) -> str:
    """Measured from the epochs done; nothing claimed before the first one ends."""
    if not epochs:
        return "Time left: unknown until the first epoch ends."
    per_epoch = sum(float(e.get("seconds", 0)) for e in epochs) / len(epochs)
    left = max(0, total - int(epochs[-1]["epoch"])) * per_epoch
    return (f"{per_epoch:.0f} s per epoch (measured); about {left / 60:.1f} min left "
            f"for {max(0, total - int(epochs[-1]['epoch']))} more epochs.")  # fmt: skip


def loss_figure(steps: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for part in LOSS_PARTS:
        fig.add_trace(go.Scatter(x=[e["step"] for e in steps], y=[e.get(part) for e in steps],
                                 mode="lines", name=LOSS_WORDS[part]))  # fmt: skip
    fig.update_layout(title="Loss parts per step", xaxis_title="step", height=300,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return fig


def map_figure(epochs: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for key, name in (("map50", "mAP@0.5"), ("map", "mAP@0.5:0.95")):
        fig.add_trace(go.Scatter(x=[e["epoch"] for e in epochs], y=[e.get(key) for e in epochs],
                                 mode="lines+markers", name=name))  # fmt: skip
    fig.update_layout(title="Validation mAP per epoch", xaxis_title="epoch", height=300,
                      yaxis_range=[0, 1], margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    return fig


def _live(run: Run, busy: bool) -> None:
    @st.fragment(run_every=REFRESH_S if busy else None)
    def live() -> None:
        current = Run.open(run.dir)
        status = current.status()
        now = status.get("state")
        if now in ACTIVE_STATES and st.button("Stop", key="boxes_stop"):
            current.stop()
            st.toast("Stopping after the current step…")
        if now in ("stopped", "failed") and st.button("Resume", key="boxes_resume"):
            try:
                current.resume()
                st.rerun(scope="app")
            except TLCoreError as exc:
                st.error(md(exc))
        st.markdown(f"Run `{md(current.id)}`: **{md(now)}**. {md(status.get('message', ''))}")
        events = current.metrics()
        steps = [e for e in events if e.get("type") == "step"]
        epochs = current.epochs()
        # the fast path's one pass over the photos: k of N photos and the time left
        feature_pass = Progress.from_dict(status.get("embedding")) if now == "running" else None
        if feature_pass is not None and feature_pass.done < feature_pass.total:  # also on resume
            st.progress(feature_pass.fraction, text=md(feature_pass.text()))
        total = int((current.record.get("detection") or {}).get("epochs", 0))
        if now in ACTIVE_STATES:
            st.caption(time_left(epochs, total))
        if steps:
            st.plotly_chart(loss_figure(steps), key="boxes_losses")
        if epochs:
            st.plotly_chart(map_figure(epochs), key="boxes_map")
        if now == "finished":
            st.page_link("pages/evaluate.py", label="Next: evaluate the detector →",
                         icon=":material/fact_check:")  # fmt: skip
        if busy and now not in ACTIVE_STATES:
            st.rerun(scope="app")  # the run ended: stop polling and redraw once

    live()
