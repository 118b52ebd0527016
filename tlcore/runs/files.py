"""The run directory's file formats: JSON written atomically, events appended as lines.

Kept apart from ``runs`` (which knows the layout) because every writer and reader
of a run folder, the worker, exports and experiments, needs the same two rules:
a JSON file is replaced whole, and a JSON-lines log is only ever appended to.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Readers see the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, a folder, no permission, bad JSON or UTF-8
        return None
    return value if isinstance(value, dict) else None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-lines file; the line a writer is still appending is skipped."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    events = []
    for line in text.split("\n")[:-1]:  # the part after the last newline is incomplete
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def append_event(path: Path, event: dict[str, Any]) -> None:
    """One line per event, flushed at once so live readers see it."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(event, default=str) + "\n")
        f.flush()


def keep_history_until(path: Path, epoch: int, step: int) -> None:
    """On resume, drop events newer than the checkpoint so the file holds one history."""
    kept = [
        e
        for e in read_events(path)
        if not (e.get("type") == "epoch" and e.get("epoch", 0) > epoch)
        and not (e.get("type") == "step" and e.get("step", 0) > step)
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(e, default=str) + "\n" for e in kept))
    os.replace(tmp, path)
