"""How a run directory looks on a page: progress, curves, confusion matrix, summary row.

The Train page, the Runs page and the sidebar all read runs the same way, from the
files the worker writes; nothing here holds a model or talks to the worker.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from appkit import charts
from appkit.progress import finishing_bar
from appkit.text import md
from tlcore.data.progress import Progress
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


def metrics_stamp(run: Run) -> tuple[int, int]:
    """(size, mtime) of metrics.jsonl: it only grows, so an unchanged stamp means no news."""
    try:
        stat = run.metrics_path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_size, stat.st_mtime_ns)


def split_events(run: Run) -> tuple[list[dict], list[dict]]:
    """(step events, one event per epoch) from metrics.jsonl, in the order written.

    Parsed again only when the file changed since this session last read it: the live
    view polls every few seconds, and a long run's log holds thousands of steps.
    """
    key, stamp = f"tl_events::{run.dir}", metrics_stamp(run)
    cached = st.session_state.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    events = run.metrics()
    steps = [e for e in events if e.get("type") == "step"]
    by_epoch = {e["epoch"]: e for e in events if e.get("type") == "epoch"}  # as Run.epochs()
    epochs = [by_epoch[k] for k in sorted(by_epoch)]
    st.session_state[key] = (stamp, steps, epochs)
    return steps, epochs


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def speed_text(epochs: list[dict]) -> str:
    """How fast it went, truly: images/s of trained epochs; for a head solved by L-BFGS
    (no image stream to time) the solve's seconds and the embedding pass's photos/s."""
    last = epochs[-1] if epochs else {}
    if last.get("head"):
        solved = float(last["head"].get("cv_seconds") or 0.0) + sum(
            float((e.get("head") or {}).get("solve_seconds") or 0.0) for e in epochs
        )
        text = f" · head solved in {solved:.1f} s"
        embedding = last.get("embedding") or {}
        if embedding.get("from_cache"):  # not a speed of this machine: say what happened
            cached, passes = embedding["from_cache"], embedding.get("passes", 0)
            text += (" · embeddings read from the cache" if cached == passes
                     else f" · embeddings: {cached} of {passes} passes read from the cache")  # fmt: skip
        elif embedding.get("seconds"):
            rate = embedding["photos"] / embedding["seconds"]
            text += f" · embedding pass {rate:,.0f} {embedding.get('unit', 'photos')}/s"
        return text
    if last.get("images_per_s"):  # key kept for old runs; texts/s for a text run
        text = f" · {last['images_per_s']:,.0f} {last.get('unit', 'images')}/s"
        if last.get("fast_path"):
            text += " (features computed once, only the head trains)"
        elif last.get("frozen_layers_cached"):
            text += f" (the frozen first {last['frozen_layers_cached']} layers computed once)"
        return text
    return ""


def progress_summary(run: Run, compact: bool = False) -> dict[str, Any]:
    """State badge, progress bar with ETA and images/s, and the run's message."""
    status = run.status()
    steps, epochs = split_events(run)
    total = int(status.get("epochs") or run_config(run).get("epochs") or 1)
    state_name = status.get("state", "queued")
    done = len({e["epoch"] for e in epochs})
    if not epochs and state_name in ("finished", "stopped", "failed"):
        # a run of label columns logs "task_scores", not "epoch" events: its status counts
        done = int(status.get("epoch") or 0)
    last = epochs[-1] if epochs else {}
    fraction = 1.0 if state_name == "finished" else min(done / total, 1.0)
    st.markdown(f"{STATE_ICONS.get(state_name, '')} **{state_name}** · `{run.dir.name}`")
    if state_name == "queued":
        st.info("Queued: another run is training; this one starts as soon as it ends.")
    eta = last.get("eta_s") if state_name == "running" else None
    text = f"epoch {done}/{total}"
    running = state_name == "running"
    embedding = Progress.from_dict(status.get("embedding")) if running else None
    after = Progress.from_dict(status.get("after")) if running and done >= total else None
    if embedding is not None and not epochs and embedding.done < embedding.total:
        # the fast path's one pass over the photos: its own bar, count and time left
        fraction, text = embedding.fraction, md(embedding.text())
    elif after is not None and (finishing := finishing_bar(status)) is not None:
        fraction, text = finishing  # after the last epoch: step k of n, its count, time left
    elif after is not None and after.done < after.total:  # calibrating, scoring: the same
        fraction, text = after.fraction, md(after.text())
    elif state_name == "running":
        if eta is not None and done < total:
            text += f" · about {_fmt_seconds(eta)} of training left"
        elif status.get("message"):  # before the first epoch (loading, batches) and after the
            text += f" · {md(status['message'])}"  # last (calibrating, scoring): no estimate
    text += speed_text(epochs)
    st.progress(fraction, text=text)
    if status.get("message") and (state_name in ("failed", "stopped") or not compact):
        (st.error if state_name == "failed" else st.caption)(md(status["message"]))
    if compact and last.get("val_acc") is not None:
        st.caption(accuracy_words(epochs))
    return {"status": status, "steps": steps, "epochs": epochs, "total": total}


def curves(steps: list[dict], epochs: list[dict], key: str) -> None:
    """Loss, accuracy and learning-rate charts side by side.

    The figures are rebuilt only when there are new events (building plotly figures
    is most of a redraw's cost on the server, which shares the CPU with the training).
    """
    last_times = [events[-1].get("time") if events else None for events in (steps, epochs)]
    stamp = (len(steps), len(epochs), *last_times)  # times tell one run's events from another's
    cached = st.session_state.get(f"tl_curves::{key}")
    if cached is None or cached[0] != stamp:
        figures = (charts.loss_curves(steps, epochs), charts.accuracy_curves(epochs),
                   charts.lr_curves(steps, epochs))  # fmt: skip
        st.session_state[f"tl_curves::{key}"] = cached = (stamp, figures)
    for column, figure, name in zip(st.columns(3), cached[1], ("loss", "acc", "lr"), strict=True):
        with column:
            if name == "lr" and not figure.data and any(e.get("head") for e in epochs):
                st.markdown("**Learning rate**")
                st.caption(SOLVED_HEAD_NO_LR)
                continue
            st.plotly_chart(figure, key=f"{key}-{name}")


# said instead of an empty chart: a solved head has no learning rate to draw
SOLVED_HEAD_NO_LR = (
    "None to draw: the new last layer was not learned step by step with a learning rate. "
    "With the network frozen, each photo's features were computed once and the best last "
    "layer for them was calculated directly (a logistic regression), which is faster and "
    "as good."
)


def accuracy_words(epochs: list[dict]) -> str:
    """The last epoch's validation accuracy, and the best epoch's when it differs: Evaluate
    scores the best epoch's model, so a bare number here read as a contradiction."""
    last, best = epochs[-1], best_epoch(epochs)
    said = f"validation accuracy {last['val_acc']:.1%} (last epoch)"
    if best is not None and best["epoch"] != last["epoch"] and best["val_acc"] != last["val_acc"]:
        said += f"; best {best['val_acc']:.1%} (epoch {best['epoch']}), the model Evaluate scores"
    return said


def best_epoch(epochs: list[dict]) -> dict | None:
    scored = [e for e in epochs if e.get("val_acc") is not None]
    return max(scored, key=lambda e: e["val_acc"]) if scored else None


def headline(epochs: list[dict], state_name: str = "running") -> None:
    """The numbers people ask for first; "final" only once the run has finished."""
    last = epochs[-1] if epochs else None
    best = best_epoch(epochs)
    final = state_name == "finished"
    when = f"After epoch {last['epoch']} of {last.get('epochs', '?')}. " if last else ""
    when += "The run has finished." if final else "It becomes final when the run finishes."
    a, b, c = st.columns(3)
    a.metric(
        "Final validation accuracy" if final else "Latest validation accuracy",
        f"{last['val_acc']:.1%}" if last else "—",
        help="Share of the validation photos (never trained on) the model labels right. " + when,
    )
    b.metric(
        "Best validation accuracy" if final else "Best so far",
        f"{best['val_acc']:.1%}" if best else "—",
        help=f"epoch {best['epoch']}" if best else None,
    )
    c.metric(
        "Final error score (loss)" if final else "Latest error score (loss)",
        f"{last['val_loss']:.3f}" if last else "—",
        help="How far the model's probabilities are from the true labels on the validation "
        "photos (cross-entropy loss, the number training lowers): lower is better. " + when,
    )


def confusion(epochs: list[dict], key: str) -> None:
    latest = epochs[-1].get("confusion") if epochs else None
    if not latest:
        st.caption("The confusion matrix appears after the first epoch.")
        return
    title = f"Validation confusion matrix (epoch {epochs[-1]['epoch']})"
    stamp = (title, epochs[-1].get("time"))  # rebuilt only for a new epoch (see ``curves``)
    cached = st.session_state.get(f"tl_confusion::{key}")
    if cached is None or cached[0] != stamp:
        figure = charts.confusion(latest["classes"], latest["matrix"], title)
        st.session_state[f"tl_confusion::{key}"] = cached = (stamp, figure)
    st.plotly_chart(cached[1], key=f"{key}-confusion")
    st.caption("Rows: the true class. Columns: what the model guessed. The diagonal is right.")


def summary_row(run: Run) -> dict[str, Any]:
    """One line of the Runs table, in words; a run whose files are damaged says so in 'name'."""
    summary = run.summary()
    if summary["state"] == "broken":
        return {"run": summary["id"], "status": "broken", "best val accuracy": None,
                "epochs": "-", "model": None, "layers": "", "learning rate": None,
                "name": summary["message"]}  # fmt: skip
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
