"""A progress bar for a long tlcore step on a page ("k of N · about T left")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from tlcore.data.progress import Progress, ProgressCallback


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
