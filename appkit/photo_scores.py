"""A photo with its scores, the same on every page: its name, the best class, the runners-up.

Few-shot, zero-shot and Predict each show a photo the user gave and what a model makes
of it. The photo's name is the browser's file name and the classes are folder names or
typed words: all of it is the user's, so every string is escaped here, once
(``appkit.text.md``), instead of in each page's own f-string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from appkit import inference
from appkit.text import md, md_list
from tlcore.errors import TLCoreError
from tlcore.results.predict import read_upload
from tlcore.results.unknown import is_unknown_score
from tlcore.runs.run import Run

RANKED = 5  # classes listed under each photo


def headline(name: str, best: str, score: float, what: str = "") -> str:
    """``**name** → **best** (what score)`` as Markdown, both names shown as typed."""
    said = f"{what} {score:.0%}" if what else f"{score:.1%}"
    return f"**{md(name)}** → **{md(best)}** ({said})"


def show_ranked(
    photos: Sequence[tuple[str, Any]],
    ranked: Sequence[Sequence[tuple[str, float]]],
    what: str = "score",
) -> None:
    """Each (name, image) with its best class and a table of the top ``RANKED`` scores."""
    for (name, image), scores in zip(photos, ranked, strict=True):
        best, score = scores[0]
        picture, text = st.columns([1, 3])
        picture.image(image, width="stretch")
        text.markdown(headline(name, best, score, what))
        text.dataframe(
            [{"class": c, "score": s} for c, s in scores[:RANKED]],
            hide_index=True,
            column_config={"score": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0)},
        )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=64)
def _unknown_score(
    run_dir: str, checkpoint: str, stamp: tuple[int, int], name: str, data: bytes
) -> float | None:
    predictor = inference.predictor(Run.open(run_dir), checkpoint)
    if predictor.unknown is None:
        return None
    _, scores = predictor.predict_with_unknown([read_upload(name, data)])
    return None if scores is None else float(scores[0])


def unknown_score(
    run: Run, checkpoint: str, predictor: Any, name: str, data: bytes, threshold: float | None
) -> float | None:
    """The photo's unknown score when it is "none of these" at ``threshold``
    (``tlcore.results.unknown.is_unknown_score`` decides); None when it is one of the classes
    or the run cannot tell."""
    if threshold is None:
        return None
    try:
        score = _unknown_score(
            str(run.dir), checkpoint, inference.checkpoint_stamp(run, checkpoint), name, data
        )
    except TLCoreError:
        return None
    return score if is_unknown_score(score, threshold) else None


def not_sure(name: str, classes: Sequence[str], guess: str, probability: float,
             score: float, threshold: float) -> None:  # fmt: skip
    """The headline says "Not sure" (a skimming reader must not take the forced guess for
    the answer), then why, then the guess it would make if it had to choose."""
    st.markdown(f"**{md(name)}** → **Not sure** (none of: {md_list(classes)})")
    st.warning(
        f"**Not sure — this looks like none of: {md_list(classes)}.** "
        "It looks less like every training photo than almost all of your validation "
        f"photos do (a distance of {score:.3f}, over the limit of {threshold:.3f}). "
        f"If it had to choose, it would say **{md(guess)}** ({probability:.1%}); the bars "
        "below are that forced choice.",
        icon=":material/help:",
    )
