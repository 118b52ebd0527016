"""How a run directory looks on a page: progress, curves, confusion matrix, summary row.

The Train page, the Runs page and the sidebar all read runs the same way, from the
files the worker writes; nothing here holds a model or talks to the worker.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from appkit import charts
from tlcore.errors import TLCoreError
from tlcore.runs.run import Run

STATE_ICONS = {
    "queued": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "finished": ":material/check_circle:",
    "failed": ":material/error:",
    "stopped": ":material/stop_circle:",
}

PRESET_LABELS = {
    "features": "Feature extraction (head only)",
    "last-k": "Fine-tune the last {k} groups",
    "full": "Full fine-tune",
    "progressive": "Progressive unfreezing (every {every} epochs)",
    "custom": "Custom: groups chosen by hand",
}


def preset_label(freeze: dict[str, Any] | None) -> str:
    freeze = freeze or {"preset": "features"}
    template = PRESET_LABELS.get(freeze.get("preset", ""), str(freeze.get("preset")))
    return template.format(k=freeze.get("k", 1), every=freeze.get("every", 1))


def run_config(run: Run) -> dict[str, Any]:
    try:
        return run.config.to_dict()
    except TLCoreError:
        return {}


def split_events(run: Run) -> tuple[list[dict], list[dict]]:
    """(step events, one event per epoch) from metrics.jsonl, in the order written."""
    steps = [e for e in run.metrics() if e.get("type") == "step"]
    return steps, run.epochs()


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress_summary(run: Run, compact: bool = False) -> dict[str, Any]:
    """State badge, progress bar with ETA and images/s, and the run's message."""
    status = run.status()
    steps, epochs = split_events(run)
    total = int(status.get("epochs") or run_config(run).get("epochs") or 1)
    state_name = status.get("state", "queued")
    done = len({e["epoch"] for e in epochs})
    last = epochs[-1] if epochs else {}
    fraction = 1.0 if state_name == "finished" else min(done / total, 1.0)
    st.markdown(f"{STATE_ICONS.get(state_name, '')} **{state_name}** · `{run.dir.name}`")
    if state_name == "queued":
        st.info("Queued: another run is training; this one starts as soon as it ends.")
    eta = last.get("eta_s") if state_name == "running" else None
    text = f"epoch {done}/{total}"
    if state_name == "running":
        text += f" · about {_fmt_seconds(eta)} left" if eta is not None else " · estimating time…"
    if last.get("images_per_s"):
        text += f" · {last['images_per_s']:,.0f} images/s"
        if last.get("fast_path"):
            text += " (features computed once, only the head trains)"
    st.progress(fraction, text=text)
    if status.get("message") and (state_name in ("failed", "stopped") or not compact):
        (st.error if state_name == "failed" else st.caption)(status["message"])
    if compact and last.get("val_acc") is not None:
        st.caption(f"validation accuracy {last['val_acc']:.1%}")
    return {"status": status, "steps": steps, "epochs": epochs, "total": total}


def curves(steps: list[dict], epochs: list[dict], key: str) -> None:
    """Loss, accuracy and learning-rate charts side by side."""
    left, middle, right = st.columns(3)
    with left:
        st.plotly_chart(charts.loss_curves(steps, epochs), key=f"{key}-loss")
    with middle:
        st.plotly_chart(charts.accuracy_curves(epochs), key=f"{key}-acc")
    with right:
        st.plotly_chart(charts.lr_curves(steps, epochs), key=f"{key}-lr")


def best_epoch(epochs: list[dict]) -> dict | None:
    scored = [e for e in epochs if e.get("val_acc") is not None]
    return max(scored, key=lambda e: e["val_acc"]) if scored else None


def headline(epochs: list[dict]) -> None:
    """The numbers people ask for first: final and best validation accuracy."""
    last = epochs[-1] if epochs else None
    best = best_epoch(epochs)
    a, b, c = st.columns(3)
    a.metric("Final validation accuracy", f"{last['val_acc']:.1%}" if last else "—")
    b.metric(
        "Best validation accuracy",
        f"{best['val_acc']:.1%}" if best else "—",
        help=f"epoch {best['epoch']}" if best else None,
    )
    c.metric("Final validation loss", f"{last['val_loss']:.3f}" if last else "—")


def confusion(epochs: list[dict], key: str) -> None:
    latest = epochs[-1].get("confusion") if epochs else None
    if not latest:
        st.caption("The confusion matrix appears after the first epoch.")
        return
    title = f"Validation confusion matrix (epoch {epochs[-1]['epoch']})"
    fig = charts.confusion(latest["classes"], latest["matrix"], title)
    st.plotly_chart(fig, key=f"{key}-confusion")
    st.caption("Rows: the true class. Columns: what the model guessed. The diagonal is right.")


def summary_row(run: Run) -> dict[str, Any]:
    """One line of the Runs table, in words."""
    summary = run.summary()
    config = run_config(run)
    return {
        "run": summary["id"],
        "status": summary["state"],
        "best val accuracy": summary["best_val_acc"],
        "epochs": f"{summary['epochs_done']}/{summary['epochs']}",
        "model": summary["model"],
        "layers": preset_label(config.get("freeze")),
        "learning rate": config.get("lr"),
        "name": summary["name"],
    }
