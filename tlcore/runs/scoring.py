"""A run's trained model as a ``Predictor``, and its score on the run's own split.

``tlcore.results`` works on a model, its classes and photos and knows nothing of run
folders; this is the bridge from a run directory (config, manifest, checkpoints) to it.
"""

from __future__ import annotations

from pathlib import Path

from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.errors import DataError
from tlcore.results.evaluation import EvaluationReport, evaluate_probabilities
from tlcore.results.predict import Predictor
from tlcore.results.tasks import bundle_task, results_task
from tlcore.results.trust import Trust
from tlcore.runs.checkpoint_model import checkpoint_stamp, evaluation_path, raw_predictor
from tlcore.runs.outputs import ValidationOutputs, validation_items, validation_outputs
from tlcore.runs.run import Run
from tlcore.runs.trust_store import stored_trust

__all__ = ["evaluation_path", "evaluate_run", "load_model", "load_predictor", "raw_predictor"]


def load_predictor(run: Run, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """The model of a run at its best or last epoch, with the temperature and "none of
    these" detector fitted for that checkpoint, if any."""
    predictor = raw_predictor(run, checkpoint, device)
    return predictor.set_trust(stored_trust(run, checkpoint))  # texts: the temperature only


def load_model(
    source: Run | str | Path, checkpoint: str = "best", device: str = "cpu"
) -> Predictor:
    """A run (a ``Run``, its id or folder) or an exported bundle (folder or .zip): an edge,
    where a name the user typed becomes a run or a bundle."""
    from tlcore.results.bundle_format import is_bundle

    if isinstance(source, str | Path) and is_bundle(source):
        from tlcore.results.bundle_format import bundle_meta

        # a photo or text model, label columns or a detector: its task's reader loads it
        task = bundle_task(bundle_meta(source))
        return results_task(task).load_bundle(source, device)
    run = source if isinstance(source, Run) else Run.open(source)
    return load_predictor(run, checkpoint=checkpoint, device=device)


def evaluate_run(
    run: Run,
    checkpoint: str = "best",
    split: str = "val",
    predictor: Predictor | None = None,
    worst_k: int = 12,
    progress: ProgressCallback | None = None,
) -> EvaluationReport:
    """Score a run's checkpoint on one split of the run's own manifest (default validation).

    The validation split is read from the checkpoint's kept outputs (``tlcore.runs.outputs``:
    scored once, then kept), calibrated with its stored temperature. ``predictor`` scores
    afresh with that model instead (another split, or a model changed in memory);
    ``progress`` hears "Scoring the val photos: k of N" (tlcore.data.progress).
    """
    import torch

    from tlcore.data.manifest import Manifest

    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for(split)
    if not items:
        raise DataError(f"run {run.id} has no images in the '{split}' split to evaluate on.")
    task = results_task(run.task)
    inputs = [task.model_input(item) for item in items]
    if split == "val" and predictor is None:
        outputs = validation_outputs(run, checkpoint, progress)
        return report_from_outputs(run, checkpoint, outputs, stored_trust(run, checkpoint), worst_k)
    predictor = predictor or load_predictor(run, checkpoint=checkpoint)
    tracker = Tracker(f"Scoring the {split} {task.items}", len(inputs), progress)
    probabilities = torch.cat([predictor.predict(chunk) for chunk in tracker.chunks(inputs)])
    return evaluate_probabilities(
        probabilities,
        [item.label for item in items],
        manifest.classes,
        inputs,
        worst_k=worst_k,
        source=f"{predictor.source} on {len(items)} {split} {task.items}",
    )


def report_from_outputs(
    run: Run, checkpoint: str, outputs: ValidationOutputs, trust: Trust | None, worst_k: int = 12
) -> EvaluationReport:
    """The score of a checkpoint from its kept validation outputs, calibrated by ``trust``."""
    inputs, targets, manifest = validation_items(run)
    items = results_task(run.task).items
    temperature = trust.calibration.temperature if trust is not None else 1.0
    return evaluate_probabilities(
        outputs.probabilities(temperature), targets, manifest.classes, inputs, worst_k=worst_k,
        source=f"run {run.id} ({checkpoint}) on {len(inputs)} val {items}",
    )  # fmt: skip


# -- the score a finished run keeps (the Evaluate page reads it instead of scoring again) ----


def store_evaluation(run: Run, checkpoint: str, report: EvaluationReport) -> Path:
    """Write ``report`` next to the checkpoint it scores (atomically)."""
    from tlcore.runs.files import write_json_atomic

    path = evaluation_path(run, checkpoint)
    write_json_atomic(
        path, {"checkpoint": checkpoint_stamp(run, checkpoint), "report": report.to_dict()}
    )
    return path


def stored_evaluation(run: Run, checkpoint: str = "best") -> EvaluationReport | None:
    """The score kept for this checkpoint, or None when missing or the checkpoint changed."""
    from dataclasses import fields

    from tlcore.results.evaluation import Mistake
    from tlcore.runs.files import read_json

    stored = read_json(evaluation_path(run, checkpoint))
    if not stored or stored.get("checkpoint") != checkpoint_stamp(run, checkpoint):
        return None
    data = dict(stored.get("report") or {})
    try:
        data["worst"] = [Mistake(**m) for m in data.get("worst", [])]
        known = {f.name for f in fields(EvaluationReport)}
        return EvaluationReport(**{k: v for k, v in data.items() if k in known})
    except TypeError:  # written by another version: score again
        return None
