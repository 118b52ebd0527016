"""Where a run stands between its last epoch and "finished", for its status.

After the last epoch the worker walks a list of steps (``tlcore.training.finishing_steps``:
scoring the validation photos, measuring "none of these", fitting the calibration). A bare
"0 of 1,000 · time left: unknown" there left people guessing what was counted and for how
long, so each status says the step in words (step k of n), what its count counts, and the
time left until finished: from the pace of this finishing once an item is read, before that
from the speed this machine was measured or seen at (``tlcore.training.estimate``), and
"not known yet" when there is neither.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from tlcore.data.progress import Progress, ProgressCallback, format_seconds
from tlcore.runs.run import Run
from tlcore.training.finishing_steps import FinishStep


@dataclass(frozen=True)
class FinishingProgress:
    """Step ``step`` of ``steps`` after training: ``done`` of ``total`` of what it counts."""

    step: int  # 1-based
    steps: int
    doing: str  # the step in words, naming what its count counts
    counts: str  # "validation photos" ("" when the step reads nothing)
    done: int
    total: int
    step_elapsed_s: float
    elapsed_s: float  # since the last epoch
    left_s: float | None  # until finished; None: not known yet

    def progress(self) -> Progress:
        """The step as a count (the CLI's and the page's bar)."""
        return Progress(self.doing, self.done, self.total, self.step_elapsed_s)

    def left_text(self) -> str:
        if self.left_s is None:
            return "time left until finished: not known yet"
        return f"about {format_seconds(self.left_s)} left until finished"

    def text(self) -> str:
        """ "Finishing, step 1 of 3: Scoring the 60 validation photos with the best epoch's
        model: 20 of 60 · about 9 s left until finished"."""
        count = f": {self.done:,} of {self.total:,}" if self.total else ""
        return (
            f"Finishing, step {self.step} of {self.steps}: {self.doing}{count} · {self.left_text()}"
        )

    def message(self) -> str:
        """The status message: the step, and that training itself is over."""
        return (f"Training done; finishing (step {self.step} of {self.steps}): "
                f"{self.doing[0].lower()}{self.doing[1:]}.")  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> FinishingProgress | None:
        """Back from ``to_dict``; None for a missing or unreadable record."""
        try:
            return cls(**data) if data else None
        except TypeError:
            return None


FinishingCallback = Callable[[FinishingProgress], None]


class FinishingSteps:
    """Walks ``steps`` in order as the worker does them and tells ``callback`` each time."""

    def __init__(
        self,
        steps: Sequence[FinishStep],
        callback: FinishingCallback | None,
        item_s: float | None = None,
    ) -> None:
        self.steps, self.callback, self.item_s = list(steps), callback, item_s
        self.started = self.step_started = time.monotonic()
        self.index = -1

    def start(self, kind: str, checkpoint: str) -> ProgressCallback | None:
        """Begin the plan's step of this kind and checkpoint (None when the plan has none):
        the returned callback turns the step's own count into the finishing's status."""
        for index in range(max(self.index, 0), len(self.steps)):
            step = self.steps[index]
            if (step.kind, step.checkpoint) == (kind, checkpoint):
                self.index, self.step_started = index, time.monotonic()
                self.tell(0)
                return lambda progress: self.tell(progress.done)
        return None

    def tell(self, done: int) -> None:
        if self.callback is None or self.index < 0:
            return
        step = self.steps[self.index]
        done = min(done, step.count)
        now = time.monotonic()
        self.callback(FinishingProgress(
            self.index + 1, len(self.steps), step.words, step.counts, done, step.count,
            now - self.step_started, now - self.started, self.left_s(done, now),
        ))  # fmt: skip

    def left_s(self, done: int, now: float) -> float | None:
        """Items still to read at this finishing's pace (else the machine's known speed),
        and the steps that read nothing at their usual time."""
        read = sum(step.count for step in self.steps[: self.index]) + done
        left = sum(step.count for step in self.steps[self.index :]) - done
        fixed = sum(step.fixed_s for step in self.steps[self.index + 1 :])
        if done == 0:
            fixed += self.steps[self.index].fixed_s
        pace = (now - self.started) / read if read else self.item_s
        if left <= 0:
            return fixed
        return None if pace is None else left * pace + fixed


def item_seconds(run: Run) -> float | None:
    """Seconds an item takes through the network here, as measured or seen before (the fast
    path's pass keeps it); None when this machine has not measured the run's model."""
    from tlcore.training.machine_speed import stored_speed

    config = run.config
    with contextlib.suppress(Exception):  # only a time left: never fail a run for it
        speed = stored_speed(config.model, config.img_size, config.device)
        return speed.forward_s if speed is not None else None
    return None
