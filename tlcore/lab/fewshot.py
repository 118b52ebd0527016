"""Few-shot classification: a class is the mean of a handful of its photos' embeddings.

With 1-10 photos per class there is too little to train even a head, but a
pretrained backbone already places similar photos close together. So each
class becomes one *prototype*, the normalised mean of its photos' normalised
embeddings, and a new photo gets the class whose prototype is most similar
(cosine). Nothing is trained: predictions are ready as soon as the examples are
embedded, and the embeddings go through the one embedding cache
(``tlcore.training.embedder.Embedder``): photos the trainer or the doctor embedded
with the same backbone and size are read, not embedded again.

``shots_curve`` answers "how far do few examples go?": accuracy on the
validation split when each class gets only 1, 2, 5 or 10 random training
photos, averaged over many seeded draws.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from tlcore.data.manifest import Manifest
from tlcore.data.progress import ProgressCallback
from tlcore.errors import ConfigError, DataError
from tlcore.training.embedder import Embedder

DEFAULT_SHOTS = (1, 2, 5, 10)
DEFAULT_REPEATS = 20
MAX_REPEATS = 1000  # draws per point: a count of 1e9 never ended, and 1000 is already smooth
# Softmax sharpness over cosine similarities: scores, not calibrated probabilities.
TEMPERATURE = 10.0


@dataclass
class PrototypeClassifier:
    """One unit-length prototype per class; predicts the most cosine-similar class."""

    classes: list[str]
    prototypes: torch.Tensor  # (n_classes, dim), each row of length 1
    shots: list[int] = field(default_factory=list)  # examples behind each prototype

    @classmethod
    def fit(
        cls, embeddings: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]
    ) -> PrototypeClassifier:
        """Prototypes from labelled embeddings; every class needs at least one example."""
        classes = list(classes)
        if len(embeddings) != len(labels):
            raise DataError(f"{len(embeddings)} embeddings but {len(labels)} labels were given.")
        unit = F.normalize(embeddings.float(), dim=1)
        labels = labels.to(unit.device)
        rows, counts = [], []
        for index, name in enumerate(classes):
            members = unit[labels == index]
            if len(members) == 0:
                raise DataError(
                    f"Class {name!r} has no example image: give at least one photo per class."
                )
            rows.append(members.mean(0))
            counts.append(len(members))
        return cls(classes, F.normalize(torch.stack(rows), dim=1), counts)

    def similarities(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each embedding to each prototype, shape (n, n_classes)."""
        unit = F.normalize(embeddings.float(), dim=1).to(self.prototypes.device)
        return unit @ self.prototypes.T

    def predict_proba(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Softmax over scaled similarities: a ranking score that sums to 1, not a calibration."""
        return (self.similarities(embeddings) * TEMPERATURE).softmax(1)

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.similarities(embeddings).argmax(1)

    def accuracy(self, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
        if len(labels) == 0:
            return math.nan
        return float((self.predict(embeddings).cpu() == labels.cpu()).float().mean())


@dataclass
class ShotsPoint:
    """Validation accuracy with ``shots`` random training photos per class, over ``repeats`` draws."""

    shots: int
    mean: float
    std: float
    low: float
    high: float
    repeats: int


@dataclass
class ShotsCurve:
    """Accuracy vs shots per class, plus the reference of using every training photo."""

    classes: list[str]
    points: list[ShotsPoint]
    all_train_acc: float
    train_per_class: dict[str, int]
    n_val: int
    chance: float
    skipped: dict[int, str] = field(default_factory=dict)  # shots -> why not measured

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = {str(k): v for k, v in self.skipped.items()}
        return data

    def text(self) -> str:
        """A small table for the terminal."""
        lines = [f"shots/class  accuracy (mean ± std over draws, min-max); {self.n_val} val images"]
        for p in self.points:
            lines.append(
                f"{p.shots:>11}  {p.mean:.3f} ± {p.std:.3f}  ({p.low:.3f}-{p.high:.3f}, "
                f"{p.repeats} draws)"
            )
        for shots, why in self.skipped.items():
            lines.append(f"{shots:>11}  skipped: {why}")
        total = sum(self.train_per_class.values())
        lines.append(f"{'all':>11}  {self.all_train_acc:.3f}  (all {total} training photos)")
        lines.append(f"chance level: {self.chance:.3f}")
        return "\n".join(lines)


def parse_counts(
    text: str | Sequence[int], name: str, example: str, high: int = 100_000
) -> tuple[int, ...]:
    """'1,2,5,10' -> (1, 2, 5, 10), each from 1 to ``high``; ConfigError naming the bad part
    (``name`` and ``example`` say what the counts are: "shots", "1,2,5,10")."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    values = []
    for part in parts:
        try:
            value = int(str(part).strip())
        except ValueError:
            raise ConfigError(f"{name} {str(part)[:20]!r} is not a whole number: give e.g. "
                              f"{example}.") from None  # fmt: skip
        if not 1 <= value <= high:
            raise ConfigError(f"{name} {value} is not valid: each must be from 1 to {high:,}.")
        values.append(value)
    if not values:
        raise ConfigError(f"{name} is empty: give e.g. {example}.")
    return tuple(sorted(set(values)))


def parse_shots(text: str | Sequence[int]) -> tuple[int, ...]:
    """Photos per class for the ladder: '1,2,5,10' -> (1, 2, 5, 10)."""
    return parse_counts(text, "shots", "1,2,5,10")


def members_by_class(labels: torch.Tensor, n_classes: int) -> list[list[int]]:
    """Indices of each class's examples, computed once for many draws."""
    members: list[list[int]] = [[] for _ in range(n_classes)]
    for i, label in enumerate(labels.tolist()):
        members[label].append(i)
    return members


def sample_shots(members: list[list[int]], shots: int, rng: random.Random) -> list[int]:
    """Indices of ``shots`` random examples of every class (each class must have enough)."""
    return [i for indices in members for i in rng.sample(indices, shots)]


def curve_from_embeddings(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    classes: Sequence[str],
    shots: Sequence[int] = DEFAULT_SHOTS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> ShotsCurve:
    """The shots curve from embeddings already computed (pure: no model, no files)."""
    classes = list(classes)
    if not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"repeats = {repeats!r} is not valid: it must be a whole number "
                          f"from 1 to {MAX_REPEATS}.")  # fmt: skip
    (x_train, y_train), (x_val, y_val) = train, val
    if len(y_val) == 0:
        raise DataError(
            "The dataset has no validation images to measure accuracy on: add a val/ folder "
            "or give each class at least 2 photos."
        )
    per_class = {name: int((y_train == i).sum()) for i, name in enumerate(classes)}
    fewest = min(per_class.values())
    rng = random.Random(seed)
    members = members_by_class(y_train, len(classes))
    points, skipped = [], {}
    for k in parse_shots(shots):
        if k > fewest:
            poorest = min(per_class, key=per_class.get)
            skipped[k] = f"class {poorest!r} has only {fewest} training photos"
            continue
        scores = []
        for _ in range(repeats):
            idx = torch.tensor(sample_shots(members, k, rng))
            clf = PrototypeClassifier.fit(x_train[idx], y_train[idx], classes)
            scores.append(clf.accuracy(x_val, y_val))
        points.append(
            ShotsPoint(
                k,
                statistics.fmean(scores),
                statistics.pstdev(scores),
                min(scores),
                max(scores),
                repeats,
            )  # fmt: skip
        )
    everything = PrototypeClassifier.fit(x_train, y_train, classes).accuracy(x_val, y_val)
    return ShotsCurve(classes, points, everything, per_class, len(y_val), 1 / len(classes), skipped)


def load_manifest(
    data: str | Path | Manifest,
    val_fraction: float = 0.2,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """A manifest as given, or the one ``prepare_data`` writes for a folder or zip
    (``progress`` hears the photos being read)."""
    if isinstance(data, Manifest):
        return data
    from tlcore.data.prepare import prepare_trainable

    return prepare_trainable(data, "run few-shot on", val_fraction=val_fraction, seed=seed,
                             progress=progress).manifest  # fmt: skip


def shots_curve(
    data: str | Path | Manifest,
    shots: Sequence[int] = DEFAULT_SHOTS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    embedder: Embedder | None = None,
    progress: ProgressCallback | None = None,
) -> ShotsCurve:
    """Validation accuracy of prototypes from 1, 2, 5, 10 random training photos per class."""
    manifest = load_manifest(data, seed=seed, progress=progress)
    embedder = embedder or Embedder()
    train = embedder.embed_split(manifest, "train", progress)
    val = embedder.embed_split(manifest, "val", progress)
    return curve_from_embeddings(train, val, manifest.classes, shots, repeats, seed)


def prototypes_for(
    data: str | Path | Manifest, embedder: Embedder | None = None, shots: int | None = None,
    seed: int = 0, progress: ProgressCallback | None = None,
) -> PrototypeClassifier:  # fmt: skip
    """A classifier from the training photos (all, or ``shots`` random ones per class)."""
    manifest = load_manifest(data, seed=seed, progress=progress)
    embedder = embedder or Embedder()
    x, y = embedder.embed_split(manifest, "train", progress)
    if shots is not None:
        members = members_by_class(y, len(manifest.classes))
        if shots > min(len(m) for m in members):
            raise DataError(f"Some class has fewer than {shots} training photos.")
        idx = torch.tensor(sample_shots(members, shots, random.Random(seed)))
        x, y = x[idx], y[idx]
    return PrototypeClassifier.fit(x, y, manifest.classes)


def classify_images(
    classifier: PrototypeClassifier, embedder: Embedder, images: Sequence[Image.Image]
) -> list[list[tuple[str, float]]]:
    """For each image, every class with its score, best first."""
    if not images:
        return []
    probs = classifier.predict_proba(embedder.embed_images(images))
    ranked = []
    for row in probs.tolist():
        pairs = sorted(zip(classifier.classes, row, strict=True), key=lambda p: -p[1])
        ranked.append([(name, float(p)) for name, p in pairs])
    return ranked
