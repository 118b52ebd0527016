"""How good a detector is, from its detections on the validation photos (scored once).

``BoxScores`` holds, for every validation photo, every detection above a low score floor
and the true boxes, in the photo's own pixels. It is made once per checkpoint and kept
beside it (``tlcore.runs.boxes_run.box_scores`` writes it with ``write_scores``, stamped with
the checkpoint it came from); everything here reads it without running the model again:
mAP@0.5 and @0.5:0.95 with per-class AP and the precision-recall points (torchmetrics'
``MeanAveragePrecision``, pycocotools), and, at a score threshold the user moves, each
class in words, the worst photos and the classes it confuses. Class names are the user's:
the words here are plain text; pages escape them, the CLI prints them printable.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

SCORE_FLOOR = 0.01  # detections kept below any threshold a user would pick
MATCH_IOU = 0.5  # a drawn box "finds" a true box of its class when they overlap this much
DEFAULT_THRESHOLD = 0.5
PR_POINTS = 101  # COCO's recall points
MAX_DETECTIONS = 100  # per photo and class: the most COCO's mAP (and torchmetrics') counts


@dataclass
class PhotoBoxes:
    """One validation photo: its true boxes and the detector's (class indices into
    ``BoxScores.classes``; boxes as [xmin, ymin, xmax, ymax] in the photo's pixels)."""

    path: str
    width: int
    height: int
    true_boxes: list[list[float]]
    true_labels: list[int]
    boxes: list[list[float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


@dataclass
class BoxScores:
    """Every detection (score >= ``score_floor``) and every true box of the validation photos."""

    classes: list[str]
    photos: list[PhotoBoxes]
    score_floor: float = SCORE_FLOOR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoxScores:
        return cls(list(data["classes"]), [PhotoBoxes(**p) for p in data["photos"]],
                   float(data.get("score_floor", SCORE_FLOOR)))  # fmt: skip


def write_scores(path: Path, scores: BoxScores, stamp: dict[str, Any] | None) -> None:
    """Keep ``scores`` at ``path`` with the checkpoint's stamp, whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"checkpoint": stamp, **scores.to_dict()}))
    os.replace(tmp, path)


def read_scores(path: Path, stamp: dict[str, Any] | None) -> BoxScores | None:
    """The kept scores when they came from the checkpoint ``stamp`` names; else None."""
    try:
        data = json.loads(path.read_text())
        if stamp is None or data.get("checkpoint") != stamp:
            return None
        return BoxScores.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):  # missing or torn: score again
        return None


# --- threshold-free: average precision (torchmetrics) ------------------------------------


def _tensors(photo: PhotoBoxes) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(prediction, target) as torchmetrics reads them; labels 1.. (0 is the background)."""
    pred = {"boxes": torch.tensor(photo.boxes, dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor(photo.scores, dtype=torch.float32),
            "labels": torch.tensor(photo.labels, dtype=torch.int64) + 1}  # fmt: skip
    target = {"boxes": torch.tensor(photo.true_boxes, dtype=torch.float32).reshape(-1, 4),
              "labels": torch.tensor(photo.true_labels, dtype=torch.int64) + 1}  # fmt: skip
    return pred, target


def average_precision(scores: BoxScores) -> dict[str, Any]:
    """mAP@0.5, mAP@0.5:0.95, AP of each class at both, and each class's precision-recall
    points at IoU 0.5 ({class: {"recall", "precision", "score"}}), from one torchmetrics pass.
    A class with no true box among the validation photos has no AP (left out). Only each
    photo's ``MAX_DETECTIONS`` best boxes of each class are handed over: COCO's mAP counts
    no more (pycocotools cuts per photo and class)."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="bbox", class_metrics=True, extended_summary=True)
    metric.warn_on_many_detections = False
    for photo in scores.photos:
        pred, target = _tensors(photo)
        order = pred["scores"].argsort(descending=True)
        best = torch.cat([order[pred["labels"][order] == c][:MAX_DETECTIONS]
                          for c in pred["labels"].unique()] or [order])  # fmt: skip
        metric.update([{k: v[best] for k, v in pred.items()}], [target])
    result = metric.compute()
    ids = [int(c) - 1 for c in result["classes"].reshape(-1).tolist()]
    curves, ap50 = {}, {}
    recall = torch.linspace(0, 1, PR_POINTS).tolist()
    for k, cid in enumerate(ids):
        # IoU 0.5 (the first threshold), every area, the most boxes: as COCO's AP50
        precision = result["precision"][0, :, k, 0, -1].tolist()
        score = result["scores"][0, :, k, 0, -1].tolist()
        points = [(r, p, s) for r, p, s in zip(recall, precision, score, strict=True) if p >= 0]
        if not points or not 0 <= cid < len(scores.classes):
            continue  # no true box of it to find
        name = scores.classes[cid]
        ap50[name] = round(sum(p for _, p, _ in points) / len(points), 4)
        curves[name] = {"recall": [round(r, 4) for r, _, _ in points],
                        "precision": [round(p, 4) for _, p, _ in points],
                        "score": [round(s, 4) for _, _, s in points]}  # fmt: skip
    return {"map50": round(float(result["map_50"]), 4), "map": round(float(result["map"]), 4),
            "ap50_per_class": ap50, "ap_per_class": _per_class(scores.classes, result),
            "pr_curves": curves}  # fmt: skip


def _per_class(classes: list[str], result: dict[str, torch.Tensor]) -> dict[str, float]:
    out = {}
    for cid, ap in zip(result["classes"].reshape(-1).tolist(),
                       result["map_per_class"].reshape(-1).tolist(), strict=True):  # fmt: skip
        if ap >= 0 and 0 < int(cid) <= len(classes):  # -1: no true box of it to find
            out[classes[int(cid) - 1]] = round(ap, 4)
    return out


# --- at a score threshold: what it finds, misses and draws wrong -------------------------


@dataclass
class PhotoVerdict:
    """One photo at a threshold: the true boxes it missed and the boxes it drew wrong."""

    path: str
    missed: int
    false: int
    found: int
    truth: int


@dataclass
class ThresholdView:
    """Counts per class, per photo and per confused pair at one score threshold."""

    threshold: float
    classes: list[str]
    truth: dict[str, int]  # true boxes
    found: dict[str, int]  # true boxes a drawn box of their class found
    drawn: dict[str, int]  # boxes drawn at the threshold
    wrong: dict[str, int]  # drawn boxes that found nothing of their class
    photos: list[PhotoVerdict]
    confusions: dict[tuple[str, str], int]  # (true class, drawn class): boxes

    def worst(self, n: int = 6) -> list[PhotoVerdict]:
        """The photos with the most missed objects and false boxes (ties: the most missed)."""
        bad = [p for p in self.photos if p.missed or p.false]
        return sorted(bad, key=lambda p: (-(p.missed + p.false), -p.missed, p.path))[:n]

    def words(self) -> list[str]:
        """One sentence per class: "finds 9 of 10 WBC; 1 in 8 boxes it draws for WBC is wrong"."""
        return [class_words(c, self.truth[c], self.found[c], self.drawn[c], self.wrong[c])
                for c in self.classes]  # fmt: skip

    def confusion_words(self) -> list[str]:
        pairs = sorted(self.confusions.items(), key=lambda kv: (-kv[1], kv[0]))
        return [f"{n} {'box' if n == 1 else 'boxes'} drawn as {drawn} "
                f"{'sits' if n == 1 else 'sit'} on a true {true}."
                for (true, drawn), n in pairs]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold,
                "per_class": {c: {"true": self.truth[c], "found": self.found[c],
                                  "drawn": self.drawn[c], "wrong": self.wrong[c]}
                              for c in self.classes},
                "words": self.words(),
                "worst_photos": [asdict(p) for p in self.worst()],
                "confusions": [{"true": t, "predicted": d, "boxes": n}
                               for (t, d), n in sorted(self.confusions.items(),
                                                       key=lambda kv: -kv[1])]}  # fmt: skip


def class_words(name: str, truth: int, found: int, drawn: int, wrong: int) -> str:
    """One class in words, e.g. "finds 9 of 10 WBC; 1 in 8 boxes it draws for WBC is wrong"."""
    finds = f"finds {found} of {truth} {name}" if truth else f"no true {name} to find"
    if drawn == 0:
        draws = f"it draws no box for {name}"
    elif wrong == 0:
        draws = f"every box it draws for {name} is right ({drawn})"
    elif drawn / wrong >= 2:
        draws = f"1 in {round(drawn / wrong)} boxes it draws for {name} is wrong"
    else:
        draws = f"{wrong} of the {drawn} boxes it draws for {name} are wrong"
    return f"{finds}; {draws}."


def counts_in_words(labels: list[str]) -> str:
    """ "14 RBC, 1 WBC, 2 Platelets" (in order of first appearance); "nothing found"."""
    counts = Counter(labels)
    return ", ".join(f"{n} {label}" for label, n in counts.items()) or "nothing found"


def at_threshold(scores: BoxScores, threshold: float = DEFAULT_THRESHOLD) -> ThresholdView:
    """Each drawn box (score >= ``threshold``), best first, takes the unmatched true box of
    its class it overlaps most (IoU >= 0.5), as COCO matches; the rest are wrong, and a
    wrong box on a true box of another class is a confusion."""
    from torchvision.ops import box_iou

    classes = scores.classes
    truth, found, drawn, wrong = (Counter[str]() for _ in range(4))
    confusions: Counter[tuple[str, str]] = Counter()
    verdicts = []
    for photo in scores.photos:
        pred, target = _tensors(photo)
        keep = pred["scores"] >= threshold
        boxes, labels = pred["boxes"][keep], pred["labels"][keep] - 1
        order = pred["scores"][keep].argsort(descending=True)
        boxes, labels = boxes[order], labels[order]
        true_boxes, true_labels = target["boxes"], target["labels"] - 1
        true_list = true_labels.tolist()
        rows = box_iou(boxes, true_boxes).tolist() if len(true_list) else [[]] * len(boxes)
        taken = [False] * len(true_list)
        n_false = 0
        for label, row in zip(labels.tolist(), rows, strict=True):
            drawn[classes[label]] += 1
            best, best_iou = -1, MATCH_IOU
            for j, (overlap, true) in enumerate(zip(row, true_list, strict=True)):
                if true == label and not taken[j] and overlap >= best_iou:
                    best, best_iou = j, overlap
            if best >= 0:
                taken[best] = True
                continue
            wrong[classes[label]] += 1
            n_false += 1
            other = [(overlap, true) for overlap, true in zip(row, true_list, strict=True)
                     if true != label and overlap >= MATCH_IOU]  # fmt: skip
            if other:
                confusions[(classes[max(other)[1]], classes[label])] += 1
        for j, label in enumerate(true_list):
            truth[classes[label]] += 1
            found[classes[label]] += int(taken[j])
        verdicts.append(PhotoVerdict(photo.path, len(true_list) - sum(taken), n_false,
                                     sum(taken), len(true_list)))  # fmt: skip
    return ThresholdView(threshold, list(classes), {c: truth[c] for c in classes},
                         {c: found[c] for c in classes}, {c: drawn[c] for c in classes},
                         {c: wrong[c] for c in classes}, verdicts, dict(confusions))  # fmt: skip


def box_evaluation(scores: BoxScores, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Everything above as one JSON-ready object (``tlcore evaluate RUN --json``)."""
    view = at_threshold(scores, threshold)
    return {"task": "image-boxes", "photos": len(scores.photos),
            "true_boxes": sum(view.truth.values()), **average_precision(scores),
            **view.to_dict(), "confusion_words": view.confusion_words()}  # fmt: skip
