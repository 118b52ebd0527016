"""A run's fitted temperature and "none of these" detector, kept beside its checkpoints.

The worker fits them once when a run finishes (``fit_finished_run_trust``), before
the run is scored for the Evaluate page, so every probability shown afterwards is
the calibrated one. A run that stopped early, or one trained before this existed,
is fitted on first use (``ensure_trust``). Each file records the size and time of
the checkpoint it was fitted on: a resumed run that replaces the checkpoint voids it.

Files: ``trust-<checkpoint>.json`` (the JSON block of ``tlcore.results.trust``) and
``unknown-<checkpoint>.safetensors`` (the training photos' features).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.progress import ProgressCallback
from tlcore.errors import TLCoreError
from tlcore.results.trust import (
    REFERENCE_PHOTOS,
    Trust,
    fit_trust,
    read_unknown_bank,
    trust_from_meta,
    write_unknown_file,
)
from tlcore.runs.checkpoint_model import (
    checkpoint_stamp,
    evaluation_path,
    raw_predictor,
    same_weights,
)
from tlcore.runs.run import Run

log = logging.getLogger("tlcore.runs.trust_store")
TRUST_FILE = "trust-{checkpoint}.json"
BANK_FILE = "unknown-{checkpoint}.safetensors"


def trust_path(run: Run, checkpoint: str) -> Path:
    return run.dir / TRUST_FILE.format(checkpoint=checkpoint)


def bank_path(run: Run, checkpoint: str) -> Path:
    return run.dir / BANK_FILE.format(checkpoint=checkpoint)


def reference_photos(run: Run, limit: int = REFERENCE_PHOTOS) -> tuple[list[str], str]:
    """Photos of a bundled sample that shares no class with the run: (paths, sample name)."""
    from tlcore.data.images import images_in

    classes = {c.lower() for c in run.record.get("data", {}).get("classes", [])}
    source = str(run.record.get("data", {}).get("source", ""))
    for name, folder in settings.sample_datasets().items():
        train = folder / "train"
        if not train.is_dir() or (source and Path(source).resolve() == folder.resolve()):
            continue
        if classes & {p.name.lower() for p in train.iterdir() if p.is_dir()}:
            continue
        photos = images_in([folder])
        if not photos:
            continue
        step = max(1, len(photos) // limit)
        return [str(p) for p in photos[::step][:limit]], f"the {name} sample"
    return [], ""


def run_modality(run: Run) -> str | None:
    """The kind of data the run learned from ("image" or "text"); None when unreadable."""
    from tlcore.data.manifest import Manifest

    try:
        return getattr(Manifest.load(run.manifest_path), "modality", "image")
    except TLCoreError:
        return None


def is_photo_run(run: Run) -> bool:
    """The Evaluate page's trust section (reliability, "none of these") is for photo runs;
    text runs are calibrated too (``fit_run_trust``) but have no "none of these" yet."""
    return run_modality(run) == "image"


def can_fit_trust(run: Run) -> bool:
    return run_modality(run) in ("image", "text")


def fit_run_trust(
    run: Any, checkpoint: str = "best", progress: ProgressCallback | None = None
) -> Trust:
    """Fit and keep the trust of ``run``'s checkpoint on the run's own split (``progress``
    hears how many photos the model has read)."""
    from tlcore.data.manifest import Manifest
    from tlcore.runs.files import write_json_atomic

    run = run if isinstance(run, Run) else Run.open(run)
    stamp = checkpoint_stamp(run, checkpoint)
    predictor = raw_predictor(run, checkpoint=checkpoint)
    manifest = Manifest.load(run.manifest_path)
    if manifest.modality == "text":  # the temperature only: "none of these" would need
        # outside texts to measure it on, and there is no second text sample yet
        val = [(it.text or "", it.label) for it in manifest.items_for("val")]
        trust = fit_trust(predictor, [], val, progress=progress)
    else:
        train = [(it.path, it.label) for it in manifest.items_for("train")]
        val = [(it.path, it.label) for it in manifest.items_for("val")]
        reference, source = reference_photos(run)
        trust = fit_trust(predictor, train, val, reference, source, progress)
    write_unknown_file(trust, bank_path(run, checkpoint))
    write_json_atomic(trust_path(run, checkpoint), {"checkpoint": stamp, "trust": trust.meta()})
    return trust


def stored_trust(run: Any, checkpoint: str = "best") -> Trust | None:
    """The trust kept for this checkpoint; None when missing, unreadable or for older weights."""
    from tlcore.runs.files import read_json

    run = run if isinstance(run, Run) else Run.open(run)
    stored = read_json(trust_path(run, checkpoint))
    if not stored or stored.get("checkpoint") != checkpoint_stamp(run, checkpoint):
        return None
    block = stored.get("trust") or {}
    try:
        bank = None
        if block.get("unknown") is not None:
            bank = read_unknown_bank(bank_path(run, checkpoint), str(run.dir))
        return trust_from_meta(block, bank, f"run {run.id}")
    except TLCoreError as exc:
        log.warning("ignoring the stored trust of run %s: %s", run.id, exc)
        return None


def ensure_trust(
    run: Any, checkpoint: str = "best", on_fit: Callable[[], None] | None = None
) -> Trust | None:
    """The stored trust, fitted now when there is none yet (a stopped run, an older run).

    A report the Evaluate page kept from before the fit showed uncalibrated
    probabilities, so it is dropped and the page scores the checkpoint again.
    """
    run = run if isinstance(run, Run) else Run.open(run)
    trust = stored_trust(run, checkpoint)
    if trust is not None or checkpoint_stamp(run, checkpoint) is None or not can_fit_trust(run):
        return trust
    if on_fit is not None:  # say why this call takes a while
        on_fit()
    trust = fit_run_trust(run, checkpoint)
    evaluation_path(run, checkpoint).unlink(missing_ok=True)
    return trust


def fit_finished_run_trust(run: Run, progress: ProgressCallback | None = None) -> None:
    """The worker's step after the last epoch: fit best (and last, when it differs)."""
    import shutil

    from tlcore.runs.files import read_json, write_json_atomic

    if checkpoint_stamp(run, "best") is None or not can_fit_trust(run):
        return
    fit_run_trust(run, "best", progress)
    if checkpoint_stamp(run, "last") is None:
        return
    if not same_weights(run):
        fit_run_trust(run, "last", progress)
        return
    # the last epoch was the best: the same weights have the same trust
    if bank_path(run, "best").is_file():
        shutil.copyfile(bank_path(run, "best"), bank_path(run, "last"))
    block = (read_json(trust_path(run, "best")) or {}).get("trust") or {}
    write_json_atomic(
        trust_path(run, "last"), {"checkpoint": checkpoint_stamp(run, "last"), "trust": block}
    )
