"""The Label photos page's state: the session's embeddings, the batch on screen, the curve.

The answers live in the session folder (``tlcore.lab.label_session``); the browser
session only keeps what is quick to rebuild: the embeddings read from the one cache,
the batch being labelled and the model's numbers after each refit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from appkit.progress import progress_bar
from tlcore.data.markdown import plot_text
from tlcore.lab.label_session import LabelSession, embed_photos, guesses_from_names

KEY = "label_page"  # {"dir", "x", "paths", "unreadable", "batch", "check"}


def current() -> dict[str, Any] | None:
    return st.session_state.get(KEY)


def start(session: LabelSession, embedder: Any, size: int, check: Any = None) -> None:
    """Embed the photos (cached after the first time) and ask for the first batch."""
    with progress_bar() as bar:
        x, paths, unreadable = embed_photos(session.photos(), embedder, bar)
    st.session_state[KEY] = {"dir": str(session.dir), "x": x, "paths": paths, "size": size,
                             "unreadable": unreadable, "embedder": embedder, "check": check,
                             "batch": []}  # fmt: skip
    refit(session)


def refit(session: LabelSession) -> None:
    """Fit the head on every answer so far, note its numbers, and choose the next batch."""
    page = current()
    assert page is not None
    x, paths = page["x"], page["paths"]
    prior = (
        guesses_from_names(x, session.classes, page["embedder"]) if session.needs_names() else None
    )
    batch, model = session.next_batch(x, paths, page["size"], prior)
    entry: dict[str, Any] = {}
    check = page.get("check")
    if check is not None and model.head is not None:
        from tlcore.lab.labelling import accuracy

        entry["check_accuracy"] = accuracy(model, *check)
    session.record_progress(model, **entry)
    page["batch"] = [{"path": paths[s.index], "reason": s.reason, "guess": s.guess,
                      "confidence": s.confidence} for s in batch]  # fmt: skip
    page["model"] = model.summary()


def unanswered(session: LabelSession) -> list[dict[str, Any]]:
    page = current()
    answers = session.answers()
    done = answers.labels.keys() | answers.skipped | answers.unknown
    return [b for b in (page or {}).get("batch", []) if b["path"] not in done]


def curve(progress: list[dict[str, Any]], replay: dict[str, Any] | None) -> go.Figure:
    """Accuracy against labels: the session's CV estimate (and check set), and a replay's
    chosen vs random lines when one was measured."""
    fig = go.Figure()
    xs = [p["labels"] for p in progress]
    series = [
        ("estimated (cross-validation)", "cv_accuracy"),
        ("on the check set", "check_accuracy"),
    ]
    for name, key in series:
        ys = [p.get(key) for p in progress]
        if any(v is not None for v in ys):
            fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers"))
    if replay:
        fig.add_trace(go.Scatter(x=replay["budgets"], y=replay["active"], mode="lines+markers",
                                 name="replay: photos chosen by the model"))  # fmt: skip
        fig.add_trace(go.Scatter(x=replay["budgets"], y=replay["random"], mode="lines+markers",
                                 name="replay: photos picked at random", line={"dash": "dash"}))  # fmt: skip
    fig.update_layout(title=plot_text("Accuracy against the number of labels"), height=320,
                      xaxis_title="labelled photos", yaxis_title="accuracy",
                      yaxis={"range": [0, 1]}, margin={"t": 40, "b": 30})  # fmt: skip
    return fig


def photo_caption(path: str) -> str:
    return Path(path).name
