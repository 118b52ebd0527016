"""What a run learns, decided once from its data: the modality and the shape of its labels.

Every wing keeps a small table keyed by ``Task.key`` (the dataset that reads it, the head
and loss, the metrics, what a prediction looks like, what an export carries) instead of
asking "photos or texts?" in the middle of its work. The value is decided when the data is
prepared (``task_of(manifest)``), stored in the run's ``config.json`` under ``"task"``, and
read back with ``Run.task``; a run written before it existed gets it from its manifest.

Adding a task is one entry here (``TASKS``) and one in each wing's table
(docs/architecture.md, "Adding a task").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tlcore.errors import ConfigError

MODALITIES = ("image", "text")
T = TypeVar("T")


@dataclass(frozen=True)
class Task:
    """The modality ("image" or "text") and what each item is labelled with ("label": one
    class per item; several label columns, tags and boxes come as new targets)."""

    modality: str = "image"
    target: str = "label"

    @property
    def key(self) -> str:
        """The name each wing's table is keyed by: ``image-label``, ``text-label``."""
        return f"{self.modality}-{self.target}"

    @property
    def item(self) -> str:
        """One item in words: "photo" or "text"."""
        return TASKS[self.key]["item"]

    @property
    def items(self) -> str:
        """Items in words: "photos" or "texts"."""
        return TASKS[self.key]["items"]

    @property
    def says(self) -> str:
        """What each item is labelled with, in words: "one class per photo"."""
        return TASKS[self.key]["says"]

    @property
    def is_text(self) -> bool:
        return self.modality == "text"

    def to_dict(self) -> dict[str, str]:
        return {"modality": self.modality, "target": self.target}

    @classmethod
    def from_dict(cls, data: Any) -> Task:
        """A task from ``config.json``; ConfigError in words for one that is not known."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"task must be an object like {{'modality': 'image'}}, got {data!r}.")
        task = cls(str(data.get("modality", "image")), str(data.get("target", "label")))
        if task.key not in TASKS:
            known = ", ".join(sorted(TASKS))
            raise ConfigError(f"task {task.key!r} is not one this version knows ({known}).")
        return task


# the one list of tasks; each wing has a table with the same keys (tests/test_tasks.py)
TASKS: dict[str, dict[str, str]] = {
    "image-label": {"item": "photo", "items": "photos", "says": "one class per photo"},
    "text-label": {"item": "text", "items": "texts", "says": "one class per text"},
    # several label columns per photo, from a table (tlcore.data.columns; tlcore.runs.columns_run)
    "image-columns": {
        "item": "photo",
        "items": "photos",
        "says": "several label columns per photo",
    },
    # several label columns per sentence, from a table (tlcore.data.columns; the same run)
    "text-columns": {"item": "text", "items": "texts", "says": "several label columns per text"},
    # boxes of classes in each photo: object detection (tlcore.data.boxes; tlcore.runs.boxes_run)
    "image-boxes": {"item": "photo", "items": "photos", "says": "boxes of classes in each photo"},
}
PHOTO_LABEL = Task("image", "label")
TEXT_LABEL = Task("text", "label")
PHOTO_COLUMNS = Task("image", "columns")
TEXT_COLUMNS = Task("text", "columns")
PHOTO_BOXES = Task("image", "boxes")


def entry_for(table: Mapping[str, T], task: Task, refusal: str) -> T:
    """``task``'s entry in a wing's table; ConfigError in words (``refusal`` with ``{key}``
    and ``{known}``) for a task that wing does not know."""
    try:
        return table[task.key]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ConfigError(refusal.format(key=repr(task.key), known=known)) from None


def refused(message: str) -> Callable[..., Any]:
    """A table entry's function for a step that task does elsewhere (or not yet): it says
    ``message`` as a ConfigError whatever it is called with."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise ConfigError(message)

    return refuse


def task_of(data: Any) -> Task:
    """The task of a ``Manifest`` (or anything with its ``modality``, such as a data report)."""
    modality = str(getattr(data, "modality", "image") or "image")
    return Task(modality if modality in MODALITIES else "image", "label")
