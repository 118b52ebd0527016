"""The learning-rate range test (fastai's ``lr_find``), to pick a learning rate by eye.

Train a throw-away copy of the model for a few dozen steps while the learning
rate grows exponentially, record the smoothed loss, and stop once it explodes.
The suggestion is fastai's "valley": a point two thirds down the longest stretch
where the loss keeps falling; the steepest-descent point is given too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from tlcore.training.config import TrainConfig
from tlcore.training.trainer import FreezeSchedule, Trainer, TrainingDiverged

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest


@dataclass
class LRFinderResult:
    """The curve to plot and the learning rates worth trying."""

    lrs: list[float]
    losses: list[float]  # smoothed (debiased exponential moving average)
    suggested_lr: float
    steepest_lr: float
    min_loss_lr: float
    diverged: bool
    fast_path: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_find(
    config: TrainConfig,
    manifest: Manifest,
    *,
    num_steps: int = 100,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    model: nn.Module | None = None,
) -> LRFinderResult:
    """Sweep ``start_lr`` -> ``end_lr`` over ``num_steps`` steps on a copy of the model."""
    if num_steps < 5 or not 0 < start_lr < end_lr:
        raise ValueError("lr_find needs num_steps >= 5 and 0 < start_lr < end_lr")
    trainer = Trainer(config, manifest, model=copy.deepcopy(model) if model is not None else None)
    trainer.model.train()
    FreezeSchedule().on_epoch_start(trainer, 1)
    if trainer.fast_path:
        trainer.embed_datasets()
    elif trainer.frozen_depth:  # fine-tuning a text encoder's top: its bottom runs once
        trainer.run_frozen_layers()
    lrs: list[float] = []
    losses: list[float] = []
    average, best, diverged, epoch = 0.0, math.inf, False, 1
    batches = trainer.train_batches(epoch)
    for i in range(num_steps):
        lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
        try:
            inputs, targets = next(batches)
        except StopIteration:  # small data: go round again in a new order
            epoch += 1
            batches = trainer.train_batches(epoch)
            inputs, targets = next(batches)
        trainer.set_lr(lr)
        try:
            loss, _ = trainer.train_step(inputs, targets)
        except TrainingDiverged:
            diverged = True
            break
        average = smoothing * average + (1 - smoothing) * loss
        smoothed = average / (1 - smoothing ** (i + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if i > 0 and smoothed > diverge_factor * best:
            diverged = True
            break
    return LRFinderResult(
        lrs=lrs,
        losses=losses,
        suggested_lr=valley(lrs, losses),
        steepest_lr=steepest(lrs, losses),
        min_loss_lr=lrs[losses.index(min(losses))] if losses else start_lr,
        diverged=diverged,
        fast_path=trainer.fast_path,
    )


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's valley: 2/3 of the way down the longest decreasing run of the loss."""
    n = len(losses)
    if n < 3:
        return lrs[0] if lrs else 0.0
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end, start = i, i - run[i]
    third = (end - start) / 3
    return lrs[min(n - 1, start + int(third) + int(third / 2))]


def steepest(lrs: list[float], losses: list[float]) -> float:
    """Where the loss falls fastest per decade of learning rate."""
    if len(losses) < 3:
        return lrs[0] if lrs else 0.0
    slopes = [
        (losses[i + 1] - losses[i - 1]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i - 1]))
        for i in range(1, len(losses) - 1)
    ]
    return lrs[1 + slopes.index(min(slopes))]
