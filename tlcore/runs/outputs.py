"""A checkpoint's outputs on the validation items, computed once and kept beside it.

The temperature, the "none of these" threshold, the stored evaluation (scores, worst
mistakes), the Evaluate page's clickable confusion cells and the embedding map all read
these numbers. Before, each of them scored the validation photos again: three passes in the
worker after every run and a fourth on the Evaluate page. ``validation_outputs`` reads the
kept file, or scores the items once and keeps it; the worker fills it from the model it still
holds (``tlcore.runs.finish``). The file records the checkpoint's stamp: a resumed run that
replaces the checkpoint voids it.

File: ``outputs-<checkpoint>.safetensors`` with ``logits`` (N, classes), ``features``
(N, D, what the head sees) and ``targets`` (N), in the manifest's validation order.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.errors import DataError
from tlcore.results.tasks import results_task
from tlcore.runs.checkpoint_model import checkpoint_stamp, raw_predictor
from tlcore.runs.run import Run

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest
    from tlcore.results.predict import Predictor

log = logging.getLogger("tlcore.runs.outputs")
OUTPUTS_FILE = "outputs-{checkpoint}.safetensors"
# model passes over a run's validation items in this process, per checkpoint: the one pass
# this module exists to keep to one (tests/test_validation_outputs.py counts them too)
PASSES: Counter[str] = Counter()


@dataclass
class ValidationOutputs:
    """Raw scores, pooled features and true classes of every validation item of one checkpoint."""

    logits: torch.Tensor
    features: torch.Tensor
    targets: torch.Tensor

    def probabilities(self, temperature: float = 1.0) -> torch.Tensor:
        """Class probabilities with the fitted temperature (1.0: as trained)."""
        return (self.logits / temperature).softmax(dim=1)


def outputs_path(run: Run, checkpoint: str) -> Path:
    return run.dir / OUTPUTS_FILE.format(checkpoint=checkpoint)


def validation_items(run: Run) -> tuple[list[str], list[int], Manifest]:
    """(what the model reads of each validation item, its class, the manifest)."""
    from tlcore.data.manifest import Manifest

    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for("val")
    model_input = results_task(run.task).model_input
    return [model_input(item) for item in items], [item.label for item in items], manifest


def store_outputs(run: Run, checkpoint: str, outputs: ValidationOutputs) -> None:
    """Keep ``outputs`` beside the checkpoint they came from, whole or not at all."""
    from safetensors.torch import save_file

    path = outputs_path(run, checkpoint)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tensors = {"logits": outputs.logits, "features": outputs.features, "targets": outputs.targets}
    stamp = json.dumps(checkpoint_stamp(run, checkpoint), sort_keys=True)
    save_file({k: v.detach().float().cpu().contiguous() if k != "targets" else
               v.detach().long().cpu().contiguous() for k, v in tensors.items()},
              str(tmp), metadata={"checkpoint": stamp})  # fmt: skip
    os.replace(tmp, path)


def stored_outputs(run: Run, checkpoint: str) -> ValidationOutputs | None:
    """The kept outputs of this checkpoint; None when missing, torn, or for other weights."""
    from safetensors import safe_open

    path = outputs_path(run, checkpoint)
    stamp = checkpoint_stamp(run, checkpoint)
    if stamp is None or not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("checkpoint") != json.dumps(stamp, sort_keys=True):
                return None
            tensors = {name: f.get_tensor(name) for name in ("logits", "features", "targets")}
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file: score again, replace it
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return ValidationOutputs(tensors["logits"], tensors["features"], tensors["targets"].long())


def score_validation(
    run: Run,
    checkpoint: str,
    predictor: Predictor | None = None,
    progress: ProgressCallback | None = None,
) -> ValidationOutputs:
    """One pass of the checkpoint's model over the validation items (``progress`` hears k of N)."""
    inputs, targets, _ = validation_items(run)
    if not inputs:
        raise DataError(f"run {run.id} has no items in its validation split to score.")
    predictor = predictor or raw_predictor(run, checkpoint)
    items = results_task(run.task).items
    tracker = Tracker(f"Scoring the validation {items}", len(inputs), progress)
    parts = [predictor.logits_and_features(chunk) for chunk in tracker.chunks(inputs)]
    PASSES[checkpoint] += 1
    return ValidationOutputs(
        torch.cat([logits for logits, _ in parts]),
        torch.cat([feats for _, feats in parts]),
        torch.tensor(targets, dtype=torch.long),
    )


def validation_outputs(
    run: Run, checkpoint: str = "best", progress: ProgressCallback | None = None
) -> ValidationOutputs:
    """The kept outputs, or the one pass that makes them (kept unless the run is still
    writing this checkpoint)."""
    kept = stored_outputs(run, checkpoint)
    if kept is not None:
        return kept
    outputs = score_validation(run, checkpoint, progress=progress)
    if run.status().get("state") not in ("queued", "running"):
        from safetensors import SafetensorError

        try:
            store_outputs(run, checkpoint, outputs)
        except (OSError, SafetensorError) as exc:  # a read-only run folder: right, not kept
            log.warning("could not keep the validation outputs of run %s: %s", run.id, exc)
    return outputs
