"""A run's fitted temperature and "none of these" detector, kept beside its checkpoints.

The worker fits them once when a run finishes (``tlcore.runs.finish``), from the
validation outputs it keeps (``tlcore.runs.outputs``), before the run is scored for the
Evaluate page, so every probability shown afterwards is the calibrated one. A run that stopped early, or one trained before this existed,
is fitted on first use (``ensure_trust``). Each file records the size and time of
the checkpoint it was fitted on: a resumed run that replaces the checkpoint voids it.

Files: ``trust-<checkpoint>.json`` (the JSON block of ``tlcore.results.trust``) and
``unknown-<checkpoint>.safetensors`` (the training photos' features).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tlcore import settings
from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.errors import TLCoreError
from tlcore.results.tasks import results_task
from tlcore.results.trust import (
    REFERENCE_PHOTOS,
    Trust,
    fit_trust,
    read_features,
    read_unknown_bank,
    trust_from_meta,
    write_unknown_file,
)
from tlcore.results.unknown import bank_indices
from tlcore.runs.checkpoint_model import checkpoint_stamp, evaluation_path, raw_predictor
from tlcore.runs.outputs import ValidationOutputs, validation_outputs
from tlcore.runs.run import Run

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest
    from tlcore.results.predict import Predictor

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


def measures_unknown(run: Run) -> bool:
    """Whether "none of these" is fitted for the run's task (photos; texts keep the
    temperature only: there is no second text sample to measure it on)."""
    try:
        return results_task(run.task).has_unknown
    except TLCoreError:
        return False


def can_fit_trust(run: Run) -> bool:
    try:
        results_task(run.task)
    except TLCoreError:
        return False
    return True


@dataclass
class TrustFeatures:
    """What the "none of these" detector is fitted and measured on, besides the validation
    outputs: the training items' features (a balanced subset) and outside photos' features."""

    train: torch.Tensor
    reference: torch.Tensor | None = None
    reference_source: str = ""


def bank_items(manifest: Manifest) -> list[int]:
    """Which training items (indices into the training split) the detector keeps."""
    return bank_indices([it.label for it in manifest.items_for("train")])


def read_trust_features(
    run: Run, checkpoint: str, predictor: Predictor | None = None,
    progress: ProgressCallback | None = None,
) -> TrustFeatures:  # fmt: skip
    """One pass of the checkpoint's model over the kept training photos and the outside
    photos (never the validation ones: those are in ``tlcore.runs.outputs``)."""
    from tlcore.data.manifest import Manifest

    manifest = Manifest.load(run.manifest_path)
    train = manifest.items_for("train")
    paths = [train[i].path for i in bank_items(manifest)]
    reference, source = reference_photos(run)
    predictor = predictor or raw_predictor(run, checkpoint=checkpoint)
    tracker = Tracker('Measuring "none of these"', len(paths) + len(reference), progress)
    train_feats = read_features(predictor, paths, tracker)
    ref_feats = read_features(predictor, reference, tracker) if reference else None
    return TrustFeatures(train_feats, ref_feats, source)


def fit_run_trust(
    run: Run,
    checkpoint: str = "best",
    progress: ProgressCallback | None = None,
    *,
    outputs: ValidationOutputs | None = None,
    features: TrustFeatures | None = None,
) -> Trust:
    """Fit and keep the trust of ``run``'s checkpoint: the temperature from its validation
    outputs (read once, ``tlcore.runs.outputs``), and for photos "none of these" from the
    training and outside photos' features (``features``, else read now)."""
    stamp = checkpoint_stamp(run, checkpoint)
    outputs = outputs if outputs is not None else validation_outputs(run, checkpoint, progress)
    if features is None and measures_unknown(run):
        features = read_trust_features(run, checkpoint, progress=progress)
    trust = fit_trust(
        outputs.logits, outputs.features, outputs.targets,
        features.train if features is not None else None,
        features.reference if features is not None else None,
        features.reference_source if features is not None else "",
    )  # fmt: skip
    keep_trust(run, checkpoint, trust, stamp)
    return trust


def keep_trust(run: Run, checkpoint: str, trust: Trust, stamp: object) -> bool:
    """Write the trust files into the run; False (and nothing half-written) when the run
    folder cannot be written: a read-only run still predicts, with the trust in memory."""
    from safetensors import SafetensorError

    from tlcore.runs.files import write_json_atomic

    try:
        write_unknown_file(trust, bank_path(run, checkpoint))
        write_json_atomic(trust_path(run, checkpoint), {"checkpoint": stamp, "trust": trust.meta()})
    except (OSError, SafetensorError) as exc:  # read-only folder, full disk
        log.warning("could not keep the calibration of run %s (%s): it is used, not kept", run.id,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)  # fmt: skip
        for path in (bank_path(run, checkpoint), trust_path(run, checkpoint)):
            for tmp in path.parent.glob(f".{path.name}.*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return False
    return True


def stored_trust(run: Run, checkpoint: str = "best") -> Trust | None:
    """The trust kept for this checkpoint; None when missing, unreadable or for older weights."""
    from tlcore.runs.files import read_json

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
    run: Run, checkpoint: str = "best", on_fit: Callable[[], None] | None = None
) -> Trust | None:
    """The stored trust, fitted now when there is none yet (a stopped run, an older run).

    A report the Evaluate page kept from before the fit showed uncalibrated
    probabilities, so it is dropped and the page scores the checkpoint again (from the
    kept validation outputs: no second pass).
    """
    trust = stored_trust(run, checkpoint)
    if trust is not None or checkpoint_stamp(run, checkpoint) is None or not can_fit_trust(run):
        return trust
    if on_fit is not None:  # say why this call takes a while
        on_fit()
    trust = fit_run_trust(run, checkpoint)
    with contextlib.suppress(OSError):  # a read-only run: its kept score stays
        evaluation_path(run, checkpoint).unlink(missing_ok=True)
    return trust
