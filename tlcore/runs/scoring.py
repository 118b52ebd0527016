"""A run's trained model as a ``Predictor``, and its score on the run's own split.

``tlcore.results`` works on a model, its classes and photos and knows nothing of run
folders; this is the bridge from a run directory (config, manifest, checkpoints) to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.errors import DataError
from tlcore.results.evaluation import EvaluationReport, evaluate_probabilities
from tlcore.results.predict import Predictor
from tlcore.runs.checkpoint_model import (
    checkpoint_stamp,
    evaluation_path,
    raw_predictor,
    same_weights,
)
from tlcore.runs.run import Run
from tlcore.runs.trust_store import stored_trust

__all__ = ["evaluation_path", "evaluate_run", "load_model", "load_predictor", "raw_predictor"]


def load_predictor(run: Any, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """The model of a run (a ``Run``, its id or its folder) at its best or last epoch, with
    the temperature and "none of these" detector fitted for that checkpoint, if any."""
    run = run if isinstance(run, Run) else Run.open(run)
    predictor = raw_predictor(run, checkpoint, device)
    return predictor.set_trust(stored_trust(run, checkpoint))  # texts: the temperature only


def load_model(source: Any, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """A run id/folder or an exported bundle (folder or .zip), whichever ``source`` is."""
    from tlcore.results.bundle_format import is_bundle

    if isinstance(source, str | Path) and is_bundle(source):
        from tlcore.results.bundle_format import read_bundle

        if read_bundle(source)[0].get("modality") == "text":  # tlcore.results.text_predict
            from tlcore.results.text_predict import TextPredictor

            return TextPredictor.from_text_bundle(source, device=device)
        return Predictor.from_bundle(source, device=device)
    return load_predictor(source, checkpoint=checkpoint, device=device)


def evaluate_run(
    run: Any,
    checkpoint: str = "best",
    split: str = "val",
    predictor: Predictor | None = None,
    worst_k: int = 12,
    progress: ProgressCallback | None = None,
) -> EvaluationReport:
    """Score a run's checkpoint on one split of the run's own manifest (default validation).

    ``predictor`` may be passed in when the caller already holds one (the page caches it);
    ``progress`` hears "Scoring the val photos: k of N" (tlcore.data.progress).
    """
    import torch

    from tlcore.data.manifest import Manifest

    run = run if isinstance(run, Run) else Run.open(run)
    predictor = predictor or load_predictor(run, checkpoint=checkpoint)
    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for(split)
    if not items:
        raise DataError(f"run {run.id} has no images in the '{split}' split to evaluate on.")
    paths = [item.path for item in items]
    what = "images"
    if manifest.modality == "text":  # the sentences themselves are scored and shown
        paths, what = [item.text or "" for item in items], "texts"
    tracker = Tracker(f"Scoring the {split} {what}", len(paths), progress)
    probabilities = torch.cat([predictor.predict(chunk) for chunk in tracker.chunks(paths)])
    return evaluate_probabilities(
        probabilities,
        [item.label for item in items],
        manifest.classes,
        paths,
        worst_k=worst_k,
        source=f"{predictor.source} on {len(items)} {split} {what}",
    )


# -- the score a finished run keeps (the Evaluate page reads it instead of scoring again) ----


def store_evaluation(run: Run, checkpoint: str, report: EvaluationReport) -> Path:
    """Write ``report`` next to the checkpoint it scores (atomically)."""
    from tlcore.runs.files import write_json_atomic

    path = evaluation_path(run, checkpoint)
    write_json_atomic(
        path, {"checkpoint": checkpoint_stamp(run, checkpoint), "report": report.to_dict()}
    )
    return path


def stored_evaluation(run: Any, checkpoint: str = "best") -> EvaluationReport | None:
    """The score kept for this checkpoint, or None when missing or the checkpoint changed."""
    from dataclasses import fields

    from tlcore.results.evaluation import Mistake
    from tlcore.runs.files import read_json

    run = run if isinstance(run, Run) else Run.open(run)
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


def score_finished_run(
    run: Run, last: Predictor | None = None, progress: ProgressCallback | None = None
) -> dict[str, EvaluationReport]:
    """Score the best checkpoint (what the Evaluate page opens on) once, when the run ends.

    ``last`` is the trained model still in memory: when the best checkpoint holds the
    same weights it is used instead of reading the file again, and the report is kept
    for the last checkpoint too. A different last checkpoint is scored when asked for.
    """
    if checkpoint_stamp(run, "best") is None:
        return {}
    same = checkpoint_stamp(run, "last") is not None and same_weights(run)
    report = evaluate_run(run, "best", predictor=last if same else None, progress=progress)
    report.source = report.source.replace("(last)", "(best)")
    reports = {"best": report}
    if same:
        reports["last"] = EvaluationReport(
            **{**report.__dict__, "source": report.source.replace("(best)", "(last)")}
        )
    for checkpoint, kept in reports.items():
        store_evaluation(run, checkpoint, kept)
    return reports
