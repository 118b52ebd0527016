"""The photos behind one cell of the confusion matrix ("the 3 ants it called bees").

A count in a matrix is abstract; the photos behind it are what a newcomer can act
on (a wrong label, a bee half out of the frame, a background the model leaned on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class CellPhoto:
    """One validation photo of a (true, predicted) cell with its calibrated probabilities."""

    path: str
    true: str
    predicted: str
    probability: float  # of the predicted class
    true_probability: float


def photos_in_cell(
    probabilities: torch.Tensor,
    targets: Sequence[int],
    classes: Sequence[str],
    paths: Sequence[str],
    true: str,
    predicted: str,
) -> list[CellPhoto]:
    """Exactly the photos of class ``true`` that the model called ``predicted``, surest first."""
    classes = list(classes)
    t, p = classes.index(true), classes.index(predicted)
    probs = probabilities.detach().float().cpu()
    guesses = probs.argmax(dim=1).tolist() if len(probs) else []
    cell = [
        CellPhoto(
            path=str(paths[i]),
            true=true,
            predicted=predicted,
            probability=float(probs[i, p]),
            true_probability=float(probs[i, t]),
        )
        for i, (target, guess) in enumerate(zip(targets, guesses, strict=True))
        if int(target) == t and guess == p
    ]
    return sorted(cell, key=lambda c: -c.probability)
