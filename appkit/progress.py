"""A progress bar for a long tlcore step on a page ("k of N · about T left"), and the bar of
a run's steps after its last epoch, read from its status."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from tlcore.data.progress import Progress, ProgressCallback
from tlcore.runs.finishing_progress import FinishingProgress


@contextlib.contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """A bar with "k of N · about T left" for a tlcore step, removed when the step ends."""
    slot = st.empty()

    def show(progress: Progress) -> None:
        slot.progress(progress.fraction, text=progress.text())

    try:
        yield show
    finally:
        slot.empty()


def finishing_bar(status: dict) -> tuple[float, str] | None:
    """(fraction, words) of a running run's steps after its last epoch: "Finishing, step 1
    of 3: Scoring the 60 validation photos with the best epoch's model: 20 of 60 · about
    9 s left until finished"; None when it is not finishing."""
    from appkit.text import md

    where = FinishingProgress.from_dict(status.get("finishing"))
    if status.get("state") != "running" or where is None:
        return None
    step = where.done / where.total if where.total else 0.0
    return min(1.0, (where.step - 1 + step) / max(where.steps, 1)), md(where.text())
