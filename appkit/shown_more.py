"""A long list on a page: the first ones, how many there are in all, and the rest on request.

The Doctor found 66 near-duplicate pairs and showed 24 with no word about the other 42. A
section now says "24 of 66 shown" and offers the next ones below the last. Earlier items
stay on the page, so a decision already made on one of them is kept (a widget that is no
longer drawn would lose its value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import streamlit as st

T = TypeVar("T")
PAGE = 24  # items added per press, the most relevant first


def _limit(key: str) -> int:
    return int(st.session_state.get(f"tl_shown_{key}", PAGE))


def first_of(items: Sequence[T], key: str, noun: str) -> Sequence[T]:
    """The items to draw now; says how many of all of them that is when some are left."""
    limit = _limit(key)
    if len(items) > limit:
        st.caption(f"{limit} of {len(items)} {noun} shown, the most suspicious first; "
                   "the button below the last one shows more.")  # fmt: skip
    return items[:limit]


def more_button(items: Sequence[T], key: str, noun: str) -> None:
    """Below the drawn items: a button that adds the next ``PAGE`` (or all that are left)."""
    limit = _limit(key)
    left = len(items) - limit
    if left <= 0:
        return

    def grow() -> None:
        st.session_state[f"tl_shown_{key}"] = limit + PAGE

    st.button(f"Show {min(PAGE, left)} more of the {left} {noun} not shown yet",
              key=f"tl_more_{key}", on_click=grow, icon=":material/expand_more:")  # fmt: skip
