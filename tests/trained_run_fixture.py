"""One real trained run shared by the evaluate/explain/predict tests (trained once per session).

Feature extraction on the bundled ants/bees photos with the bundled EfficientNet-Lite0
at 128 px and no augmentation, so the engine takes its fast path and the run
finishes in seconds. Each test file wraps ``trained_run_dir`` in a session fixture;
the module-level cache makes sure the worker runs only once per pytest process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from shared_across_workers import build_once

from tlcore import settings
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

IMG_SIZE = 128
_CACHE: dict[str, Path] = {}


def trained_run_dir(sample_dir: Path, base: Path | None = None) -> Path:
    """The run directory of a finished 3-epoch feature-extraction run (trained on first call)."""
    if "run" in _CACHE:
        return _CACHE["run"]
    if base is not None:  # one run for both pytest-xdist workers
        _CACHE["run"] = build_once("trained-run", base, lambda root: _train(sample_dir, root))
    else:
        _CACHE["run"] = _train(sample_dir, None)
    return _CACHE["run"]


def _train(sample_dir: Path, base: Path | None) -> Path:
    root = Path(tempfile.mkdtemp(prefix="tl-eval-run-", dir=base))
    with settings.environment(
        TLCORE_RUNS_DIR=str(root / "runs"), TLCORE_UPLOADS_DIR=str(root / "uploads")
    ):
        config = TrainConfig(
            data=str(sample_dir),
            img_size=IMG_SIZE,
            epochs=3,
            batch_size=16,
            lr=3e-3,
            augment="none",
            device="cpu",
            name="evaluate-tests",
        )
        run = Run.start(config)
        status = run.wait(timeout=300)
    assert status["state"] == "finished", (status, run.log_path.read_text()[-2000:])
    return run.dir
