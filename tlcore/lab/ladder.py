"""The transfer-learning ladder on one dataset: 0, 1, 2, 5, 10 photos per class, then training.

Each rung uses more of the user's photos: zero-shot uses none (class names
only), one- and few-shot average the embeddings of a few photos, the next rung
uses every training photo as examples, and the last is a model actually
trained on them (the best finished run on exactly these photos, if there is
one). All are measured on the same validation photos, so one chart shows how
far each step of transfer learning goes.

Texts climb the same ladder with the sentence encoder (``tlcore.lab.text_ladder``):
``tlcore.lab.task_ladders`` holds the measuring function of each task, and
``measure_ladder`` picks it from the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlcore.data.manifest import Manifest
from tlcore.errors import TLCoreError
from tlcore.lab.fewshot import DEFAULT_REPEATS, DEFAULT_SHOTS, Embedder, ShotsCurve, load_manifest
from tlcore.lab.fewshot import shots_curve as measure_shots
from tlcore.lab.zeroshot import ZeroShotResult, zero_shot_accuracy

LADDER_SHOTS = DEFAULT_SHOTS  # 1, 2, 5, 10: with the zero-shot rung, 0, 1, 2, 5, 10


@dataclass
class Rung:
    """One point of the ladder: how many of the user's photos per class it used, and accuracy."""

    label: str
    kind: str  # "zero-shot" | "one-shot" | "few-shot" | "all photos" | "trained"
    accuracy: float
    photos_per_class: int | None = None  # None: every training photo
    spread: float | None = None  # std over random draws, for the few-shot rungs
    detail: str = ""


@dataclass
class Ladder:
    """The rungs in order, chance level, and why any rung is missing."""

    rungs: list[Rung]
    chance: float
    n_val: int
    classes: list[str]
    missing: dict[str, str] = field(default_factory=dict)  # kind -> why not measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shot_kind(shots: int) -> str:
    return "one-shot" if shots == 1 else "few-shot"


def build_ladder(
    curve: ShotsCurve,
    zero_shot: ZeroShotResult | None = None,
    trained: Rung | None = None,
    missing: dict[str, str] | None = None,
) -> Ladder:
    """The rungs from measurements already made (pure: no model, no files)."""
    rungs: list[Rung] = []
    if zero_shot is not None:
        words = ", ".join(zero_shot.names)
        rungs.append(
            Rung("0 (zero-shot)", "zero-shot", zero_shot.accuracy, 0, None, f"names: {words}")
        )
    for point in curve.points:
        kind = _shot_kind(point.shots)
        label = f"{point.shots} ({kind})"
        rungs.append(Rung(label, kind, point.mean, point.shots, point.std,
                          f"mean of {point.repeats} random draws"))  # fmt: skip
    total = sum(curve.train_per_class.values())
    rungs.append(Rung(f"all {total} (prototypes)", "all photos", curve.all_train_acc, None, None,
                      "every training photo as an example, nothing trained"))  # fmt: skip
    if trained is not None:
        rungs.append(trained)
    return Ladder(rungs, curve.chance, curve.n_val, list(curve.classes), dict(missing or {}))


def trained_rung(manifest: Manifest, owner: str | None = None) -> Rung | None:
    """The best finished run trained on exactly these photos (same manifest fingerprint)."""
    from tlcore.runs.run import list_runs
    from tlcore.runs.scoring import stored_evaluation

    fingerprint = manifest.fingerprint()
    best: Rung | None = None
    for run in list_runs(owner):
        try:
            if (run.record.get("data") or {}).get("fingerprint") != fingerprint:
                continue
            summary = run.summary()
            if summary.get("state") != "finished":
                continue
            stored = stored_evaluation(run, "best")
            accuracy = stored.accuracy if stored is not None else summary.get("best_val_acc")
        except (TLCoreError, OSError, AttributeError, KeyError, TypeError, ValueError):
            continue  # a damaged or foreign run folder is simply not a rung
        if accuracy is None:
            continue
        if best is None or float(accuracy) > best.accuracy:
            detail = f"run {run.id}: {summary.get('model')}, {summary.get('freeze')}"
            best = Rung("trained model", "trained", float(accuracy), None, None, detail)
    return best


def transfer_ladder(
    data: str | Path | Manifest,
    shots: Sequence[int] = LADDER_SHOTS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    embedder: Embedder | None = None,
    classes: str | Sequence[str] | None = None,
    owner: str | None = None,
) -> Ladder:
    """Measure every rung on ``data``'s validation photos (the embeddings are computed once)."""
    manifest = load_manifest(data, seed=seed)
    embedder = embedder or Embedder()
    curve = measure_shots(manifest, shots, repeats, seed, embedder=embedder)
    missing: dict[str, str] = {}
    try:
        zero = zero_shot_accuracy(manifest, classes, embedder, seed=seed)
    except TLCoreError as exc:  # e.g. a model without its ImageNet head
        zero, missing["zero-shot"] = None, str(exc)
    trained = trained_rung(manifest, owner)
    if trained is None:
        missing["trained"] = "no finished training run on exactly these photos yet"
    return build_ladder(curve, zero, trained, missing)
