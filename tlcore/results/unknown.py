""" "None of these": how far a photo is from everything the model was trained on.

A classifier always answers with one of its classes, even for a cup of coffee.
Every prediction therefore also gets an unknown-ness score and a threshold.

The method was chosen by measurement, not by taste (``compare_methods``; run
``python -m benchmarks.unknown_detection``). On the two bundled samples, each model's
validation photos (known) against all of the other sample's photos (unknown), AUROC:

=================================  ==========================  ==========================
score                              ants/bees model, clothing   clothing4 model, ants/bees
=================================  ==========================  ==========================
max softmax probability            0.943                       0.721
max softmax probability, with T    0.943                       0.697
energy (Liu et al. 2020)           0.943                       0.873
energy, with T                     0.943                       0.851
class-mean Mahalanobis             0.939                       0.983
k-NN, k=1 (Sun et al. 2022)        **0.991**                   **1.000**
k-NN, k=5                          0.971                       1.000
k-NN, k=10                         0.961                       1.000
=================================  ==========================  ==========================

(``tlcore train`` defaults, 224 px; ``T`` the fitted temperature; Mahalanobis with a
Ledoit-Wolf shrunk covariance; measured 2026-11-29.) So the score is the
k-nearest-neighbour distance of Sun et al. 2022 ("Out-of-Distribution Detection with
Deep Nearest Neighbors"): the
photo's pooled backbone features, scaled to length 1, and their Euclidean distance
to the nearest training photo's (0 = the same as a training photo, 1.41 = nothing
in common). The threshold is set on the validation photos so that ``accept``
(95 %) of photos of the model's own classes are accepted.

``knn_distance`` is the plain function other features can reuse (``exclude_self=True``
scores a set of photos against each other). The data doctor's outliers do not: when
several odd photos slipped in together they are each other's nearest neighbours, and
the distance to each class's mean found them where the nearest photo did not
(``tlcore.results.doctor``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

METHOD = "knn"
K = 1
ACCEPT = 0.95
MAX_BANK = 2000  # training photos kept as neighbours: bounds the file and the export's size


def unit(embeddings: torch.Tensor) -> torch.Tensor:
    """Features scaled to length 1 (the kNN score compares directions, not magnitudes)."""
    return F.normalize(embeddings.detach().float().cpu(), dim=1)


def knn_distance(
    bank: torch.Tensor, queries: torch.Tensor, k: int = K, *, exclude_self: bool = False
) -> torch.Tensor:
    """Distance from each unit-length query to its ``k``-th nearest unit-length bank vector.

    With ``exclude_self`` the queries are the bank itself and each one's zero distance
    to itself is skipped (outliers inside a training set).
    """
    bank, queries = unit(bank), unit(queries)
    if len(bank) == 0 or len(queries) == 0:
        return torch.zeros(len(queries))
    distances = (2 - 2 * queries @ bank.T).clamp_min(0).sqrt()
    if exclude_self:
        distances.fill_diagonal_(float("inf"))
    k = max(1, min(int(k), bank.shape[0] - (1 if exclude_self else 0)))
    return distances.topk(k, dim=1, largest=False).values[:, -1]


def auroc(known: torch.Tensor, unknown: torch.Tensor) -> float:
    """Chance that an unknown photo scores higher than a known one (ties count half)."""
    known, unknown = known.detach().double().cpu(), unknown.detach().double().cpu()
    if len(known) == 0 or len(unknown) == 0:
        return float("nan")
    greater = (unknown[:, None] > known[None, :]).double().sum()
    ties = (unknown[:, None] == known[None, :]).double().sum()
    return float((greater + 0.5 * ties) / (len(known) * len(unknown)))


def threshold_for(known_scores: torch.Tensor, accept: float = ACCEPT) -> float:
    """The smallest score that accepts at least ``accept`` of ``known_scores``."""
    scores = known_scores.detach().double().cpu().sort().values
    if len(scores) == 0:
        return float("inf")
    index = min(len(scores) - 1, max(0, int(torch.tensor(accept * len(scores)).ceil()) - 1))
    return float(scores[index])


@dataclass
class UnknownDetector:
    """Training photos' unit-length features and the distance past which a photo is unknown."""

    bank: torch.Tensor  # (N, D) unit vectors
    threshold: float
    k: int = K
    accept: float = ACCEPT
    method: str = METHOD

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Higher = less like any training photo."""
        return knn_distance(self.bank, embeddings, self.k)

    def is_unknown(self, scores: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        return scores > (self.threshold if threshold is None else threshold)

    def meta(self) -> dict[str, Any]:
        """The JSON half (the bank travels as a tensor file)."""
        return {
            "method": self.method,
            "k": self.k,
            "threshold": self.threshold,
            "accept": self.accept,
            "bank_size": int(self.bank.shape[0]),
            "dim": int(self.bank.shape[1]) if self.bank.dim() == 2 else 0,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any], bank: torch.Tensor) -> UnknownDetector:
        return cls(
            bank=unit(bank),
            threshold=float(meta["threshold"]),
            k=int(meta.get("k", K)),
            accept=float(meta.get("accept", ACCEPT)),
            method=str(meta.get("method", METHOD)),
        )


def is_unknown_score(score: float | None, threshold: float | None) -> bool | None:
    """Whether one photo's score means "none of these" at ``threshold``: strictly farther
    than it, the rule of ``UnknownDetector.is_unknown``. None without a score or threshold."""
    if score is None or threshold is None:
        return None
    return float(score) > float(threshold)


def bank_indices(labels: list[int], limit: int = MAX_BANK, seed: int = 0) -> list[int]:
    """At most ``limit`` training photos, every class kept in proportion (all when fewer)."""
    if len(labels) <= limit:
        return list(range(len(labels)))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    by_class: dict[int, list[int]] = {}
    for i in order:
        by_class.setdefault(labels[i], []).append(i)
    share = limit / len(labels)
    picked = [
        i for members in by_class.values() for i in members[: max(1, round(share * len(members)))]
    ]
    return sorted(picked[:limit])


def fit_unknown_detector(
    train_embeddings: torch.Tensor,
    val_embeddings: torch.Tensor,
    *,
    accept: float = ACCEPT,
    k: int = K,
) -> UnknownDetector:
    """The bank from the training photos; the threshold from the validation photos.

    Without validation photos the training photos are scored against each other
    (leave one out), which is the next most honest stand-in for new photos.
    """
    bank = unit(train_embeddings)
    if len(val_embeddings):
        known = knn_distance(bank, val_embeddings, k)
    else:
        known = knn_distance(bank, bank, k, exclude_self=True)
    return UnknownDetector(bank=bank, threshold=threshold_for(known, accept), k=k, accept=accept)


# -- the measurement behind the choice ------------------------------------------------------


def _mahalanobis(
    train: torch.Tensor, labels: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Class means with one Ledoit-Wolf shrunk covariance (Lee et al. 2018)."""
    from sklearn.covariance import LedoitWolf

    classes = sorted(set(labels.tolist()))
    means = torch.stack([train[labels == c].mean(0) for c in classes]).double()
    centred = (train.double() - means[torch.searchsorted(torch.tensor(classes), labels)]).numpy()
    precision = torch.tensor(LedoitWolf().fit(centred).precision_, dtype=torch.float64)

    def score(x: torch.Tensor) -> torch.Tensor:
        d = x.double()[:, None, :] - means[None]
        return torch.einsum("ncd,de,nce->nc", d, precision, d).min(1).values.float()

    return score


def compare_methods(
    train_embeddings: torch.Tensor,
    train_labels: torch.Tensor,
    known: tuple[torch.Tensor, torch.Tensor],
    unknown: tuple[torch.Tensor, torch.Tensor],
    temperature: float = 1.0,
) -> dict[str, float]:
    """AUROC of each candidate score; ``known``/``unknown`` are (embeddings, logits) pairs."""
    t = temperature
    logit_scores: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "max softmax probability": lambda z: -z.softmax(1).max(1).values,
        "max softmax probability (calibrated)": lambda z: -(z / t).softmax(1).max(1).values,
        "energy": lambda z: -torch.logsumexp(z, 1),
        "energy (calibrated)": lambda z: -t * torch.logsumexp(z / t, 1),
    }
    maha = _mahalanobis(train_embeddings.float(), torch.as_tensor(train_labels))
    embedding_scores: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "class-mean Mahalanobis": maha,
        **{
            f"k-NN, k={k}": (lambda e, k=k: knn_distance(train_embeddings, e, k))
            for k in (1, 5, 10)
        },
    }
    out = {name: auroc(f(known[1]), f(unknown[1])) for name, f in logit_scores.items()}
    out.update({name: auroc(f(known[0]), f(unknown[0])) for name, f in embedding_scores.items()})
    return out
