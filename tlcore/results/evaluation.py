"""How good is a trained model, and where does it go wrong, in numbers and in words.

Accuracy alone hides which classes suffer; a newcomer needs per-class scores,
the confusion matrix, the pairs it mixes up ("12 ants predicted as bees") and
the very images it gets most wrong (fastai's ``plot_top_losses``). Everything is
computed from one set of predicted probabilities, so the numbers agree with each
other; the counting itself reuses ``tlcore.training.metrics``, the same code the trainer
uses for its per-epoch confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from tlcore.training.metrics import accuracy_from_confusion, confusion_matrix, per_class


@dataclass
class Mistake:
    """One image the model found hard: its loss, what it is, what the model said."""

    path: str
    true: str
    predicted: str
    confidence: float  # probability of the predicted class
    true_probability: float
    loss: float  # cross-entropy: -log p(true class)

    @property
    def correct(self) -> bool:
        return self.true == self.predicted


@dataclass
class EvaluationReport:
    """Everything the Evaluate page and ``tlcore evaluate`` show, as plain data."""

    classes: list[str]
    per_class: list[dict[str, Any]]  # class, precision, recall, f1, support
    accuracy: float
    macro_f1: float
    confusion: list[list[int]]  # [true][predicted] counts
    confusion_normalized: list[list[float]]  # each row divided by its support
    confused_pairs: list[dict[str, Any]]  # true, predicted, count, text; most first
    worst: list[Mistake] = field(default_factory=list)  # highest loss first
    n_images: int = 0
    loss: float = 0.0
    source: str = ""  # which model and split, for captions

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["worst"] = [asdict(m) for m in self.worst]
        return data

    def text(self) -> str:
        """A classification report a person reads in a terminal (like scikit-learn's)."""
        width = max([len("macro avg"), *(len(c) for c in self.classes)])
        lines = [f"{'':{width}}  precision  recall  f1-score  support"]
        for row in self.per_class:
            lines.append(
                f"{row['class']:{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  "
                f"{row['f1']:8.3f}  {row['support']:7d}"
            )
        lines.append("")
        lines.append(
            f"{'accuracy':{width}}  {'':9}  {'':6}  {self.accuracy:8.3f}  {self.n_images:7d}"
        )
        lines.append(
            f"{'macro avg':{width}}  {'':9}  {'':6}  {self.macro_f1:8.3f}  {self.n_images:7d}"
        )
        if self.confused_pairs:
            lines.append("")
            lines.append("Most confused: " + "; ".join(p["text"] for p in self.confused_pairs[:5]))
        return "\n".join(lines)


def row_normalize(matrix: Sequence[Sequence[int]]) -> list[list[float]]:
    """Each true class's row as fractions, so a rare class's mistakes are as visible as others'."""
    out = []
    for row in matrix:
        total = sum(row)
        out.append([value / total if total else 0.0 for value in row])
    return out


def confused_pairs(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> list[dict[str, Any]]:
    """Off-diagonal cells, largest first, each with a sentence: "12 ants predicted as bees"."""
    pairs = [
        {"true": classes[t], "predicted": classes[p], "count": int(matrix[t][p])}
        for t in range(len(classes))
        for p in range(len(classes))
        if t != p and matrix[t][p] > 0
    ]
    pairs.sort(key=lambda x: (-x["count"], x["true"], x["predicted"]))
    for pair in pairs:
        pair["text"] = f"{pair['count']} {pair['true']} predicted as {pair['predicted']}"
    return pairs


def evaluate_probabilities(
    probabilities: torch.Tensor,
    targets: Sequence[int] | torch.Tensor,
    classes: Sequence[str],
    paths: Sequence[str] | None = None,
    *,
    worst_k: int = 12,
    source: str = "",
) -> EvaluationReport:
    """The full report from predicted probabilities (N, C) and the true labels (N)."""
    classes = list(classes)
    probs = probabilities.detach().float().cpu()
    target = torch.as_tensor(targets, dtype=torch.long).cpu()
    paths = list(paths) if paths is not None else [""] * len(target)
    preds = probs.argmax(dim=1) if len(target) else torch.empty(0, dtype=torch.long)
    matrix = confusion_matrix(preds, target, len(classes))
    rows = per_class(matrix, classes)
    true_p = probs.gather(1, target[:, None])[:, 0] if len(target) else torch.empty(0)
    losses = -true_p.clamp_min(1e-12).log()
    worst = [
        Mistake(
            path=paths[i],
            true=classes[int(target[i])],
            predicted=classes[int(preds[i])],
            confidence=float(probs[i, preds[i]]),
            true_probability=float(true_p[i]),
            loss=float(losses[i]),
        )
        for i in losses.argsort(descending=True, stable=True)[:worst_k].tolist()
    ]
    return EvaluationReport(
        classes=classes,
        per_class=rows,
        accuracy=accuracy_from_confusion(matrix),
        macro_f1=sum(r["f1"] for r in rows) / len(rows) if rows else 0.0,
        confusion=matrix,
        confusion_normalized=row_normalize(matrix),
        confused_pairs=confused_pairs(matrix, classes),
        worst=worst,
        n_images=len(target),
        loss=float(losses.mean()) if len(target) else 0.0,
        source=source,
    )
