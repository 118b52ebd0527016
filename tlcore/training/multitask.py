"""Several label columns learned at once on the frozen backbone's cached embeddings.

The fast path for a table of labels (``tlcore.data.columns``): every photo is embedded
once by the shared frozen backbone through the one embedding cache
(``tlcore.training.embedder``), then a small network is trained on the embeddings: one
shared hidden layer (what the tasks learn together) and one head per task, softmax for
a one-of-N column, one sigmoid per tag for a tag column.

So that a small task is not drowned, each task's loss is the mean over ITS OWN labelled
items (a blank cell is left out of that task's loss, not treated as a class) divided by
its loss at chance (log K for K classes; for tags, the mean binary entropy of the tags'
training rates): every task starts near 1 and weighs the same, whatever its size.

Each tag's threshold is chosen on validation (the one that gives the best F1 for that
tag); one-of-N probabilities are calibrated with one temperature per task fitted on
validation. Both are measured on the same validation items they were chosen on, which
flatters the tag F1 a little; the benchmark says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tlcore.data.columns import ColumnsData, ColumnTask

HIDDEN = 256
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.25, 8, 41))


# -- embeddings -----------------------------------------------------------------------------------
class Photos(torch.utils.data.Dataset):
    """A photo (preprocessed) and its row index, so a batch finds its targets (embedding
    ignores the index)."""

    def __init__(self, paths: Sequence[str], transform: Any) -> None:
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from tlcore.data.images import load_rgb  # as every other reader: its rows share a cache

        return self.transform(load_rgb(self.paths[index])), index


def embed_paths(embedder: Any, paths: Sequence[str],
                progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, int]:  # fmt: skip
    """Every photo's embedding through the one embedding cache (rows keyed by path, size and
    change time) and how many were embedded now."""
    from types import SimpleNamespace

    from tlcore.training import embedding_cache, features

    stamps = [embedding_cache.photo_stamp(SimpleNamespace(path=p)) for p in paths]
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], len(paths))

    def compute(order: list[int]) -> torch.Tensor:
        subset = Photos([paths[i] for i in order], embedder.transform)
        loader = torch.utils.data.DataLoader(subset, batch_size=32, num_workers=0)
        return features.embed(embedder.model, loader, embedder.device, tick)[0]

    x, embedded = embedder.rows.embed(stamps, compute)
    return x.float().cpu(), embedded


# -- targets --------------------------------------------------------------------------------------
@dataclass
class TaskTargets:
    """One task's targets for a list of items: class indices (or a tag matrix) and a mask
    of the items labelled for it."""

    task: ColumnTask
    y: torch.Tensor  # long [N] (one-of; -1 where blank) or float [N, T] (tags)
    mask: torch.Tensor  # bool [N]


def targets(data: ColumnsData, items: Sequence[Any], task: ColumnTask) -> TaskTargets:
    labels = [item.labels.get(task.name) for item in items]
    mask = torch.tensor([label is not None for label in labels])
    if task.kind == "tags":
        y = torch.zeros(len(items), len(task.classes))
        for i, label in enumerate(labels):
            for tag in label or []:
                y[i, tag] = 1.0
    else:
        y = torch.tensor([-1 if label is None else int(label) for label in labels])
    return TaskTargets(task, y, mask)


# -- the network ----------------------------------------------------------------------------------
class MultiHead(nn.Module):
    """Standardised embedding -> shared hidden layer -> one linear head per task."""

    def __init__(self, dim: int, tasks: Sequence[ColumnTask], hidden: int = HIDDEN,
                 dropout: float = 0.3) -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.shared = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU(),
                                    nn.Dropout(dropout))  # fmt: skip
        self.heads = nn.ModuleDict(
            {f"t{i}": nn.Linear(hidden, len(t.classes)) for i, t in enumerate(tasks)}
        )
        self.names = [t.name for t in tasks]
        self.kinds = {t.name: t.kind for t in tasks}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.shared((x - self.mean) / self.std)
        return {name: self.heads[f"t{i}"](h) for i, name in enumerate(self.names)}


def chance_loss(t: TaskTargets) -> float:
    """A task's loss when guessing (the scale its loss is divided by)."""
    if t.task.kind == "tags":
        rate = t.y[t.mask].mean(0).clamp(1e-3, 1 - 1e-3)
        return float((-(rate * rate.log() + (1 - rate) * (1 - rate).log())).mean())
    return math.log(len(t.task.classes))


def task_loss(logits: torch.Tensor, t: TaskTargets) -> torch.Tensor:
    """Mean over the items labelled for this task only."""
    if not bool(t.mask.any()):
        return logits.sum() * 0
    if t.task.kind == "tags":
        return F.binary_cross_entropy_with_logits(logits[t.mask], t.y[t.mask])
    return F.cross_entropy(logits[t.mask], t.y[t.mask])


@dataclass
class FitResult:
    model: MultiHead
    curves: list[dict[str, Any]] = field(default_factory=list)  # per epoch: task -> val score
    seconds: float = 0.0


def fit_heads(
    x_train: torch.Tensor,
    train_targets: Sequence[TaskTargets],
    x_val: torch.Tensor | None = None,
    val_targets: Sequence[TaskTargets] | None = None,
    epochs: int = 60,
    lr: float = 2e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train the shared layer and the heads on the embeddings, full batch, weighted losses.
    With validation data, each epoch's validation score per task is in ``curves``."""
    started = time.monotonic()
    torch.manual_seed(seed)
    tasks = [t.task for t in train_targets]
    model = MultiHead(x_train.shape[1], tasks)
    model.mean.copy_(x_train.mean(0))
    model.std.copy_(x_train.std(0).clamp_min(1e-6))
    scales = [chance_loss(t) for t in train_targets]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = 5
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    result = FitResult(model)
    for epoch in range(1, epochs + 1):
        model.train()
        for _ in range(steps_per_epoch):
            out = model(x_train)
            losses = [
                task_loss(out[t.task.name], t) / s
                for t, s in zip(train_targets, scales, strict=True)
            ]
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        event: dict[str, Any] = {"epoch": epoch, "train_loss": float(loss.detach())}
        if x_val is not None and val_targets is not None and (epoch % 5 == 0 or epoch == epochs):
            probs = predict_probs(model, x_val)
            event["tasks"] = {t.task.name: score(t, probs[t.task.name]) for t in val_targets}
            result.curves.append(event)
        if on_epoch is not None and "tasks" in event:
            on_epoch(event)
    model.eval()
    result.seconds = time.monotonic() - started
    return result


@torch.no_grad()
def predict_logits(model: MultiHead, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    return model(x)


def predict_probs(model: MultiHead, x: torch.Tensor, temperatures: dict[str, float] | None = None,
                  kinds: dict[str, str] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Per task: softmax rows (one-of) or sigmoid per tag (tags)."""
    return probs_from_logits(model, predict_logits(model, x), temperatures, kinds)


def probs_from_logits(model: MultiHead, logits: dict[str, torch.Tensor],
                      temperatures: dict[str, float] | None = None,
                      kinds: dict[str, str] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Per task: softmax rows over the task's temperature (one-of) or a sigmoid per tag."""
    kinds = kinds or {}
    probs = {}
    for name, value in logits.items():
        kind = kinds.get(name) or _kind_of(model, name)
        if kind == "tags":
            probs[name] = torch.sigmoid(value).numpy()
        else:
            t = (temperatures or {}).get(name, 1.0)
            probs[name] = torch.softmax(value / t, 1).numpy()
    return probs


def _kind_of(model: MultiHead, name: str) -> str:
    return getattr(model, "kinds", {}).get(name, "one-of")


# -- scores ---------------------------------------------------------------------------------------
def average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the precision-recall steps; None for a tag with no positive."""
    positives = int(y.sum())
    if positives == 0:
        return None
    order = np.argsort(-p, kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / positives)


def f1(tp: float, fp: float, fn: float) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def score(
    t: TaskTargets, probs: np.ndarray, thresholds: Sequence[float] | None = None
) -> dict[str, Any]:
    """accuracy and macro_f1 (one-of), or map and micro_f1 (tags; 0.5 unless ``thresholds``)."""
    mask = t.mask.numpy()
    if t.task.kind == "tags":
        y, p = t.y.numpy()[mask], probs[mask]
        cut = np.asarray(thresholds if thresholds is not None else [0.5] * y.shape[1])
        pred = p >= cut
        aps = [average_precision(y[:, j], p[:, j]) for j in range(y.shape[1])]
        aps = [a for a in aps if a is not None]
        tp, fp, fn = (pred & (y > 0)).sum(), (pred & (y == 0)).sum(), (~pred & (y > 0)).sum()
        return {
            "map": float(np.mean(aps)) if aps else None,
            "micro_f1": f1(tp, fp, fn),
            "items": int(mask.sum()),
        }
    y, p = t.y.numpy()[mask], probs[mask].argmax(1)
    per_class = []
    for c in range(len(t.task.classes)):
        if (y == c).any() or (p == c).any():
            per_class.append(
                f1(
                    ((p == c) & (y == c)).sum(),
                    ((p == c) & (y != c)).sum(),
                    ((p != c) & (y == c)).sum(),
                )
            )
    return {"accuracy": float((p == y).mean()) if len(y) else None,
            "macro_f1": float(np.mean(per_class)) if per_class else None, "items": int(mask.sum())}  # fmt: skip


def choose_thresholds(t: TaskTargets, probs: np.ndarray) -> list[float]:
    """Per tag, the cut between validation probabilities with the best F1 (0.5 for a tag
    with no positive in validation)."""
    mask = t.mask.numpy()
    y, p = t.y.numpy()[mask], probs[mask]
    chosen = []
    for j in range(y.shape[1]):
        if not y[:, j].any():
            chosen.append(0.5)
            continue
        best, best_f1 = 0.5, -1.0
        for cut in np.unique(np.round(p[:, j], 4)):
            pred = p[:, j] >= cut
            value = f1(
                (pred & (y[:, j] > 0)).sum(),
                (pred & (y[:, j] == 0)).sum(),
                (~pred & (y[:, j] > 0)).sum(),
            )
            if value > best_f1:
                best, best_f1 = float(cut), value
        chosen.append(best)
    return chosen


def fit_temperature(t: TaskTargets, logits: torch.Tensor) -> float:
    """The temperature with the lowest validation log loss (one number per one-of task)."""
    mask = t.mask
    if not bool(mask.any()):
        return 1.0
    losses = [float(F.cross_entropy(logits[mask] / temp, t.y[mask])) for temp in TEMPERATURES]
    return TEMPERATURES[int(np.argmin(losses))]


def save_heads(path: Path, model: MultiHead, tasks: Sequence[ColumnTask], thresholds: dict[str, list[float]],
               temperatures: dict[str, float]) -> None:  # fmt: skip
    import json

    from safetensors.torch import save_file

    meta = {"tasks": json.dumps([t.__dict__ for t in tasks]), "thresholds": json.dumps(thresholds),
            "temperatures": json.dumps(temperatures), "dim": str(int(model.mean.shape[0]))}  # fmt: skip
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), meta)


def load_heads(
    path: Path,
) -> tuple[MultiHead, list[ColumnTask], dict[str, list[float]], dict[str, float]]:
    import json

    from safetensors import safe_open

    with safe_open(str(path), "pt") as stored:
        meta = stored.metadata()
        state = {k: stored.get_tensor(k) for k in stored.keys()}  # noqa: SIM118
    tasks = [ColumnTask(**t) for t in json.loads(meta["tasks"])]
    model = heads_from_state(state, tasks)
    return model, tasks, json.loads(meta["thresholds"]), json.loads(meta["temperatures"])


def heads_from_state(state: dict[str, torch.Tensor], tasks: Sequence[ColumnTask]) -> MultiHead:
    """The shared layer and heads of ``tasks`` with the saved weights (strict: a task whose
    head does not fit raises)."""
    model = MultiHead(
        int(state["mean"].shape[0]), tasks, hidden=int(state["shared.1.weight"].shape[0])
    )
    model.load_state_dict(state)
    return model.eval()
