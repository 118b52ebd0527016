"""Work a page starts but must not hold: a detached ``python -m`` process and its job file.

A long step done inside a page's script run holds the Streamlit server's process and
its CPU, and dies with the script run: a click on another button restarts the script
and the half-done work is silently dropped. So, like a training run, such a step runs
in its own process (its own session: closing the app cannot kill it) and keeps its
state in one small JSON file (``queued``, ``running``, ``done`` with its result,
``failed`` with a message in words), written atomically, which the page reads back
on every refresh. ``tlcore.runs.lr_find_job`` is one such job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.errors import TLCoreError
from tlcore.runs.files import read_json, write_json_atomic
from tlcore.runs.run import pid_is_worker

ACTIVE = ("queued", "running")
STARTUP_GRACE_S = 20.0  # a job written but not yet started by its process counts as alive
_CHILDREN: dict[int, subprocess.Popen] = {}  # jobs this process started, reaped when read


def command_of(module: str, path: Path) -> list[str]:
    """The command line of the job in ``path``: ``python -m MODULE PATH``."""
    return [sys.executable, "-m", module, str(path)]


def start_job(module: str, path: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """Write a queued job (``fields`` plus its state) to ``path`` and start ``module`` on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    job = {**fields, "state": "queued", "pid": None, "queued_at": time.time(),
           "message": "Waiting to start."}  # fmt: skip
    write_json_atomic(path, job)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    with open(path.with_suffix(".log"), "ab") as log:
        proc = subprocess.Popen(command_of(module, path), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    _CHILDREN[proc.pid] = proc
    return job


def _alive(module: str, path: Path, pid: int | None) -> bool:
    """The job's own process, alive and not a zombie (a reused pid runs something else)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:  # ended (and reaped now)
        return False
    return pid_is_worker(pid, path.parent, worker_cmd=f"{module} {path}")


def read_job(module: str, path: Path) -> dict[str, Any] | None:
    """The job's last state; one whose process died without saying so reads ``failed``."""
    job = read_json(path)
    if not job:
        return None
    if job.get("state") in ACTIVE and not _alive(module, path, job.get("pid")):
        young = time.time() - float(job.get("queued_at", 0)) < STARTUP_GRACE_S
        if not (job.get("pid") is None and young):
            job.update(state="failed", message="Interrupted: the process doing it ended early. "
                       "Press the button again.")  # fmt: skip
    return job


def update_job(path: Path, **fields: Any) -> None:
    write_json_atomic(path, {**(read_json(path) or {}), **fields})


def run_job(path: Path, work: Callable[[dict[str, Any]], dict[str, Any]], doing: str) -> int:
    """In the job's process: run ``work(job)`` and record its result, or why it failed.

    Every fault ends as a state the page can show: a tlcore error with its own words,
    anything else named by its type. Returns the process's exit code.
    """
    update_job(path, pid=os.getpid(), state="running", started_at=time.time(), message=doing)
    try:
        result = work(read_json(path) or {})
    except TLCoreError as exc:
        update_job(path, state="failed", finished_at=time.time(), message=str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - every fault must end as a state the page shows
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        update_job(path, state="failed", finished_at=time.time(),
                   message=f"Unexpected error {type(exc).__name__}: {first}.")  # fmt: skip
        raise
    update_job(path, state="done", finished_at=time.time(), message="Done.", result=result)
    return 0
