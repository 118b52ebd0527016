"""Exports from the Export page as background jobs: ``python -m tlcore.export.jobs RUN FMT CKPT``.

An export written inside a page's script run dies with that run: a click on
another button restarts the script and the half-made file is silently dropped.
So, like a training run, each export runs in its own detached process and keeps
its state in a small file, ``<run>/exports/jobs/<format>.json`` (queued,
running, done, failed), which the page reads back. Jobs of one run take turns
(a lock file), so two exports never fight over the CPU or over ``exports.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.progress import Progress, ProgressCallback
from tlcore.errors import ConfigError, RunError, TLCoreError
from tlcore.export.exporter import EXPORTS_DIR, FORMATS, export_into_run
from tlcore.runs.files import read_json, write_json_atomic
from tlcore.runs.run import Run, pid_is_worker

ACTIVE = ("queued", "running")
JOBS_DIR = "jobs"
LOCK_FILE = ".export.lock"
_CHILDREN: dict[int, subprocess.Popen] = {}  # jobs this process started, reaped when read
STARTUP_GRACE_S = 20.0  # a job written but not yet started by its process counts as alive


def job_path(run: Run, fmt: str) -> Path:
    return run.dir / EXPORTS_DIR / JOBS_DIR / f"{fmt}.json"


def _alive(run: Run, pid: int | None) -> bool:
    """Our job process for this run, alive and not a zombie (a reused pid runs something else)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:  # ended (and reaped now)
        return False
    return pid_is_worker(pid, run.dir, worker_cmd=f"tlcore.export.jobs {run.dir}")


def export_job(run: Run, fmt: str) -> dict[str, Any] | None:
    """The job's last state; a job whose process died without saying so is ``failed``."""
    job = read_json(job_path(run, fmt))
    if not job:
        return None
    if job.get("state") in ACTIVE and not _alive(run, job.get("pid")):
        young = time.time() - float(job.get("queued_at", 0)) < STARTUP_GRACE_S
        if not (job.get("pid") is None and young):
            job.update(state="failed", message="Interrupted: the export process ended early. "
                       "Press Export again.")  # fmt: skip
    return job


def start_export(run: Run, fmt: str, checkpoint: str = "best") -> dict[str, Any]:
    """Queue an export of ``run`` as ``fmt`` in its own process; returns the job record."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")
    if checkpoint not in ("best", "last"):
        raise ConfigError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}.")
    current = export_job(run, fmt)
    if current and current.get("state") in ACTIVE:
        raise RunError(f"The {fmt} export of run {run.id} is already being written.")
    path = job_path(run, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    job = {"format": fmt, "checkpoint": checkpoint, "state": "queued", "pid": None,
           "queued_at": time.time(), "message": "Waiting to start."}  # fmt: skip
    write_json_atomic(path, job)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    cmd = [sys.executable, "-m", "tlcore.export.jobs", str(run.dir), fmt, checkpoint]
    with open(path.with_suffix(".log"), "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    _CHILDREN[proc.pid] = proc
    return job


def _update(run: Run, fmt: str, **fields: Any) -> None:
    path = job_path(run, fmt)
    write_json_atomic(path, {**(read_json(path) or {}), **fields})


def _progress_recorder(run: Run, fmt: str, every_s: float = 0.5) -> ProgressCallback:
    """Keep the export's progress in its job file (the page draws the bar from it)."""
    last = {"at": 0.0, "task": ""}

    def record(progress: Progress) -> None:
        now = time.monotonic()
        finished = progress.done >= progress.total
        if progress.task == last["task"] and not finished and now - last["at"] < every_s:
            return
        last.update(at=now, task=progress.task)
        _update(run, fmt, progress=progress.to_dict())

    return record


def job_progress(job: dict[str, Any] | None) -> Progress | None:
    """The progress a running job last recorded (None before its first step)."""
    return Progress.from_dict((job or {}).get("progress"))


def run_job(run: Run, fmt: str, checkpoint: str) -> int:
    """Wait for this run's other exports, write the file, record the outcome; the exit code."""
    _update(run, fmt, pid=os.getpid(), message="Waiting for another export of this run.")
    lock = open(run.dir / EXPORTS_DIR / LOCK_FILE, "a+")  # noqa: SIM115 - held until exit
    try:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # one export at a time per run
        except ImportError:  # Windows: no lock, the exports run side by side
            pass
        _update(run, fmt, state="running", started_at=time.time(), message="Writing the file.")
        result = export_into_run(run, fmt, checkpoint, progress=_progress_recorder(run, fmt))
        _update(run, fmt, state="done", finished_at=time.time(), message=result.text())
        return 0
    except TLCoreError as exc:
        _update(run, fmt, state="failed", finished_at=time.time(), message=str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - every fault must end as a state the page shows
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        _update(run, fmt, state="failed", finished_at=time.time(),
                message=f"Unexpected error {type(exc).__name__}: {first}.")  # fmt: skip
        raise
    finally:
        lock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tlcore.export.jobs", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("checkpoint", choices=("best", "last"))
    args = parser.parse_args(argv)
    return run_job(Run(args.run_dir.resolve()), args.format, args.checkpoint)


if __name__ == "__main__":
    raise SystemExit(main())
