"""The run this browser follows: its id from the URL or the saved choices, checked once."""

from __future__ import annotations

from appkit import state
from tlcore.errors import RunError
from tlcore.runs.run import Run


def followed() -> Run | None:
    """The run this browser is following (from the URL or the state file), if it exists and,
    on a shared server, belongs to this browser's user; a stale id is forgotten quietly."""
    run_id = state.get("run_id")
    if not run_id:
        return None
    try:
        run = Run.from_id(run_id)  # the id may come from the URL: never a path
        owner = state.runs_owner()
        if owner is not None and run.record.get("owner", "") != owner:
            raise RunError(f"run {run_id} belongs to another user.")
        return run
    except RunError:
        state.update(run_id=None)
        return None
