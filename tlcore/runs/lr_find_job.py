"""The learning-rate range test for the Train page, in its own process (``tlcore.runs.background``).

The test trains a throw-away copy of the model for up to a hundred steps (seconds with
feature extraction, minutes when layers are fine-tuned on a CPU). Inside the page it
held the Streamlit server's process and was dropped by the next click; here it runs as
``python -m tlcore.runs.lr_find_job JOB`` and writes its curve and suggestion into the
job file ``<runs>/.jobs/lr-find-<owner>.json``, which the page polls. One test per
browser owner at a time; a new one replaces the last result.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.errors import DataError, RunError
from tlcore.runs.background import ACTIVE, read_job, run_job, start_job
from tlcore.training.config import TrainConfig
from tlcore.training.lr_find import LRFinderResult

MODULE = "tlcore.runs.lr_find_job"
JOBS_DIR = ".jobs"
DOING = "Trying learning rates from tiny to huge on a few batches."


def job_path(owner: str = "") -> Path:
    """The job file of ``owner`` (a browser's id on a shared server; "" on a one-person install)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", owner)[:64] or "local"
    return settings.runs_dir() / JOBS_DIR / f"lr-find-{name}.json"


def lr_find_job(owner: str = "") -> dict[str, Any] | None:
    """The last test of ``owner``: its state, message and, once ``done``, its result."""
    return read_job(MODULE, job_path(owner))


def start_lr_find(config: TrainConfig, owner: str = "") -> dict[str, Any]:
    """Start the test of ``config`` (validated, with its ``manifest_path``) in its own process.

    RunError when this owner's last test is still running; DataError when the config
    names no prepared split to try on.
    """
    if not config.manifest_path:
        raise DataError("The learning-rate test needs a prepared dataset: choose one on the "
                        "Data page first.")  # fmt: skip
    current = lr_find_job(owner)
    if current and current.get("state") in ACTIVE:
        raise RunError("A learning-rate test is already running: wait for its curve.")
    return start_job(MODULE, job_path(owner), {"config": config.to_dict()})


def found(job: dict[str, Any] | None) -> LRFinderResult | None:
    """The finished test's curve and suggestion (None while it runs or after a failure)."""
    if not job or job.get("state") != "done" or not isinstance(job.get("result"), dict):
        return None
    return LRFinderResult(**job["result"])


def _sweep(job: dict[str, Any]) -> dict[str, Any]:
    from tlcore.training.lr_find import lr_find

    config = TrainConfig.from_dict(job.get("config") or {}).validate()
    return lr_find(config, Manifest.load(config.manifest_path)).to_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__)
    parser.add_argument("job", type=Path)
    args = parser.parse_args(argv)
    return run_job(args.job.resolve(), _sweep, DOING)


if __name__ == "__main__":
    raise SystemExit(main())
