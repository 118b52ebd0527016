"""A real DANN run and its baseline on the sample vs a colour/blur-shifted copy, trained once.

Source: the bundled ants/bees photos (train/ 80, val/ 40). Target: the val/ photos
moved to another "camera" by ``tlcore.lab.domain_shift`` (hue turned, blurred, flat
contrast), keeping their class folders so target accuracy can be scored. Both runs
train the last backbone group + head for one epoch at 96 px through the real worker.
Shared by the engine and the page tests; the module cache trains once per process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tlcore import settings
from tlcore.lab.adaptation_runs import start_pair
from tlcore.lab.domain_shift import make_shifted_copy
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

_CACHE: dict[str, object] = {}


def pair_runs(sample_dir: Path, base: Path | None = None) -> tuple[Run, Run, Path]:
    """(baseline run, DANN run, target folder), both runs finished."""
    if "pair" in _CACHE:
        return _CACHE["pair"]  # type: ignore[return-value]
    root = Path(tempfile.mkdtemp(prefix="tl-domain-", dir=base))
    target = make_shifted_copy(sample_dir, root / "shifted-val", split="val").folder
    with settings.environment(
        TLCORE_RUNS_DIR=str(root / "runs"), TLCORE_UPLOADS_DIR=str(root / "uploads")
    ):
        config = TrainConfig(
            data=str(sample_dir), img_size=96, epochs=1, batch_size=16, lr=1e-3,
            augment="none", device="cpu", freeze={"preset": "last-k", "k": 2},
        )  # fmt: skip
        baseline, dann = start_pair(config, str(target), dann_weight=1.0)
        states = baseline.wait(timeout=400), dann.wait(timeout=400)
    for run, status in zip((baseline, dann), states, strict=True):
        assert status["state"] == "finished", (status, run.log_path.read_text()[-3000:])
    _CACHE["pair"] = (baseline, dann, target)
    return baseline, dann, target
