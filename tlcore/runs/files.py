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


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that fails only with ValueError, in words: a file nested thousands of
    levels deep (RecursionError in the parser) or bytes that are not UTF-8 are damaged
    files like any other, never a traceback."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("its JSON is nested too deeply to be a file tlcore wrote") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise ValueError(f"it is not valid JSON ({exc})") from None


def load_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; OSError when it cannot be read, ValueError (in words)
    when it is damaged or not an object."""
    value = parse_json(path.read_bytes())
    if not isinstance(value, dict):
        raise ValueError(f"it holds a JSON {type(value).__name__}, not an object")
    return value


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable or not an object."""
    try:
        return load_json_object(path)
    except (OSError, ValueError):  # missing, a folder, no permission, bad JSON, UTF-8 or depth
        return None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-lines file; the line a writer is still appending is
    skipped, and so is a damaged line (bad bytes, bad JSON, nested too deep, not an object)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return []
    events = []
    for line in text.split("\n")[:-1]:  # the part after the last newline is incomplete
        try:
            event = parse_json(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
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
