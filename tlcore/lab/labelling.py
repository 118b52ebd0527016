"""Which photos to label next: the ones the model is least sure of, spread over the collection.

Most people have many photos and few labels. Labelling the photos the current model
is torn about teaches it more than labelling ones it already gets right, but the most
uncertain photos are often twenty copies of one look. So a batch is chosen greedily by
*uncertainty times distance*: each pick is the unlabelled photo whose margin of doubt
(``1 - (p1 - p2)``, the gap between its two likeliest classes) times its distance to
the nearest photo labelled or already picked is largest (k-center greedy on the
unit-length cached embeddings, weighted by doubt). After a pick, its near-duplicates
(distance below ``LOOKALIKE``) leave the batch: one photo of a group is asked for.
With no model yet (nothing labelled, no class-name guesses) the doubt is 1 everywhere
and the batch is pure k-center: a spread of the collection's looks. On a large collection
the batch is chosen among the ``POOL`` most doubtful photos, so the next batch of 50,000
stays well under 2 s (``python -m benchmarks label_suggest``).

The model is the fast path's head (``tlcore.training.head_solver``): a logistic
regression on the cached embeddings, its L2 chosen by cross-validation on the labelled
photos, refitted in about a second after each batch. Its cross-validated accuracy is the
estimate a person sees before they have a check set. Nothing here reads a file: the
session (``tlcore.lab.label_session``) and the replay (``tlcore.lab.label_simulation``)
bring the embeddings.

No active-learning library was taken: modAL and small-text need scikit-learn estimators
and bring their own loops; the strategy is ~60 lines on tensors here, tested for what
it picks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlcore.errors import ConfigError
from tlcore.training.head_solver import C_GRID, LogisticHead, choose_l2, one_cpu_thread

BATCH_SIZE = 12  # photos asked for at once: a screen's grid, a refit after each
# where the guesses come from, in the reasons: a model fitted on labels, or the class names
GUESSERS = {
    "model": ("the model is torn between {a} and {b}", "the model guesses {a}"),
    "names": ("from the class names alone, it could be {a} or {b}",
              "from the class names alone, it looks like {a}"),
}  # fmt: skip
KEEP_C_UNTIL = 2.0  # a refit keeps the L2 strength until the labels have doubled
MAX_BATCH = 100
# Euclidean distance between unit embeddings under which two photos count as look-alikes
# (the same photo saved twice is 0; bursts of one scene measured 0.1-0.2 on the samples).
LOOKALIKE = 0.15
CHUNK = 8192  # rows per block when comparing every photo with the labelled ones
# Photos a batch is chosen among: the most doubtful ones (a seeded random sample when there
# is no model). Comparing all 50,000 photos with hundreds of labelled ones took seconds; the
# most doubtful 4,000 hold the batch's picks anyway (doubt multiplies every score).
POOL = 4000


@dataclass
class Suggestion:
    """One photo to label: its index in the collection, why it was chosen, the model's guess."""

    index: int
    reason: str
    guess: str | None = None  # the likeliest class now (None with no model yet)
    confidence: float | None = None  # its probability
    doubt: float = 1.0  # 1 - (p1 - p2): 1 when the model cannot tell, 0 when sure
    distance: float = 0.0  # to the nearest photo labelled (or picked) before it
    lookalikes: int = 0  # unlabelled photos this one stands for in the batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_batch_size(size: int) -> int:
    if not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
        raise ConfigError(f"The batch size must be a whole number from 1 to {MAX_BATCH} "
                          f"(got {size!r}).")  # fmt: skip
    return size


def doubt(probabilities: torch.Tensor) -> torch.Tensor:
    """1 - (p1 - p2) per row: how torn the model is between its two likeliest classes."""
    if probabilities.shape[1] < 2:
        return torch.ones(len(probabilities))
    top = probabilities.float().topk(2, dim=1).values
    return (1.0 - (top[:, 0] - top[:, 1])).clamp(0.0, 1.0)


def nearest_distance(unit: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each row of ``unit`` to its nearest row of ``others`` (both
    unit length), in blocks so 50,000 photos against hundreds of labels stay small."""
    out = torch.full((len(unit),), 2.0)
    if len(others) == 0:
        return out
    for start in range(0, len(unit), CHUNK):
        block = unit[start : start + CHUNK]
        similarity = (block @ others.T).max(1).values
        out[start : start + CHUNK] = (2.0 - 2.0 * similarity).clamp_min(0.0).sqrt()
    return out


def suggest_batch(
    embeddings: torch.Tensor,
    labelled: Sequence[int],
    probabilities: torch.Tensor | None = None,
    classes: Sequence[str] = (),
    size: int = BATCH_SIZE,
    left_out: Sequence[int] = (),
    seed: int = 0,
    guesser: str = "model",
) -> list[Suggestion]:
    """The next ``size`` photos to label (fewer when the rest are look-alikes of these).

    ``embeddings`` (N, D) of the whole collection; ``labelled`` the indices labelled so
    far; ``probabilities`` (N, C) the model's guesses (None before there is a model);
    ``left_out`` photos skipped or answered "none of these", never suggested again;
    ``guesser`` says where the guesses come from (a ``GUESSERS`` key) in the reasons.
    """
    check_batch_size(size)
    if guesser not in GUESSERS:
        raise ConfigError(f"guesser must be one of {', '.join(GUESSERS)} (got {guesser!r}).")
    with one_cpu_thread(torch.device("cpu")):
        return _suggest(embeddings, labelled, probabilities, list(classes), size, left_out, seed,
                        guesser)  # fmt: skip


def _suggest(embeddings: torch.Tensor, labelled: Sequence[int], probabilities: torch.Tensor | None,
             classes: list[str], size: int, left_out: Sequence[int], seed: int,
             guesser: str) -> list[Suggestion]:  # fmt: skip
    n = len(embeddings)
    labelled_idx = torch.as_tensor(list(labelled), dtype=torch.long)
    open_ = torch.ones(n, dtype=torch.bool)
    open_[labelled_idx] = False
    open_[torch.as_tensor(list(left_out), dtype=torch.long)] = False
    doubts = doubt(probabilities.cpu()) if probabilities is not None else torch.ones(n)
    pool = candidates(open_, doubts, probabilities is not None, seed)
    unit = F.normalize(embeddings[pool].float().cpu(), dim=1)
    open_, doubts = torch.ones(len(pool), dtype=torch.bool), doubts[pool]
    nearest = nearest_distance(unit, F.normalize(embeddings[labelled_idx].float().cpu(), dim=1))
    open_ &= nearest > LOOKALIKE  # a copy of a labelled photo teaches nothing new
    open_ &= torch.isfinite(unit).all(1)
    if probabilities is not None:
        probabilities = probabilities[pool]
    spread_before = float(nearest[open_].median()) if bool(open_.any()) and len(labelled_idx) else 0
    picks: list[Suggestion] = []
    if not bool(open_.any()):
        return picks
    if len(labelled_idx) == 0 and probabilities is None:
        # nothing to be unsure about and nothing to be far from: start at a seeded random photo
        first = random.Random(seed).choice(open_.nonzero().flatten().tolist())
        picks.append(_pick(first, unit, open_, nearest, doubts, probabilities, classes, True, 0,
                           guesser))  # fmt: skip
    while len(picks) < size and bool(open_.any()):
        score = torch.where(open_, (doubts + 1e-3) * nearest, torch.tensor(-1.0))
        index = int(score.argmax())
        picks.append(_pick(index, unit, open_, nearest, doubts, probabilities, classes, False,
                           spread_before, guesser))  # fmt: skip
    for pick in picks:  # back to the collection's numbering
        pick.index = int(pool[pick.index])
    return picks


def candidates(
    open_: torch.Tensor, doubts: torch.Tensor, has_model: bool, seed: int
) -> torch.Tensor:
    """Indices of the photos a batch is chosen among: every open one up to ``POOL``, else the
    ``POOL`` most doubtful (a seeded random ``POOL`` when there is no model to doubt)."""
    indices = open_.nonzero().flatten()
    if len(indices) <= POOL:
        return indices
    if has_model:
        return indices[doubts[indices].topk(POOL).indices]
    generator = torch.Generator().manual_seed(seed)
    return indices[torch.randperm(len(indices), generator=generator)[:POOL]]


def _pick(index: int, unit: torch.Tensor, open_: torch.Tensor, nearest: torch.Tensor,
          doubts: torch.Tensor, probabilities: torch.Tensor | None, classes: list[str],
          first: bool, spread_before: float, guesser: str) -> Suggestion:  # fmt: skip
    """Take photo ``index``: close its look-alikes, move every distance to count it, say why."""
    distance = float(nearest[index])
    to_pick = (2.0 - 2.0 * (unit @ unit[index])).clamp_min(0.0).sqrt()
    alike = open_ & (to_pick <= LOOKALIKE)
    alike[index] = False
    lookalikes = int(alike.sum())
    open_[index] = False
    open_ &= ~alike
    torch.minimum(nearest, to_pick, out=nearest)
    guess = confidence = None
    if probabilities is not None and classes:
        top = probabilities[index].float().topk(min(2, len(classes)))
        guess, confidence = classes[int(top.indices[0])], float(top.values[0])
    suggestion = Suggestion(
        index, "", guess, confidence, float(doubts[index]), distance, lookalikes
    )
    suggestion.reason = reason(suggestion, probabilities, classes, first, spread_before, guesser)
    return suggestion


def reason(s: Suggestion, probabilities: torch.Tensor | None, classes: Sequence[str],
           first: bool, spread_before: float, guesser: str = "model") -> str:  # fmt: skip
    """Why this photo, in words (class names as given: the page escapes them)."""
    parts = []
    if first:
        parts.append("a starting point, picked at random: nothing is labelled yet")
    elif probabilities is None:
        parts.append("it looks unlike every photo labelled or picked so far, so it covers a "
                     "part of the collection nobody has labelled")  # fmt: skip
    else:
        row = probabilities[s.index].float()
        top = row.topk(min(2, len(classes)))
        names = [(classes[int(i)], float(p)) for p, i in zip(top.values, top.indices, strict=True)]
        if s.doubt >= 0.5 and len(names) == 2:
            a, b = (f"{name} ({p:.0%})" for name, p in names)
            parts.append(GUESSERS[guesser][0].format(a=a, b=b))
        else:
            parts.append(GUESSERS[guesser][1].format(a=f"{names[0][0]} ({names[0][1]:.0%})"))
        if spread_before and s.distance > spread_before:
            parts.append("it looks unlike the photos labelled so far")
        elif s.doubt < 0.5:
            parts.append("it is there for spread: it looks unlike the photos labelled or "
                         "picked so far")  # fmt: skip
    if s.lookalikes:
        many = "photo" if s.lookalikes == 1 else "photos"
        parts.append(f"it stands for {s.lookalikes} look-alike {many}, asked once")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


# --- the model: a head on the cached embeddings ---------------------------------------------
@dataclass
class LabelModel:
    """The head fitted on the labelled photos and what cross-validation says of it."""

    classes: list[str]
    labels: int  # labelled photos it learned from
    c: float = 1.0
    cv_accuracy: float | None = None  # held-out accuracy over k folds of the labelled photos
    folds: int = 0
    chosen_at: int = 0  # labels when ``c`` was chosen over the whole grid
    head: LogisticHead | None = field(default=None, repr=False)

    def probabilities(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, classes) guesses; the solver's centring folded into one float32 matrix product
        (50,000 photos: no double-precision copy of the whole collection)."""
        if self.head is None:
            return torch.full((len(embeddings), len(self.classes)), 1.0 / len(self.classes))
        with torch.no_grad():
            weight = self.head.weight / self.head.scale
            bias = self.head.bias - weight @ self.head.mean
            logits = embeddings.float().cpu() @ weight.float().T + bias.float()
        return logits.softmax(1)

    def summary(self) -> dict[str, Any]:
        return {"labels": self.labels, "C": self.c, "cv_accuracy": self.cv_accuracy,
                "folds": self.folds, "C_chosen_at": self.chosen_at}  # fmt: skip


def fit_model(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    seed: int = 0,
    c: float | None = None,
) -> LabelModel:
    """A logistic head on the labelled photos' embeddings; its L2 chosen by k-fold CV when
    every labelled class has 2 photos or more (the CV's best held-out accuracy is kept).
    With ``c`` the CV only scores that strength (a quarter of the fits: a refit between
    batches keeps the strength chosen a few batches before)."""
    classes = list(classes)
    labels = labels.long().cpu()
    if len(labels) == 0 or len(labels.unique()) < 2:
        return LabelModel(classes, len(labels))  # one class alone: nothing to tell apart
    x = embeddings.float().cpu()
    criterion = nn.CrossEntropyLoss()
    grid = C_GRID if c is None else (c,)
    fit = choose_l2(x.unsqueeze(0), labels, len(classes), criterion, seed, grid)
    cv = max(fit.cv_accuracy.values()) if fit.cv_accuracy else None
    with one_cpu_thread(torch.device("cpu")):
        head = LogisticHead(x, labels, len(classes), criterion, fit.c).solve()
    chosen_at = len(labels) if c is None else 0
    return LabelModel(classes, len(labels), fit.c, cv, fit.folds, chosen_at, head)


def accuracy(model: LabelModel, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        return math.nan
    predicted = model.probabilities(embeddings).argmax(1)
    return float((predicted == labels.cpu()).float().mean())
