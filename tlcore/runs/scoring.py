"""A run's trained model as a ``Predictor``, and its score on the run's own split.

``tlcore.results`` works on a model, its classes and photos and knows nothing of run
folders; this is the bridge from a run directory (config, manifest, checkpoints) to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlcore.errors import DataError, RunError
from tlcore.results.evaluation import EvaluationReport, evaluate_probabilities
from tlcore.results.predict import CHECKPOINTS, Predictor, model_with_weights
from tlcore.runs.run import Run


def load_predictor(run: Any, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """The model of a run (a ``Run``, its id or its folder) at its best or last epoch."""
    from tlcore.data.manifest import Manifest
    from tlcore.training.checkpoints import checkpoint_paths

    if checkpoint not in CHECKPOINTS:
        raise RunError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}.")
    run = run if isinstance(run, Run) else Run.open(run)
    config = run.config
    classes = run.record.get("data", {}).get("classes")
    if not classes:
        classes = Manifest.load(run.manifest_path).classes
    weights_path, _ = checkpoint_paths(run.checkpoints_dir, checkpoint)
    if not weights_path.is_file():
        raise RunError(
            f"run {run.id} has no '{checkpoint}' checkpoint yet ({weights_path} is missing): "
            "wait until the first epoch has finished, or pick another run."
        )
    model = model_with_weights(config.model, len(classes), weights_path)
    return Predictor(
        model,
        classes,
        config.img_size,
        model_name=config.model,
        weights=config.weights,
        source=f"run {run.id} ({checkpoint})",
        device=device,
    )


def load_model(source: Any, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """A run id/folder or an exported bundle (folder or .zip), whichever ``source`` is."""
    from tlcore.results.bundle_format import is_bundle

    if isinstance(source, str | Path) and is_bundle(source):
        return Predictor.from_bundle(source, device=device)
    return load_predictor(source, checkpoint=checkpoint, device=device)


def evaluate_run(
    run: Any,
    checkpoint: str = "best",
    split: str = "val",
    predictor: Predictor | None = None,
    worst_k: int = 12,
) -> EvaluationReport:
    """Score a run's checkpoint on one split of the run's own manifest (default validation).

    ``predictor`` may be passed in when the caller already holds one (the page caches it).
    """
    from tlcore.data.manifest import Manifest

    run = run if isinstance(run, Run) else Run.open(run)
    predictor = predictor or load_predictor(run, checkpoint=checkpoint)
    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for(split)
    if not items:
        raise DataError(f"run {run.id} has no images in the '{split}' split to evaluate on.")
    paths = [item.path for item in items]
    probabilities = predictor.predict(paths)
    return evaluate_probabilities(
        probabilities,
        [item.label for item in items],
        manifest.classes,
        paths,
        worst_k=worst_k,
        source=f"{predictor.source} on {len(items)} {split} images",
    )
