"""Which ladder measures each task (``tlcore.data.task.TASKS``), and one call that picks it
from the data: the photo ladder (``tlcore.lab.ladder``) or the text one (``text_ladder``).
Its own module, above both, so neither imports the other's table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tlcore.data.manifest import Manifest
from tlcore.data.task import Task, entry_for, task_of
from tlcore.errors import ConfigError
from tlcore.lab.fewshot import DEFAULT_REPEATS, load_manifest
from tlcore.lab.ladder import LADDER_SHOTS, Ladder, transfer_ladder
from tlcore.lab.text_ladder import text_ladder


def _no_columns_ladder(*args: object, **kwargs: object) -> Ladder:
    raise ConfigError("there is no few-shot ladder for several label columns yet: measure one "
                      "column at a time (benchmarks/multitask_vs_single.py compares them).")  # fmt: skip


def _no_boxes_ladder(*args: object, **kwargs: object) -> Ladder:
    raise ConfigError("there is no few-shot ladder for detection yet: compare the ImageNet "
                      "backbone with scratch in benchmarks/detection_bccd.py.")  # fmt: skip


# the ladder of each task: (data, shots, repeats, seed, classes=, owner=)
LADDERS: dict[str, Callable[..., Ladder]] = {
    "image-label": transfer_ladder,
    "text-label": text_ladder,
    "image-columns": _no_columns_ladder,
    "text-columns": _no_columns_ladder,
    "image-boxes": _no_boxes_ladder,
}


def ladder_for(task: Task) -> Callable[..., Ladder]:
    """The function that measures ``task``'s ladder; ConfigError for a task it has none for."""
    return entry_for(LADDERS, task, "there is no transfer-learning ladder for {key} data "
                     "yet (only {known}).")  # fmt: skip


def measure_ladder(
    data: str | Path | Manifest,
    shots: Sequence[int] = LADDER_SHOTS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    classes: str | Sequence[str] | None = None,
    owner: str | None = None,
) -> Ladder:
    """Every rung on ``data``'s validation photos or texts, whichever the data holds."""
    manifest = load_manifest(data, seed=seed)
    return ladder_for(task_of(manifest))(manifest, shots, repeats, seed, classes=classes,
                                         owner=owner)  # fmt: skip
