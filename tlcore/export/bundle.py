"""A trained model packed to travel: the bundle's metadata, measured metrics and model card.

The file format itself (``tlcore.json`` + ``model.safetensors``, and reading it back) is
``tlcore.results.bundle_format``; this module adds what only an export knows: the run's
settings and data, validation metrics measured on the exported weights, the model card.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.data.progress import ProgressCallback
from tlcore.errors import DataError
from tlcore.export import model_card
from tlcore.export.tasks import export_task, model_task
from tlcore.results.bundle_format import (
    BUNDLE_FORMAT,
    BUNDLE_META,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    preprocessing,
    write_bundle_files,
)

if TYPE_CHECKING:
    from tlcore.results.predict import Predictor
    from tlcore.runs.run import Run

__all__ = ["BUNDLE_META", "WEIGHTS_FILE", "bundle_metadata", "model_metadata", "write_bundle"]


def model_metadata(run: Run, checkpoint: str, predictor: Predictor) -> dict[str, Any]:
    """What any exported file needs to be used: architecture, classes, preprocessing (and
    what the model's task adds, such as how texts become token ids)."""
    from tlcore.runs.files import now_iso
    from tlcore.runs.run import package_versions

    return {
        **export_task(model_task(predictor)).bundle_meta(predictor),
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": predictor.model_name,
        "classes": list(predictor.classes),
        "num_classes": len(predictor.classes),
        "img_size": predictor.img_size,
        "preprocessing": preprocessing(predictor.data_config),
        "pretrained_weights": predictor.weights,
        "weights_file": WEIGHTS_FILE,
        "run_id": run.id,
        "checkpoint": checkpoint,
        "created": now_iso(),
        "versions": package_versions(),
        **trust_metadata(predictor),
    }


def trust_metadata(predictor: Predictor) -> dict[str, Any]:
    """The temperature and "none of these" settings (``tlcore.results.trust``), when fitted."""
    from tlcore.results.trust import TRUST_KEY

    trust = getattr(predictor, "trust", None)
    return {TRUST_KEY: trust.meta()} if trust is not None else {}


def _metrics(
    run: Run, checkpoint: str, predictor: Predictor, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Validation numbers measured on the exported weights (not copied from the log): the
    checkpoint's validation outputs, kept when it was scored (tlcore.runs.outputs), calibrated
    like ``predictor``."""
    from tlcore.runs.scoring import evaluate_run

    epochs = run.epochs()
    try:
        report = evaluate_run(run, checkpoint, worst_k=0, progress=progress)
    except DataError as exc:
        return {"split": "val", "images": 0, "note": str(exc)}
    if checkpoint == "best" and epochs:
        scored = [e for e in epochs if e.get("is_best")]
        epoch = scored[-1]["epoch"] if scored else epochs[-1]["epoch"]
    else:
        epoch = epochs[-1]["epoch"] if epochs else None
    return {
        "split": "val",
        "images": report.n_images,
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "loss": report.loss,
        "per_class": report.per_class,
        "confusion": report.confusion,
        "confused_pairs": report.confused_pairs,
        "epoch": epoch,
        "epochs_trained": len(epochs),
    }


def bundle_metadata(
    run: Run, checkpoint: str, predictor: Predictor, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """``model_metadata`` plus the training settings, the data summary and measured metrics
    (``progress`` hears the scoring of the validation photos)."""
    record = run.record
    data = record.get("data", {})
    source = str(data.get("source", ""))
    return {
        **model_metadata(run, checkpoint, predictor),
        "training": record.get("config", {}),
        "data": {
            "name": Path(source).name or source,
            "source": source,
            "classes": data.get("classes", list(predictor.classes)),
            "counts": data.get("counts", {}),
            "split_seed": data.get("split_seed"),
            "split_source": data.get("split_source"),
            "fingerprint": data.get("fingerprint", ""),
            "version": data.get("version"),  # the dataset version (tlcore.data.versions)
            "val_copies": data.get("val_copies", 0),  # validation photos copying training ones
        },
        "metrics": _metrics(run, checkpoint, predictor, progress),
    }


def write_bundle(
    run: Run,
    checkpoint: str,
    predictor: Predictor,
    folder: Path,
    progress: ProgressCallback | None = None,
    writing: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Fill ``folder`` (new or empty) with the bundle's files; returns its ``tlcore.json``.

    ``progress`` hears the scoring of the validation photos, ``writing`` when the files start.
    """
    meta = bundle_metadata(run, checkpoint, predictor, progress)
    exported = export_task(model_task(meta))  # what this task's bundle carries
    if writing is not None:
        writing()
    write_bundle_files(folder, meta, predictor.model.state_dict(), run.id)
    if getattr(predictor, "trust", None) is not None:  # the training photos' features
        from tlcore.results.trust import UNKNOWN_FILE, write_unknown_file

        write_unknown_file(predictor.trust, folder / UNKNOWN_FILE)
    exported.bundle_files(predictor, folder)  # texts: the tokenizer and encoder config
    metrics = meta["metrics"]
    if metrics.get("images"):
        model_card.confusion_png(
            meta["classes"], metrics["confusion"], folder / model_card.CONFUSION_FILE
        )
    (folder / model_card.CARD_FILE).write_text(exported.model_card(meta), encoding="utf-8")
    return meta
