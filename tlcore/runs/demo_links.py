""" "Share as demo": an unguessable token that opens one finished run's Predict page only.

The token (``secrets.token_urlsafe``, 192 bits) is the whole permission: the link
``?demo=<token>`` names no run id, so a visitor can neither guess another demo nor reach
another run from it. Each link is a small file ``runs_dir()/.demo-links/<token>.json``;
withdrawing the link deletes it.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from tlcore import settings
from tlcore.errors import RunError
from tlcore.runs.files import now_iso, read_json, write_json_atomic
from tlcore.runs.run import Run

LINKS_FOLDER = ".demo-links"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
_INVALID = "This demo link is not valid (or was withdrawn): ask whoever shared it for a new one."


def _folder() -> Path:
    return settings.runs_dir() / LINKS_FOLDER


def share_run(run: Run) -> str:
    """The demo token of a finished run (the same one each time it is shared)."""
    if run.status().get("state") != "finished":
        raise RunError(f"run {run.id} has not finished: share it as a demo once it has.")
    existing = token_of(run)
    if existing:
        return existing
    token = secrets.token_urlsafe(24)
    _folder().mkdir(parents=True, exist_ok=True)
    write_json_atomic(_folder() / f"{token}.json", {"run": run.id, "created": now_iso()})
    return token


def token_of(run: Run) -> str | None:
    """The run's demo token, if it has been shared."""
    folder = _folder()
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json")):
        if (read_json(path) or {}).get("run") == run.id and _TOKEN.fullmatch(path.stem):
            return path.stem
    return None


def run_for_token(token: object) -> Run:
    """The run a demo token opens; RunError in words for a token that opens nothing."""
    text = str(token or "")
    if not _TOKEN.fullmatch(text):
        raise RunError(_INVALID)
    record = read_json(_folder() / f"{text}.json") or {}
    try:
        return Run.from_id(str(record.get("run", "")))
    except RunError:
        raise RunError(_INVALID) from None


def withdraw(token: str) -> None:
    """The link stops working at once."""
    if _TOKEN.fullmatch(str(token)):
        (_folder() / f"{token}.json").unlink(missing_ok=True)
