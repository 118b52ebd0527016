"""A trained fixture built once per test session, whichever pytest-xdist worker asks first.

``make test`` runs two workers; a fixture cached per process was trained twice, once in
each (a worker process of 6-9 CPU seconds for the smallest run). The first worker to ask
builds it under the session's shared temporary folder while holding a lock; the other
waits on the lock and reads the folder's name back. Tests must not damage what they
share (those that do copy it first, as they did when it was shared within one process).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path


def session_root(base: Path) -> Path:
    """The folder both workers of one session see: a worker's base temp is
    ``<session>/popen-gwN``; without xdist the base temp is the session's."""
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(name: str, base: Path, build: Callable[[Path], Path]) -> Path:
    """``build(root)`` once per session (its answer, a path, is kept in ``<name>.path``)."""
    root = session_root(base)
    root.mkdir(parents=True, exist_ok=True)
    record = root / f"{name}.path"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if record.is_file():
            return Path(record.read_text())
        built = build(root)
        record.write_text(str(built))
        return built
