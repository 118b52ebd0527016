"""A person's decisions about the doctor's suspects, as the overrides of a new dataset version.

The doctor (``tlcore.results.doctor``) finds three kinds of suspect, and for each the
person answers one question: a label that looks wrong (relabel it as suggested, leave
the photo out, or keep it as labelled), a near-duplicate pair (keep one of the two, or
both) and a photo unlike every class (leave it out or keep it). What each answer does
to the dataset is decided here, once, so the Doctor page only asks the questions and
a notebook gets the same version from the same answers. "Keep" is recorded too: a
suspect someone looked at and kept is not asked about again (``kept_paths``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tlcore.data.versions import Override
from tlcore.errors import DataError

LABEL_CHOICES = ("relabel", "exclude", "keep")  # a label that looks wrong
DUPLICATE_CHOICES = ("keep-first", "keep-second", "keep-both")  # a near-duplicate pair
OUTLIER_CHOICES = ("exclude", "keep")  # a photo unlike every class
WHY_PREFIX = "doctor: "


def _checked(choice: str, allowed: tuple[str, ...], what: str) -> str:
    if choice not in allowed:
        raise DataError(f"{choice!r} is not a decision about {what}: use one of "
                        f"{', '.join(allowed)}.")  # fmt: skip
    return choice


def label_decision(path: str, choice: str | None, suggested: str, why: str) -> list[Override]:
    """A label that looks wrong: relabel as ``suggested``, leave out, or keep (None: undecided)."""
    if choice is None:
        return []
    action = _checked(choice, LABEL_CHOICES, "a label that looks wrong")
    label = suggested if action == "relabel" else ""
    return [Override(path, action, label, why=WHY_PREFIX + why)]


def duplicate_decision(first: str, second: str, choice: str | None) -> list[Override]:
    """A near-duplicate pair: keep the first (the second is left out), the second, or both."""
    if choice is None:
        return []
    _checked(choice, DUPLICATE_CHOICES, "a near-duplicate pair")
    if choice == "keep-both":
        why = WHY_PREFIX + "near-duplicate kept"
        return [Override(first, "keep", why=why), Override(second, "keep", why=why)]
    kept, dropped = (first, second) if choice == "keep-first" else (second, first)
    return [Override(dropped, "exclude",
                     why=f"{WHY_PREFIX}near-duplicate of {Path(kept).name}")]  # fmt: skip


def outlier_decision(path: str, choice: str | None, why: str) -> list[Override]:
    """A photo unlike every class: leave it out, or keep it (None: undecided)."""
    if choice is None:
        return []
    action = _checked(choice, OUTLIER_CHOICES, "a photo unlike every class")
    return [Override(path, action, why=WHY_PREFIX + why)]


def kept_paths(overrides: Iterable[Override]) -> set[str]:
    """Photos a person already looked at and kept: the doctor does not ask about them again."""
    return {o.path for o in overrides if o.action == "keep"}
