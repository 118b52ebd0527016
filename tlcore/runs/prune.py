"""Cleaning up old runs on a shared server: ``tlcore runs --prune``.

Runs are kept until someone deletes them (checkpoints are a few MB each for
small models, far more for large ones). Pruning removes whole run directories
of ended runs only, chosen by state and age of last activity; a run that is
waiting or training is never touched, and ``dry_run`` shows what would go.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlcore.errors import ConfigError
from tlcore.runs import queue as run_queue
from tlcore.runs.run import ACTIVE_STATES, STATES, list_runs

DEFAULT_PRUNE_STATES = ("failed", "stopped")
_DAY_S = 86_400.0


def parse_states(text: str) -> tuple[str, ...]:
    """``"failed,stopped"`` -> states; ConfigError for unknown or active ones."""
    states = tuple(s.strip() for s in text.split(",") if s.strip())
    ended = [s for s in STATES if s not in ACTIVE_STATES]
    bad = [s for s in states if s not in ended]
    if not states or bad:
        raise ConfigError(
            f"--state {text!r} is not valid: use a comma-separated list of {', '.join(ended)} "
            "(runs waiting or training are never pruned; stop them first)."
        )
    return states


def last_activity(run_dir: Path, status: dict[str, Any]) -> float:
    """Unix time of the run's last heartbeat (the status file's time when it has none)."""
    stamp = status.get("heartbeat_unix")
    if isinstance(stamp, int | float):
        return float(stamp)
    try:
        return (run_dir / "status.json").stat().st_mtime
    except OSError:
        return run_dir.stat().st_mtime


def directory_bytes(path: Path) -> int:
    """The bytes of the files under ``path``; a link is counted as itself, never followed."""
    total = 0
    for current, _dirs, files in os.walk(path):  # followlinks=False
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(current) / name).lstat().st_size
    return total


def prune_runs(
    states: Sequence[str] = DEFAULT_PRUNE_STATES,
    older_than_days: float | None = None,
    owner: str | None = None,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Delete ended runs in ``states`` idle for more than ``older_than_days``; one row per run."""
    if older_than_days is not None and older_than_days < 0:
        raise ConfigError(f"--older-than {older_than_days} is not valid: it must be >= 0 days.")
    now, pruned = time.time(), []
    for run in list_runs(owner):  # real folders only: a link is never listed, so never followed
        status = run.status()
        state = status.get("state")
        if state in ACTIVE_STATES or state not in states:
            continue
        idle_days = (now - last_activity(run.dir, status)) / _DAY_S
        if older_than_days is not None and idle_days < older_than_days:
            continue
        row = {"id": run.id, "state": state, "idle_days": round(idle_days, 2),
               "bytes": directory_bytes(run.dir), "deleted": not dry_run}  # fmt: skip
        if not dry_run:
            shutil.rmtree(run.dir)
            run_queue.leave(run.dir)
        pruned.append(row)
    return pruned
