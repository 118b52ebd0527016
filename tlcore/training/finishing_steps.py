"""What a run does after its last epoch, step by step, before it says "finished".

The last epoch is not the end: the worker (``tlcore.runs.finish``) keeps each checkpoint's
validation outputs, fits the temperature that calibrates its probabilities and, for photos,
the "none of these" detector, and keeps the score the Evaluate page shows. Some of those
steps read items through the network again; which ones depends on the run (the fast path
still holds every embedding). This one list serves both sides: the estimate before Start
multiplies its counts by the measured speed (``tlcore.training.estimate``), and the worker
walks the same steps and says in its status which one it is on, what its count counts, and
the time left (``tlcore.runs.finish``). A test checks that the two agree on a real run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# the outside photos "none of these" is measured on (tlcore.results.trust.REFERENCE_PHOTOS;
# the training wing cannot import it, tests/test_finishing_status.py checks they agree)
OUTSIDE_PHOTOS = 40
# the training photos the detector keeps as neighbours (tlcore.results.unknown.MAX_BANK)
BANK_PHOTOS = 2000
# a step that reads nothing: the temperature and the detector fitted, the score computed and
# written from numbers in memory (measured: under a second for a few hundred photos)
FIT_S = 0.5
# the whole model built and its checkpoint loaded, once per checkpoint that reads items again
LOAD_S = 1.0


@dataclass(frozen=True)
class FinishStep:
    """One step after the last epoch: what it does in words, and the items it reads."""

    kind: str  # "outputs" (validation scored), "features" ("none of these"), "fit"
    checkpoint: str  # "best" or "last"
    words: str  # "Scoring the 60 validation photos with the best epoch's model"
    count: int = 0  # items read through the network (0: it works on numbers in memory)
    counts: str = ""  # what the count counts: "validation photos"

    @property
    def fixed_s(self) -> float:
        """Seconds the step takes besides reading its items."""
        return FIT_S if self.kind == "fit" else LOAD_S if self.kind == "outputs" else 0.0


def finishing_steps(
    n_train: int,
    n_val: int,
    *,
    held: bool,
    unknown: bool,
    outside: int = OUTSIDE_PHOTOS,
    checkpoints: Sequence[str] = ("best", "last"),
    items: str = "photos",
) -> list[FinishStep]:
    """The steps after training, in the worker's order. ``held``: the trainer still holds
    every embedding (the fast path), so no validation or training item is read again;
    ``unknown``: the task fits "none of these" (photos); ``outside``: photos of another
    sample it is measured on; ``checkpoints``: best, and last when its weights differ."""
    steps: list[FinishStep] = []
    for index, checkpoint in enumerate(checkpoints):
        model = f"the {checkpoint} epoch's model"
        if not held:
            steps.append(FinishStep("outputs", checkpoint,
                                    f"Scoring the {n_val} validation {items} with {model}",
                                    n_val, f"validation {items}"))  # fmt: skip
        if unknown and not held:
            bank = min(n_train, BANK_PHOTOS)
            steps.append(FinishStep(
                "features", checkpoint,
                f'Measuring "none of these" for {model} on {bank + outside} {items}: '
                f"{bank} training ones and {outside} outside ones from another sample",
                bank + outside, f"training and outside {items}",
            ))  # fmt: skip
        elif unknown and outside and index == 0:  # held: only the outside photos, read once
            steps.append(FinishStep(
                "features", checkpoint,
                f'Measuring "none of these" on {outside} outside {items}',
                outside, f"outside {items}",
            ))  # fmt: skip
        fitted = 'the temperature and "none of these"' if unknown else "the temperature"
        steps.append(FinishStep("fit", checkpoint,
                                f"Fitting {fitted} of {model} and keeping its score"))  # fmt: skip
    return steps


def steps_seconds(steps: Sequence[FinishStep], forward_s: float) -> float:
    """The steps' time at ``forward_s`` seconds an item through the network."""
    return sum(step.count * forward_s + step.fixed_s for step in steps)


def steps_words(steps: Sequence[FinishStep], items: str = "photos") -> str:
    """What the steps read, in one sentence: why the counts after training are what they are
    (a second checkpoint's steps, the same as the first's, are said once)."""
    read = [step for step in steps if step.count]
    if not read:
        return ("After the last epoch it fits the calibration from the numbers it holds and "
                "keeps the score: no item is read again.")  # fmt: skip
    total = sum(step.count for step in read)
    first = [step for step in read if step.checkpoint == read[0].checkpoint]
    parts = "; ".join(step.words[0].lower() + step.words[1:] for step in first)
    others = list(dict.fromkeys(s.checkpoint for s in read if s.checkpoint != read[0].checkpoint))
    if others:
        parts += ("; the same for the " + " and the ".join(others)
                  + " epoch's model, unless it is the best")  # fmt: skip
    return (f"After the last epoch, before it says finished, it reads {total} {items} "
            f"({parts}), then fits the calibration and keeps the score.")  # fmt: skip
