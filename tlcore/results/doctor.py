"""The data doctor: photos whose label looks wrong, near-copies across the split, odd ones out.

Everything works on one embedding per photo from a pretrained backbone (from the
embedding cache the trainer's fast path and few-shot share, so a second look costs
seconds):

- **Label issues.** A linear head (logistic regression) is trained k times, each
  time without one fold, and predicts the fold it did not see: out-of-fold
  probabilities, so no photo is judged by a model that learned its own label.
  Confident learning (Northcutt et al. 2021, through ``cleanlab``) then flags
  photos whose given label is unlikely given those probabilities and how often
  the classes are confused overall. A backbone fine-tuned on these labels would
  have memorised the wrong ones, which is why the pretrained one is used.
- **Near-duplicates.** Resized, cropped or re-compressed copies of one photo:
  pairs whose embeddings point nearly the same way (the candidates) and whose
  small grey thumbnails match edge for edge once aligned for a crop (the
  confirmation). A pair split between train and validation is a leak: the model
  is graded on a photo it has seen.

How each threshold was chosen, with its measurements: ``benchmarks/doctor_measure.py``.
- **Outliers.** Photos far from every class (see ``find_outliers``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlcore.data.manifest import Manifest
from tlcore.data.progress import ProgressCallback
from tlcore.data.scan import printable
from tlcore.errors import DataError

# The thresholds below were measured on clothing4 and ants-bees with planted copies, flipped
# labels and intruders: the numbers behind each are in benchmarks/doctor_measure.py.
# Near-duplicates: embeddings pick candidates (each photo's NEIGHBOURS nearest at cosine >=
# NEAR_DUPLICATE_THRESHOLD), small grey thumbnails confirm them (edges and texture correlate
# >= PIXEL_THRESHOLD once aligned for a crop over CROP_WINDOWS): an embedding alone cannot
# tell "the same picture" from "the same kind of thing".
NEAR_DUPLICATE_THRESHOLD = 0.60
NEIGHBOURS = 10
PIXEL_THRESHOLD = 0.90
THUMBNAIL, PATTERN, PATTERN_BLUR = 64, 24, 2.0
CROP_WINDOWS = [(0.0, 0.0, 1.0, 1.0)] + [
    ((1 - s) * fx, (1 - s) * fy, (1 - s) * fx + s, (1 - s) * fy + s)
    for s in (0.92, 0.84, 0.76)
    for fx in (0.0, 0.5, 1.0)
    for fy in (0.0, 0.5, 1.0)
]
FOLDS = 5
# L2 strength on the mean log-loss of the linear head (C = 1 at clothing4's 220 photos)
LOGISTIC_L2 = 1.0 / 220
# which photos are wrong: the smallest margin between the given label and the best other one
FILTER_BY = "low_normalized_margin"
# "accept the confident ones" (CLI --accept, the page's button): the suggested label gets >= it
ACCEPT_PROBABILITY = 0.5
# modified z-score (Iglewicz & Hoaglin) of the distance to the nearest class mean: an outlier
OUTLIER_Z = 3.5


@dataclass
class LabelIssue:
    """A photo whose given label the other photos disagree with."""

    path: str
    split: str
    given: str
    suggested: str
    score: float  # out-of-fold probability that the given label is wrong (1 - p(given))
    given_probability: float
    suggested_probability: float

    def why(self) -> str:
        return (
            f"a model that never saw this photo gives {self.given!r} only "
            f"{self.given_probability:.0%} and {self.suggested!r} {self.suggested_probability:.0%}"
        )

    @property
    def confident(self) -> bool:
        """Sure enough to offer the relabel: at ``ACCEPT_PROBABILITY`` 9 in 10 suggestions
        were right on clothing4 with 10 % of its labels flipped (benchmarks/doctor_measure.py);
        a lily called "iris" at 23 % was not."""
        return self.suggested_probability >= ACCEPT_PROBABILITY

    def in_words(self) -> str:
        """How sure the doctor is, in words, before its numbers."""
        said = (f"{self.suggested_probability:.0%} for {self.suggested!r} and only "
                f"{self.given_probability:.0%} for {self.given!r}")  # fmt: skip
        if not self.confident:
            return (f"Unsure: a model that never saw this photo doubts {self.given!r}, but no "
                    f"other label convinces it either ({said}). Look at it: it may be a hard "
                    "photo rather than a wrong label.")  # fmt: skip
        how = "Very likely" if self.suggested_probability >= 0.8 else "Likely"
        return f"{how} {self.suggested!r}: a model that never saw this photo gives {said}."


@dataclass
class NearDuplicate:
    """Two photos that are (almost) the same picture."""

    a: str
    b: str
    similarity: float  # cosine similarity of their embeddings, 1.0 = same direction
    split_a: str
    split_b: str
    label_a: str
    label_b: str
    across_splits: bool  # one in train, the other in val/test: a leak
    # correlation of their detail (high-passed grey thumbnails), best crop alignment; 1.0 = same
    pixel_similarity: float

    def why(self) -> str:
        text = (f"the same picture once aligned (details {self.pixel_similarity:.0%} alike, "
                f"embeddings {self.similarity:.2f})")  # fmt: skip
        if self.label_a != self.label_b:
            text += f", labelled {self.label_a!r} and {self.label_b!r}"
        if self.across_splits:
            text += f"; one is in {self.split_a}, the other in {self.split_b} (a leak)"
        return text


@dataclass
class Outlier:
    """A photo unlike every class: maybe unrelated, blurred, or a class of its own."""

    path: str
    split: str
    label: str
    nearest: str  # the class whose mean it is closest to
    score: float  # cosine distance to the nearest class mean
    z: float  # how unusual that distance is among all photos (modified z-score)

    def why(self) -> str:
        return (
            f"farther from every class than almost all photos (distance {self.score:.2f} to "
            f"{self.nearest!r}, {self.z:.1f} robust deviations above the usual)"
        )


@dataclass
class DoctorReport:
    """What ``tlcore doctor`` prints and the Doctor page shows."""

    label_issues: list[LabelIssue]
    near_duplicates: list[NearDuplicate]
    outliers: list[Outlier]
    seconds: float
    embedding_seconds: float
    cache_hit: bool
    photos: int
    classes: list[str]
    method: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("seconds", "embedding_seconds"):
            data[key] = round(data[key], 3)
        return data

    @property
    def leaks(self) -> list[NearDuplicate]:
        return [pair for pair in self.near_duplicates if pair.across_splits]

    def text(self, top: int = 10) -> str:
        """The findings in words, most suspicious first."""
        n = len(self.label_issues)
        lines = [
            f"Checked {self.photos} photos of {len(self.classes)} classes in {self.seconds:.1f} s "
            f"({'embeddings from the cache' if self.cache_hit else 'embedded now'}).",
            "",
            f"Labels that look wrong: {n}" + (" (none found)" if n == 0 else ""),
        ]
        for issue in self.label_issues[:top]:
            lines.append(f"  {_name(issue.path)} ({issue.split}): labelled {issue.given!r}, looks "
                         f"like {issue.suggested!r} — {issue.why()}")  # fmt: skip
        lines += _more(n, top)
        pairs, leaks = len(self.near_duplicates), len(self.leaks)
        lines += ["", f"Near-duplicate pairs: {pairs}" + (f", {leaks} across train and validation"
                                                           if leaks else "")]  # fmt: skip
        for pair in self.near_duplicates[:top]:
            lines.append(f"  {_name(pair.a)} ~ {_name(pair.b)}: {pair.why()}")
        lines += _more(pairs, top)
        lines += ["", f"Outliers (unlike every class): {len(self.outliers)}"]
        for outlier in self.outliers[:top]:
            lines.append(f"  {_name(outlier.path)} ({outlier.label}): {outlier.why()}")
        lines += _more(len(self.outliers), top)
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)


def _name(path: str) -> str:
    """A file name safe to print in a terminal: control characters shown escaped."""
    return printable(Path(path).name)


def _more(n: int, top: int) -> list[str]:
    return [f"  … and {n - top} more (--json lists all)"] if n > top else []


# -- embeddings --------------------------------------------------------------------------
def embed_photos(
    paths: Sequence[str],
    *,
    model: str = "tf_efficientnet_lite0",
    weights: str = "bundled",
    img_size: int | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[torch.Tensor, bool]:
    """One embedding per photo (pretrained backbone, eval preprocessing), in ``paths`` order.

    The photos go through the one embedding cache (``tlcore.training.embedder``): a row
    per photo file, keyed by the backbone and its preprocessing but no label or split, so
    relabelling or re-splitting reuses it, and so do few-shot and the trainer's fast path.
    Returns (embeddings, all read from the cache).
    """
    from tlcore.data.manifest import ManifestItem
    from tlcore.training.embedder import Embedder

    ordered = sorted(set(paths))
    embedder = Embedder(model, weights, img_size, device, cache_dir)
    everything = Manifest("", ["photo"], [ManifestItem(p, 0, "train") for p in ordered])
    x, _, embedded = embedder.embed_manifest(everything, "train", "Embedding photos", progress)
    row = {p: i for i, p in enumerate(ordered)}
    return x[[row[p] for p in paths]], embedded == 0


# -- the three checks ----------------------------------------------------------------------
def out_of_fold_probabilities(
    x: np.ndarray, labels: np.ndarray, n_classes: int, folds: int = FOLDS, seed: int = 0
) -> np.ndarray:
    """Each photo's class probabilities from a logistic regression that never saw it.

    Embeddings are scaled to unit length (their direction is what the backbone
    encodes); each class needs at least two photos.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    smallest = int(np.bincount(labels, minlength=n_classes).min())
    folds = max(2, min(folds, smallest))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # scikit-learn sums the loss over photos, so a fixed C would regularise a small set far
    # more than a large one; C = 1 / (L2 * n) keeps the penalty per photo the same
    c = min(100.0, 1.0 / (LOGISTIC_L2 * len(labels)))
    head = LogisticRegression(C=c, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter: the probabilities are still fine
        return cross_val_predict(head, unit, labels, cv=splitter, method="predict_proba")


def find_label_issues(
    probabilities: np.ndarray,
    labels: np.ndarray,
    items: Sequence[Any],
    classes: Sequence[str],
) -> list[LabelIssue]:
    """Confident learning over out-of-fold probabilities; most likely wrong first."""
    from cleanlab.filter import find_label_issues as cleanlab_issues

    ranked = cleanlab_issues(
        labels, probabilities, filter_by=FILTER_BY, return_indices_ranked_by="self_confidence"
    )
    issues = []
    for index in ranked:
        row, given = probabilities[index], int(labels[index])
        others = row.copy()
        others[given] = -1.0
        suggested = int(others.argmax())
        issues.append(LabelIssue(
            items[index].path, items[index].split, classes[given], classes[suggested],
            round(1.0 - float(row[given]), 4), round(float(row[given]), 4),
            round(float(row[suggested]), 4),
        ))  # fmt: skip
    return issues


def _detail(thumbnail: Any, box: tuple[float, float, float, float]) -> np.ndarray:
    """A window of a grey thumbnail at PATTERN px, its blur removed, as a unit vector."""
    from PIL import Image, ImageFilter

    side = thumbnail.width
    window = thumbnail.resize((PATTERN, PATTERN), Image.Resampling.BILINEAR,
                              box=tuple(v * side for v in box))  # fmt: skip
    blurred = window.filter(ImageFilter.GaussianBlur(PATTERN_BLUR))
    detail = np.asarray(window, np.float32) - np.asarray(blurred, np.float32)
    detail = detail.ravel() - detail.mean()
    return detail / max(float(np.linalg.norm(detail)), 1e-6)


def _thumbnail(path: str) -> Any:
    from PIL import Image

    from tlcore.data.images import load_rgb

    try:
        image = load_rgb(path, max_side=2 * THUMBNAIL)
    except (DataError, OSError):
        return None  # unreadable now: no confirmation, so no pair
    return image.convert("L").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)


def pixel_similarities(
    paths: Sequence[str], pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], float]:
    """For each pair (i, j): how alike the two photos' details are, best over crop alignments.

    Each photo is decoded once; its windows are compared with the whole of each
    partner, and the partner's windows with its whole when the partner's turn
    comes, so a crop of either one is aligned back.
    """
    photos = sorted({i for pair in pairs for i in pair})
    thumbnails = {i: _thumbnail(paths[i]) for i in photos}
    whole = {i: _detail(t, CROP_WINDOWS[0]) for i, t in thumbnails.items() if t is not None}
    partners: dict[int, list[int]] = {}
    for i, j in pairs:
        partners.setdefault(i, []).append(j)
        partners.setdefault(j, []).append(i)
    best = {(min(i, j), max(i, j)): 0.0 for i, j in pairs}
    for i in photos:
        others = [j for j in partners[i] if j in whole]
        if i not in whole or not others:
            continue
        windows = np.stack([_detail(thumbnails[i], box) for box in CROP_WINDOWS])
        scores = (windows @ np.stack([whole[j] for j in others]).T).max(0)
        for j, score in zip(others, scores.tolist(), strict=True):
            key = (min(i, j), max(i, j))
            best[key] = max(best[key], min(1.0, score))
    return best


def confident_issues(
    issues: Sequence[LabelIssue], minimum: float = ACCEPT_PROBABILITY
) -> list[LabelIssue]:
    """The label issues safe to accept unseen: the suggested label gets at least ``minimum``."""
    return [issue for issue in issues if issue.suggested_probability >= minimum]


def find_near_duplicates(
    x: torch.Tensor,
    items: Sequence[Any],
    classes: Sequence[str],
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    pixel_threshold: float = PIXEL_THRESHOLD,
    neighbours: int = NEIGHBOURS,
    chunk: int = 1024,
) -> list[NearDuplicate]:
    """Copies of one photo: embedding candidates confirmed by pixels; leaks first, most alike next.

    ``pixel_threshold`` 0 reports every candidate (photos of the same thing, not only copies).
    """
    unit = torch.nn.functional.normalize(x.float(), dim=1)
    k = min(neighbours + 1, len(unit))  # + 1: a photo is its own nearest
    candidates: dict[tuple[int, int], float] = {}
    for start in range(0, len(unit), chunk):
        values, columns = (unit[start : start + chunk] @ unit.T).topk(k, dim=1)
        for r, (row_values, row_columns) in enumerate(zip(values.tolist(), columns.tolist(),
                                                          strict=True)):  # fmt: skip
            i = start + r
            for similarity, j in zip(row_values, row_columns, strict=True):
                if j != i and similarity >= threshold:
                    candidates[(min(i, j), max(i, j))] = similarity
    pixels = pixel_similarities([item.path for item in items], list(candidates))
    result = []
    for (i, j), similarity in candidates.items():
        if pixels[(i, j)] < pixel_threshold:
            continue
        a, b = items[i], items[j]
        across = (a.split == "train") != (b.split == "train")
        result.append(NearDuplicate(
            a.path, b.path, round(min(similarity, 1.0), 4), a.split, b.split,
            classes[a.label], classes[b.label], across, round(pixels[(i, j)], 4),
        ))  # fmt: skip
    result.sort(key=lambda p: (not p.across_splits, -p.pixel_similarity, -p.similarity))
    return result


def find_outliers(
    x: torch.Tensor, items: Sequence[Any], classes: Sequence[str], z_limit: float = OUTLIER_Z
) -> list[Outlier]:
    """Photos whose distance to the nearest class mean is unusually large.

    Distance is 1 - cosine similarity to each class's mean embedding (its
    prototype); "unusually large" is a modified z-score above ``z_limit``, which
    uses the median and the median absolute deviation, so the outliers cannot
    hide themselves by inflating the spread.
    """
    unit = torch.nn.functional.normalize(x.float(), dim=1)
    labels = torch.tensor([item.label for item in items])
    means = torch.stack([
        unit[labels == k].mean(0) if (labels == k).any() else torch.zeros(unit.shape[1])
        for k in range(len(classes))
    ])  # fmt: skip
    similarity = unit @ torch.nn.functional.normalize(means, dim=1).T
    best, nearest = similarity.max(1)
    distance = (1.0 - best).numpy()
    median = float(np.median(distance))
    mad = float(np.median(np.abs(distance - median)))
    if mad <= 0:
        return []
    z = 0.6745 * (distance - median) / mad
    found = [
        Outlier(items[i].path, items[i].split, classes[items[i].label],
                classes[int(nearest[i])], round(float(distance[i]), 4), round(float(z[i]), 2))
        for i in np.flatnonzero(z > z_limit)
    ]  # fmt: skip
    return sorted(found, key=lambda o: -o.z)


# -- all of it -----------------------------------------------------------------------------
def diagnose(
    manifest: Manifest,
    *,
    model: str = "tf_efficientnet_lite0",
    weights: str = "bundled",
    img_size: int | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    embed_paths: Sequence[str] | None = None,
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD,
    pixel_threshold: float = PIXEL_THRESHOLD,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> DoctorReport:
    """Run the three checks on every labelled photo of ``manifest`` (all splits).

    ``embed_paths`` (a superset of the manifest's photos, e.g. the original of a
    dataset version) keeps the embedding cache shared between versions.
    """
    if getattr(manifest, "modality", "image") != "image":
        raise DataError("The data doctor checks photos; this dataset holds texts.")
    started = time.perf_counter()
    items = list(manifest.items)
    if len(items) < 2:
        raise DataError("The data doctor needs at least two photos.")
    paths = [item.path for item in items]
    all_paths = list(dict.fromkeys([*paths, *(embed_paths or [])]))
    x_all, hit = embed_photos(all_paths, model=model, weights=weights, img_size=img_size,
                              device=device, cache_dir=cache_dir, progress=progress)  # fmt: skip
    x = x_all[: len(paths)]
    embedding_seconds = time.perf_counter() - started
    labels = np.array([item.label for item in items])
    counts = np.bincount(labels, minlength=len(manifest.classes))
    notes = []
    issues: list[LabelIssue] = []
    present = counts[counts > 0]
    if len(present) >= 2 and present.min() >= 2:
        kept = np.flatnonzero(counts[labels] > 0)
        remap = {old: new for new, old in enumerate(np.flatnonzero(counts > 0))}
        local = np.array([remap[int(v)] for v in labels[kept]])
        names = [manifest.classes[k] for k in np.flatnonzero(counts > 0)]
        probs = out_of_fold_probabilities(x.numpy()[kept], local, len(names), FOLDS, seed)
        local_items = [replace(items[i], label=int(local[n])) for n, i in enumerate(kept)]
        issues = find_label_issues(probs, local, local_items, names)
    else:
        notes.append("label issues need two classes with at least two photos each")
    report = DoctorReport(
        label_issues=issues,
        near_duplicates=find_near_duplicates(
            x, items, manifest.classes, near_duplicate_threshold, pixel_threshold
        ),  # fmt: skip
        outliers=find_outliers(x, items, manifest.classes),
        seconds=time.perf_counter() - started,
        embedding_seconds=embedding_seconds,
        cache_hit=hit,
        photos=len(items),
        classes=list(manifest.classes),
        method={
            "model": model,
            "weights": weights,
            "img_size": img_size,
            "folds": FOLDS,
            "label_issues": "cleanlab.filter.find_label_issues (filter_by="
            f"{FILTER_BY}) on {FOLDS}-fold out-of-fold logistic regression probabilities",
            "near_duplicate_threshold": near_duplicate_threshold,
            "near_duplicates": f"among each photo's {NEIGHBOURS} nearest embeddings at cosine >= "
            f"{near_duplicate_threshold}, pairs whose high-passed {PATTERN} px grey thumbnails "
            f"correlate >= {pixel_threshold} (best of {len(CROP_WINDOWS)} crop alignments)",
            "pixel_threshold": pixel_threshold,
            "outliers": f"distance to the nearest class mean, modified z-score > {OUTLIER_Z}",
        },  # fmt: skip
        notes=notes,
    )
    if not math.isfinite(report.seconds):
        report.seconds = 0.0
    return report
