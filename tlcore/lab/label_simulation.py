"""Replay labelling on a labelled folder: does choosing the photos beat picking them at random?

The true labels of the training photos are hidden and revealed only for the photos
the strategy (``tlcore.lab.labelling``) asks for, a batch at a time, the head refitted
after each batch; at each budget (12, 24, 48, 96 labels) the head is scored on the
validation photos (the folder's ``val/`` part when it has one). The same budgets drawn
at random are the baseline: the teaching point is that *which* photos you label matters.
Both are averaged over seeds (the random draws, the first pick and the CV's shuffles).
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from tlcore.data.manifest import Manifest
from tlcore.data.progress import ProgressCallback
from tlcore.errors import ConfigError, DataError
from tlcore.lab.fewshot import parse_counts
from tlcore.lab.labelling import BATCH_SIZE, accuracy, check_batch_size, fit_model, suggest_batch
from tlcore.training.embedder import Embedder

DEFAULT_BUDGETS = (12, 24, 48, 96)
MAX_SEEDS = 50


@dataclass
class SimulationResult:
    """Validation accuracy at each budget, active vs random, mean over seeds (and each seed)."""

    budgets: list[int]
    active: list[float]
    random: list[float]
    seeds: int
    classes: list[str]
    n_train: int
    n_val: int
    batch: int
    chance: float
    active_runs: list[list[float]] = field(default_factory=list)  # one list per seed
    random_runs: list[list[float]] = field(default_factory=list)
    active_cv: list[float | None] = field(default_factory=list)  # the estimate shown live
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_budgets(text: str | Sequence[int]) -> tuple[int, ...]:
    """Label counts to measure at: '12,24,48,96' -> (12, 24, 48, 96)."""
    return parse_counts(text, "budget", "12,24,48,96")


def active_order(x: torch.Tensor, y: torch.Tensor, classes: Sequence[str], last: int,
                 batch: int, seed: int) -> tuple[list[int], dict[int, float | None]]:  # fmt: skip
    """The photos the strategy asks for, in order, up to ``last`` labels; and the CV estimate
    after each batch (labels -> accuracy)."""
    labelled: list[int] = []
    estimates: dict[int, float | None] = {}
    model = None
    while len(labelled) < min(last, len(y)):
        probabilities = model.probabilities(x) if model is not None and model.head else None
        size = min(batch, last - len(labelled))
        picks = suggest_batch(x, labelled, probabilities, classes, size, seed=seed)
        if not picks:  # the rest are look-alikes of labelled photos
            break
        labelled += [p.index for p in picks]
        model = fit_model(x[labelled], y[labelled], classes, seed)
        estimates[len(labelled)] = model.cv_accuracy
    return labelled, estimates


def simulate_embeddings(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    classes: Sequence[str],
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    seeds: int = 5,
    batch: int = BATCH_SIZE,
    seed: int = 0,
) -> SimulationResult:
    """The replay on embeddings already computed (no model, no files)."""
    started = time.perf_counter()
    budgets = parse_budgets(budgets)
    check_batch_size(batch)
    if not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds must be a whole number from 1 to {MAX_SEEDS} (got {seeds!r}).")
    (x, y), (xv, yv) = train, val
    if len(yv) == 0:
        raise DataError("There are no validation photos to measure on: add a val/ folder or "
                        "give each class at least 2 photos.")  # fmt: skip
    if budgets[-1] > len(y):
        raise DataError(f"A budget of {budgets[-1]} labels is more than the {len(y)} training "
                        f"photos there are: give budgets up to {len(y)}.")  # fmt: skip
    active_runs, random_runs, cv_runs = [], [], []
    for s in range(seed, seed + seeds):
        order, estimates = active_order(x, y, classes, budgets[-1], batch, s)
        shuffled = list(range(len(y)))
        random.Random(s).shuffle(shuffled)
        active_runs.append([_score(x, y, xv, yv, classes, order[:b], s) for b in budgets])
        random_runs.append([_score(x, y, xv, yv, classes, shuffled[:b], s) for b in budgets])
        cv_runs.append([estimates.get(b) for b in budgets])
    return SimulationResult(
        budgets=list(budgets), active=_mean(active_runs), random=_mean(random_runs),
        seeds=seeds, classes=list(classes), n_train=len(y), n_val=len(yv), batch=batch,
        chance=1.0 / len(classes), active_runs=active_runs, random_runs=random_runs,
        active_cv=[_mean_known([run[i] for run in cv_runs]) for i in range(len(budgets))],
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip


def _score(x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
           classes: Sequence[str], chosen: list[int], seed: int) -> float:  # fmt: skip
    """Validation accuracy of the head fitted on ``chosen`` (one class alone: its share)."""
    model = fit_model(x[chosen], y[chosen], classes, seed)
    if model.head is None:
        only = int(y[chosen][0]) if chosen else 0
        return float((yv == only).float().mean())
    return round(accuracy(model, xv, yv), 4)


def _mean(runs: list[list[float]]) -> list[float]:
    return [round(statistics.fmean(column), 4) for column in zip(*runs, strict=True)]


def _mean_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return round(statistics.fmean(known), 4) if known else None


def simulate(
    data: str | Path | Manifest,
    budgets: Sequence[int] = DEFAULT_BUDGETS,
    seeds: int = 5,
    batch: int = BATCH_SIZE,
    seed: int = 0,
    embedder: Embedder | None = None,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    """The replay on a labelled folder (or zip, or manifest): its train photos are the pool,
    its val photos (its ``val/`` folder, else a seeded split) the measure."""
    from tlcore.lab.fewshot import load_manifest

    budgets = parse_budgets(budgets)
    manifest = load_manifest(data, seed=seed, progress=progress)
    embedder = embedder or Embedder()
    train = embedder.embed_split(manifest, "train", progress)
    val = embedder.embed_split(manifest, "val", progress)
    return simulate_embeddings(train, val, manifest.classes, budgets, seeds, batch, seed)
