"""First come, first served: the order in which waiting runs get a device.

Workers start in whatever order the OS schedules them, and a free device slot
goes to whichever waiting worker polls first, so the slot locks alone
(``tlcore.runs.worker.device_slot``) do not keep submission order. Here each
submission takes a ticket (a number from a counter kept under an flock) and
leaves a file ``<runs>/.queue/<ticket>-<run id>`` holding the device it asked
for; a worker may take a slot only when no live run with a smaller ticket is
still waiting for the same device. Entries of runs that ended or whose worker
died are removed by whoever sees them, so a crash never blocks the queue.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

QUEUE_DIR_NAME = ".queue"


def queue_dir(runs_root: Path) -> Path:
    return runs_root / QUEUE_DIR_NAME


def next_ticket(runs_root: Path) -> int:
    """The next number of a counter shared by every process on this machine."""
    folder = queue_dir(runs_root)
    folder.mkdir(parents=True, exist_ok=True)
    counter = folder / "sequence"
    try:
        import fcntl
    except ImportError:  # Windows: nanoseconds are ordered enough for one user
        return time_ticket()
    with open(folder / "sequence.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            value = int(counter.read_text().strip() or 0) + 1
        except (FileNotFoundError, ValueError):
            value = 1
        tmp = counter.with_name(f".sequence.{os.getpid()}.tmp")
        tmp.write_text(str(value))
        os.replace(tmp, counter)
        return value


def time_ticket() -> int:
    import time

    return time.time_ns()


def enqueue(run_dir: Path, device: str) -> int:
    """Take a ticket for the run in ``run_dir``; earlier entries of the same run are dropped."""
    leave(run_dir)
    ticket = next_ticket(run_dir.parent)
    entry = queue_dir(run_dir.parent) / f"{ticket:012d}-{run_dir.name}"
    tmp = entry.with_name(f".{entry.name}.tmp")
    tmp.write_text(device)
    os.replace(tmp, entry)
    return ticket


def leave(run_dir: Path) -> None:
    """The run got its device, or stopped waiting: it no longer holds anyone back."""
    for entry in _entries(run_dir.parent):
        if entry.name.split("-", 1)[1] == run_dir.name:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


def ticket_of(run_dir: Path) -> int | None:
    for entry in _entries(run_dir.parent):
        if entry.name.split("-", 1)[1] == run_dir.name:
            return int(entry.name.split("-", 1)[0])
    return None


def ahead_of(run_dir: Path, device: str, is_live: Callable[[Path], bool]) -> list[str]:
    """Ids of live runs submitted before this one that still wait for ``device``, oldest first.

    ``is_live(run_dir)`` says whether a run is still queued or running (``runs.run.is_live``);
    it is passed in so the queue stays a plain file format below ``Run``.
    """
    mine = ticket_of(run_dir)
    if mine is None:
        mine = enqueue(run_dir, device)
    ahead = []
    for entry in _entries(run_dir.parent):
        ticket, run_id = entry.name.split("-", 1)
        if int(ticket) >= mine:
            break
        try:
            wanted = entry.read_text().strip()
        except FileNotFoundError:
            continue
        if not is_live(run_dir.parent / run_id):
            with contextlib.suppress(FileNotFoundError):  # ended or died while waiting
                entry.unlink()
            continue
        if wanted in ("", device):
            ahead.append(run_id)
    return ahead


def _entries(runs_root: Path) -> list[Path]:
    """Queue entries, oldest ticket first (names start with a zero-padded ticket)."""
    folder = queue_dir(runs_root)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name[:1].isdigit() and "-" in p.name and p.is_file()
    )


def device_key(preference: str) -> str:
    """The queue a run waits in: the device ``preference`` resolves to here (``cpu``, ``cuda``)."""
    from tlcore.errors import TLCoreError
    from tlcore.training.memory_estimate import may_have_cuda

    if preference == "cpu" or (preference == "auto" and not may_have_cuda()):
        return "cpu"  # without importing torch (mps only counts on macOS: may_have_cuda)
    from tlcore.training.devices import device_name, resolve_device

    try:
        return device_name(resolve_device(preference))
    except TLCoreError:  # the worker reports the missing device as the run's failure
        return preference
