"""Classification metrics the pages show: accuracy, confusion matrix, per-class scores.

Plain functions on integer label tensors so the trainer, the evaluation page
and tests compute them the same way.
"""

from __future__ import annotations

from typing import Any

import torch


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of correct predictions; 0.0 for an empty set rather than NaN."""
    if targets.numel() == 0:
        return 0.0
    return int((predictions == targets).sum().item()) / targets.numel()


def confusion_matrix(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> list[list[int]]:
    """matrix[true][predicted] counts, as nested lists so it goes straight to JSON."""
    index = targets.long() * num_classes + predictions.long()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).tolist()


def per_class(matrix: list[list[int]], classes: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class, read off a confusion matrix."""
    rows = []
    for i, name in enumerate(classes):
        true_pos = matrix[i][i]
        support = sum(matrix[i])
        predicted = sum(row[i] for row in matrix)
        precision = true_pos / predicted if predicted else 0.0
        recall = true_pos / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support}
        )
    return rows


def accuracy_from_confusion(matrix: list[list[int]]) -> float:
    total = sum(sum(row) for row in matrix)
    return sum(matrix[i][i] for i in range(len(matrix))) / total if total else 0.0
