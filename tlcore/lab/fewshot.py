"""Few-shot classification: a class is the mean of a handful of its photos' embeddings.

With 1-10 photos per class there is too little to train even a head, but a
pretrained backbone already places similar photos close together. So each
class becomes one *prototype*, the normalised mean of its photos' normalised
embeddings, and a new photo gets the class whose prototype is most similar
(cosine). Nothing is trained: predictions are ready as soon as the examples are
embedded, and the embeddings are cached on disk like the trainer's fast path.

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

from tlcore import __version__, settings
from tlcore.data.manifest import Manifest
from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.errors import ConfigError, DataError
from tlcore.training import features

DEFAULT_SHOTS = (1, 2, 5, 10)
DEFAULT_REPEATS = 20
# Softmax sharpness over cosine similarities: scores, not calibrated probabilities.
TEMPERATURE = 10.0
BATCH_SIZE = 32


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


class _ImageListDataset(torch.utils.data.Dataset):
    """Preprocessed PIL images (already read) with placeholder labels, for ``features.embed``."""

    def __init__(self, images: Sequence[Image.Image], transform: Any) -> None:
        self.images, self.transform = list(images), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index].convert("RGB")), -1


class Embedder:
    """A pretrained backbone (its head unused) and its evaluation preprocessing."""

    def __init__(
        self,
        model: str = "tf_efficientnet_lite0",
        weights: str = "bundled",
        img_size: int | None = None,
        device: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        from tlcore.data.dataset import build_transform, resolve_data_config
        from tlcore.models.factory import create_model
        from tlcore.training.devices import resolve_device

        self.model_name, self.weights = model, weights
        self.device = resolve_device(device)
        self.model = create_model(model, None, weights).to(self.device).eval()
        self.data_config = resolve_data_config(self.model, img_size)
        self.transform = build_transform(self.data_config, train=False)
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()

    def _loader(self, dataset: torch.utils.data.Dataset) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, num_workers=0)

    def embed_split(
        self, manifest: Manifest, split: str, progress: ProgressCallback | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and labels of one split; read from the cache when seen before.

        ``progress`` hears "Embedding the train photos: k of N" (one Embedder serves every
        session of the app, so the callback comes with the call, not the object).
        """
        from tlcore.data.dataset import ManifestDataset

        dataset = ManifestDataset(manifest, split, self.transform)
        if len(dataset) == 0:
            return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
        files = [_file_stamp(item.path) for item in dataset.items]
        key = features.cache_key(
            self.identity() | {"manifest": manifest.fingerprint(), "split": split, "files": files}
        )
        tracker = Tracker(f"Embedding the {split} photos", len(dataset), progress)
        x, y, hit = features.embed_cached(
            self.model,
            self._loader(dataset),
            self.device,
            self.cache_dir / f"fewshot-{key}.safetensors",
            tracker.advance,
        )
        if hit:  # read from the cache: all at once
            tracker.advance(len(dataset) - tracker.done)
        return x.cpu(), y.cpu()

    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embeddings of images in memory (uploads); not cached, they are usually new."""
        if not images:
            return torch.empty(0, 0)
        x, _ = features.embed(
            self.model, self._loader(_ImageListDataset(images, self.transform)), self.device
        )
        return x.cpu()

    def identity(self) -> dict[str, Any]:
        """Everything besides the images that changes an embedding (the cache key)."""
        weights = self.weights
        if Path(weights).is_file():
            stat = Path(weights).stat()
            weights = f"{Path(weights).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return {
            "purpose": "fewshot", "model": self.model_name, "weights": weights,
            "data": self.data_config, "device": self.device.type,
            "torch": torch.__version__, "tlcore": __version__,
        }  # fmt: skip


def _file_stamp(path: str) -> tuple[int, int]:
    """Size and change time: a photo replaced under the same name gets a new cache entry."""
    try:
        stat = Path(path).stat()
    except OSError:
        return (-1, -1)  # reading it will say what is wrong
    return (stat.st_size, stat.st_mtime_ns)


def default_cache_dir() -> Path:
    """Beside the runs, where the trainer keeps its embedding cache too."""
    return settings.runs_dir() / ".cache" / "embeddings"


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


def parse_shots(text: str | Sequence[int]) -> tuple[int, ...]:
    """'1,2,5,10' -> (1, 2, 5, 10); ConfigError naming the bad part."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    values = []
    for part in parts:
        try:
            value = int(str(part).strip())
        except ValueError:
            raise ConfigError(
                f"shots {part!r} is not a whole number: give e.g. 1,2,5,10."
            ) from None
        if value < 1:
            raise ConfigError(f"shots {value} is not valid: each must be >= 1.")
        values.append(value)
    if not values:
        raise ConfigError("shots is empty: give e.g. 1,2,5,10.")
    return tuple(sorted(set(values)))


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
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats = {repeats!r} is not valid: it must be a whole number >= 1.")
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
    from tlcore.data.prepare import prepare_data

    prepared = prepare_data(data, val_fraction=val_fraction, seed=seed, progress=progress)
    if prepared.manifest is None:
        raise DataError(f"cannot use {data} for few-shot: {prepared.report.reason}")
    return prepared.manifest


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
