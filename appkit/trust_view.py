"""Trust on the Evaluate and Predict pages: honest percentages, "none of these", clickable mistakes.

The numbers come from ``tlcore.runs.trust_store`` (fitted by the worker when a run
finishes); a run without them (stopped early, or trained before this existed) gets a
button that fits them on the spot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from appkit import inference
from appkit.text import md, plot_text
from tlcore.errors import TLCoreError
from tlcore.results.confusion_cells import photos_in_cell
from tlcore.results.trust import Trust
from tlcore.runs.outputs import validation_items, validation_outputs
from tlcore.runs.run import Run
from tlcore.runs.trust_store import ensure_trust, measures_unknown, stored_trust

MAX_CELL_PHOTOS = 12


def trust(run: Run, checkpoint: str) -> Trust | None:
    """The stored trust of this checkpoint (None when not fitted yet)."""
    return stored_trust(run, checkpoint)


def offer_fit(run: Run, checkpoint: str, key: str) -> None:
    """For a run without calibration: what is missing, and a button that fits it now."""
    if inference.is_training(run) or not measures_unknown(run):
        return
    st.info(
        'This model has no calibration and no "none of these" check yet (the run stopped '
        "early, or was trained by an older version). Measuring them scores every training "
        "and validation photo once."
    )
    if st.button("Measure them now", key=key):
        try:
            with st.spinner("Scoring the training and validation photos…"):
                ensure_trust(run, checkpoint)
        except TLCoreError as exc:
            st.error(md(exc))
            return
        for cached in ("_predictor", "_evaluation", "_explained"):  # they held the old numbers
            function = getattr(inference, cached, None)
            if function is not None and hasattr(function, "clear"):
                function.clear()
        st.rerun()


# -- Evaluate: can its percentages be believed? ----------------------------------------------


def reliability_chart(fitted: Trust) -> go.Figure:
    """Confidence against accuracy per bin, before and after; the diagonal is 'honest'."""
    cal = fitted.calibration
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="honest", line={"dash": "dot", "color": "gray"}
    )
    for name, bins, colour in (
        ("before calibration", cal.bins_before, "#d62728"),
        ("after calibration", cal.bins_after, "#1f77b4"),
    ):
        used = [b for b in bins if b["count"]]
        fig.add_scatter(
            x=[b["confidence"] for b in used],
            y=[b["accuracy"] for b in used],
            mode="lines+markers",
            name=name,
            marker={"size": [8 + min(20, b["count"]) for b in used], "color": colour},
            customdata=[b["count"] for b in used],
            hovertemplate="said %{x:.0%}, right %{y:.0%} (%{customdata} photos)<extra></extra>",
        )
    fig.update_xaxes(title="how sure the model said it was", range=[0, 1.02], tickformat=".0%")
    fig.update_yaxes(title="how often it was right", range=[0, 1.02], tickformat=".0%")
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def calibration_section(run: Run, checkpoint: str) -> None:
    """Reliability diagram and ECE before/after, in words a newcomer understands."""
    st.subheader("Can you believe its percentages?")
    fitted = trust(run, checkpoint)
    if fitted is None:
        offer_fit(run, checkpoint, "evaluate_fit_trust")
        return
    cal = fitted.calibration
    if cal.ece_before is None or cal.ece_after is None:
        st.caption("No validation photos: the percentages could not be checked.")
        return
    st.markdown(
        "When the model says **90 %**, it should be right about 9 times in 10. The "
        "**calibration error** is how far, on average, the percentage it shows is from how "
        "often it is really right on the validation photos (0 % = perfectly honest)."
    )
    a, b, c = st.columns(3)
    a.metric("Calibration error, raw", f"{cal.ece_before:.1%}")
    b.metric(
        "Calibration error, calibrated",
        f"{cal.ece_after:.1%}",
        delta=f"{cal.ece_after - cal.ece_before:+.1%}",
        delta_color="inverse",
        help="Each validation photo is scored with a temperature fitted on the other photos, "
        "so this number is not flattered by the fit.",
    )
    c.metric("Temperature", f"{cal.temperature:.2f}")
    surer = "surer of itself" if cal.temperature < 1 else "more modest"
    st.caption(
        f"Every percentage this app shows and exports is calibrated: the model's raw scores "
        f"are divided by the temperature {cal.temperature:.2f} before they become "
        f"percentages, which makes it {surer}. Its top guess never changes. "
        f"Measured on {cal.images} validation photos; with few photos these numbers are rough."
    )
    st.plotly_chart(reliability_chart(fitted), key="reliability_chart")
    unknown_summary(fitted)


def unknown_summary(fitted: Trust) -> None:
    """How "none of these" is decided, and how well it was measured to work."""
    detector = fitted.detector
    if detector is None:
        return
    text = (
        f"**None of these.** A photo is called unknown when it looks less like every "
        f"training photo than {detector.accept:.0%} of your validation photos do: those are "
        "accepted, the rest would be flagged. (The limit is a distance of "
        f"{detector.threshold:.3f} in what the backbone sees; the slider on Predict moves it.)"
    )
    ref = fitted.reference
    if ref.get("photos") and ref.get("auroc") is not None:
        text += (
            f" Tried on {ref['photos']} photos of {md(ref.get('source', 'other data'))}, "
            f"none of them your classes: it flagged **{ref['flagged']:.0%}** of them "
            f"(AUROC {ref['auroc']:.2f}, where 1 is perfect and 0.5 is a coin toss)."
        )
    st.markdown(text)


# -- Evaluate: the photos behind a cell of the confusion matrix --------------------------------


@st.cache_data(show_spinner="Reading the validation scores…", max_entries=8)
def _validation_probabilities(
    run_dir: str, checkpoint: str, stamp: Any
) -> tuple[list[str], list[int], list[str], Any]:
    """The checkpoint's kept validation outputs, calibrated (tlcore.runs.outputs: scored once,
    when the run finished, or here the first time for an older run)."""
    run = Run(Path(run_dir))
    paths, targets, manifest = validation_items(run)
    fitted = stored_trust(run, checkpoint)
    temperature = fitted.calibration.temperature if fitted is not None else 1.0
    probs = validation_outputs(run, checkpoint).probabilities(temperature)
    return paths, targets, list(manifest.classes), probs


def _cell_chart(classes: list[str], matrix: list[list[int]]) -> go.Figure:
    """The confusion matrix as squares that can be clicked (one point per cell)."""
    xs, ys, counts = [], [], []
    shown = [plot_text(name) for name in classes]  # a click gives these back (see below)
    for t, row in enumerate(matrix):
        for p, count in enumerate(row):
            xs.append(shown[p])
            ys.append(shown[t])
            counts.append(count)
    peak = max(counts) or 1
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=[str(c) for c in counts],
            marker={
                "symbol": "square",
                # a square fills most of its 60 px row: larger ones were clipped at the edges
                "size": max(18, min(50, 260 // max(1, len(classes)))),
                "color": counts,
                "colorscale": "Blues",
                "cmin": 0,
                "cmax": peak,
                "line": {"color": "gray", "width": 1},
            },
            textfont={"color": ["white" if c > peak / 2 else "black" for c in counts]},
            hovertemplate="true %{y}, guessed %{x}: %{text} photos<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true class", type="category")
    fig.update_xaxes(title="model's guess", type="category")
    fig.update_layout(height=140 + 60 * len(classes), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def clicked_cell(points: list[dict], classes: list[str]) -> tuple[str, str] | None:
    """(true, guessed) class of the square a click selected in ``_cell_chart``, whose labels
    are escaped for Plotly; None for no click or labels that are no class."""
    if not points:
        return None
    named = {plot_text(name): name for name in classes}
    true, guessed = (named.get(str(points[0].get(axis))) for axis in ("y", "x"))
    return (true, guessed) if true is not None and guessed is not None else None


def confusion_cell_section(run: Run, checkpoint: str, report: Any) -> None:
    """Click a cell (or pick true and predicted) to see exactly its photos, with Grad-CAM."""
    from tlcore.data.gallery import thumbnail
    from tlcore.results.explain import gradcam

    st.subheader("Mistakes you can click")
    st.caption(
        "Click a square (or pick the two labels below) to see exactly those validation "
        "photos, each with where the model looked and how sure it was."
    )
    classes = list(report.classes)
    event = st.plotly_chart(
        _cell_chart(classes, report.confusion),
        on_select="rerun",
        selection_mode="points",
        key="cell_chart",
    )
    points = list(getattr(getattr(event, "selection", None), "points", None) or [])
    clicked = clicked_cell(points, classes)
    if clicked is not None and clicked != st.session_state.get("cell_clicked"):
        st.session_state["cell_clicked"] = clicked
        st.session_state["cell_true"], st.session_state["cell_predicted"] = clicked
    left, right = st.columns(2)
    true = left.selectbox("True label", classes, key="cell_true")
    default_guess = next((c for c in classes if c != true), classes[0])
    if st.session_state.get("cell_predicted") not in classes:
        st.session_state["cell_predicted"] = default_guess
    predicted = right.selectbox("Model's guess", classes, key="cell_predicted")
    try:
        paths, targets, _, probs = _validation_probabilities(
            str(run.dir), checkpoint, inference.checkpoint_stamp(run, checkpoint)
        )
    except TLCoreError as exc:
        st.error(md(exc))
        return
    cell = photos_in_cell(probs, targets, classes, paths, true, predicted)
    verb = "recognised as" if true == predicted else "called"
    photos = "photo" if len(cell) == 1 else "photos"
    st.markdown(
        f"**{len(cell)}** validation {photos} of **{md(true)}** {verb} **{md(predicted)}**."
    )
    if not cell:
        return
    predictor = inference.predictor(run, checkpoint)
    columns = st.columns(3)
    for i, photo in enumerate(cell[:MAX_CELL_PHOTOS]):
        with columns[i % 3]:
            try:
                cam = gradcam(predictor, photo.path)
                st.image(cam.overlay, width="stretch")
            except TLCoreError:
                image = thumbnail(photo.path, 320)
                if image is not None:
                    st.image(image, width="stretch")
            name = photo.path.rsplit("/", 1)[-1]
            st.caption(f"{md(name)} · {md(predicted)} {photo.probability:.1%}")
    if len(cell) > MAX_CELL_PHOTOS:
        st.caption(f"The {MAX_CELL_PHOTOS} surest of {len(cell)} photos are shown.")


# -- Predict: "Not sure — this looks like none of: …" ------------------------------------------


def threshold_slider(predictor: Any, fitted: Trust | None) -> float | None:
    """The unknown threshold, set on validation by default; None when there is no detector."""
    if predictor.unknown is None:
        return None
    default = round(float(predictor.unknown.threshold), 3)
    value = st.slider(
        '"None of these" threshold',
        0.0,
        2.0,
        min(2.0, default),
        step=0.001,
        format="%.3f",
        key="predict_unknown_threshold",
        help="Distance to the nearest training photo above which a photo is called 'none of "
        "these'. Higher: fewer false alarms but more misses. The default accepts "
        f"{predictor.unknown.accept:.0%} of the validation photos.",
    )
    scores = fitted.val_scores if fitted is not None else []
    if scores:
        accepted = sum(s <= value for s in scores) / len(scores)
        st.caption(
            f"At {value:.3f}, {accepted:.0%} of the {len(scores)} validation photos (all of "
            "your classes) are accepted."
        )
    return value
