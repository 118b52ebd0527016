"""Which metric ranks a challenge of each task, or why no challenge of it can be run yet.

One entry per ``tlcore.data.task.TASKS`` key (docs/architecture.md, "Tasks"): a challenge
asks its task here instead of asking "photos or texts?".
"""

from __future__ import annotations

from dataclasses import dataclass

from tlcore.data.task import Task, entry_for
from tlcore.errors import ConfigError


@dataclass(frozen=True)
class ChallengeTask:
    """``metric``: what the board ranks by, in words; ``refusal``: why a challenge of this task
    is not offered yet (None when it is)."""

    metric: str
    refusal: str | None = None

    def check(self) -> None:
        """ConfigError with the refusal, for a task no challenge can rank yet."""
        if self.refusal:
            raise ConfigError(self.refusal)


_ACCURACY = "test accuracy (ties broken by macro F1)"

CHALLENGE_TASKS: dict[str, ChallengeTask] = {
    "image-label": ChallengeTask(_ACCURACY),
    "text-label": ChallengeTask(_ACCURACY),
    "image-columns": ChallengeTask(
        "the mean macro F1 over the label columns",
        "A challenge of several label columns would be ranked by the mean macro F1 over its "
        "columns on the hidden photos; that scoring is not built yet. Make the challenge of "
        "a folder per class instead.",
    ),
    "text-columns": ChallengeTask(
        "the mean macro F1 over the label columns",
        "A challenge of several label columns would be ranked by the mean macro F1 over its "
        "columns on the hidden texts; that scoring is not built yet. Make the challenge of "
        "a text,label CSV instead.",
    ),
    "image-boxes": ChallengeTask(
        "mAP@0.5 on the hidden photos",
        "A detection challenge would be ranked by mAP@0.5 on the hidden photos (as `tlcore "
        "evaluate` scores a detector); that scoring is not built yet. Make the challenge of "
        "a folder per class instead.",
    ),
}


def challenge_task(task: Task) -> ChallengeTask:
    return entry_for(CHALLENGE_TASKS, task, "a challenge cannot be made of the task {key} "
                     "(known: {known}).")  # fmt: skip
