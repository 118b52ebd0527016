"""A run's checkpoint: the model it holds, its stamp, and the files fitted or scored on it.

Below ``runs.scoring`` and ``runs.trust_store``, which both need the plain trained model
and need to know when a checkpoint was replaced (a resumed run voids what was kept).
"""

from __future__ import annotations

from pathlib import Path

from tlcore.errors import RunError
from tlcore.results.predict import CHECKPOINTS, Predictor, model_with_weights
from tlcore.results.tasks import results_task
from tlcore.runs.run import Run

EVALUATION_FILE = "evaluation-{checkpoint}.json"


def raw_predictor(run: Run, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """The model of a run at its best or last epoch, as trained: no temperature, no "none of
    these" detector (``runs.scoring.load_predictor`` adds them)."""
    from tlcore.data.manifest import Manifest
    from tlcore.training.checkpoints import checkpoint_paths

    if checkpoint not in CHECKPOINTS:
        raise RunError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}.")
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
    make = results_task(run.task).predictor  # a Predictor, or a TextPredictor for sentences
    return make(model, list(classes), config, f"run {run.id} ({checkpoint})", device)


def checkpoint_stamp(run: Run, checkpoint: str) -> dict[str, int] | None:
    """Size and time of the checkpoint file: a resumed run that replaces it voids the score."""
    from tlcore.training.checkpoints import checkpoint_paths

    try:
        stat = checkpoint_paths(run.checkpoints_dir, checkpoint)[0].stat()
    except OSError:
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def same_weights(run: Run) -> bool:
    """Best and last hold the same bytes (the last epoch was the best, or nothing changed)."""
    import hashlib

    from tlcore.training.checkpoints import checkpoint_paths

    digests = []
    for name in CHECKPOINTS:
        path = checkpoint_paths(run.checkpoints_dir, name)[0]
        if not path.is_file():
            return False
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    return digests[0] == digests[1]


def evaluation_path(run: Run, checkpoint: str) -> Path:
    """Where the Evaluate page's score of this checkpoint is kept."""
    return run.dir / EVALUATION_FILE.format(checkpoint=checkpoint)
