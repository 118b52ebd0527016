"""The user's choices, kept across pages, reruns, browser refreshes and new tabs.

Streamlit forgets ``st.session_state`` when the tab is closed or refreshed, so every
choice is also written to a small JSON file next to the runs (runs live on disk
anyway) and the active run id is mirrored in the URL (``?run=...``). A new session
starts from that file; the URL wins for the run, so a bookmarked link opens its run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from tlcore import settings
from tlcore.runs import limits

STATE_FILE_NAME = "app-state.json"
_SESSION_KEY = "tl_selections"
_GENERATIONS_KEY = "tl_widget_generations"
_OWNER_KEY, _ADMIN_KEY = "tl_owner", "tl_admin"
_OWNER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")

DEFAULT_MODEL = "tf_efficientnet_lite0"
SAMPLE_LABEL = "Sample: ants vs bees"
SAMPLE_LABELS = {"ants-bees": SAMPLE_LABEL, "clothing4": "Sample: clothing (4 look-alike labels)"}

DEFAULTS: dict[str, Any] = {
    # data: {"kind": "sample"|"zip"|"images"|"folder", "source": str, "label": str} or None;
    # data of another shape (boxes, label columns) also has "task": its Task.key
    # (appkit.data_choice.choose_task_data)
    "data": None,
    "val_fraction": 0.2,
    "seed": 0,
    "model": DEFAULT_MODEL,
    "weights": "bundled",
    "freeze": {"preset": "features"},
    "train": {},
    "run_id": None,
    "data_version": None,  # {"base": fingerprint, "number": N}: a Doctor page version to train on
    "recent_data": [],  # earlier "data" choices, newest first (appkit.data_choice.remember)
}


def state_file() -> Path:
    """Where the choices survive a refresh: beside the runs they belong to (one file per user)."""
    owner = owner_id()
    return settings.runs_dir() / (f"app-state-{owner}.json" if owner else STATE_FILE_NAME)


def owner_id() -> str:
    """This browser's namespace on a shared server; "" on a one-person install.

    With ``TLCORE_MULTI_USER`` (or an admin token) set, each browser session gets a
    random id, kept in the URL (``?user=``, like ``?run=``) so a refresh or a
    bookmark keeps the same runs without cookies. Runs and choices are filed under it.
    """
    if not settings.multi_user():
        return ""
    owner = st.session_state.get(_OWNER_KEY)
    if not owner:
        in_url = str(st.query_params.get("user", ""))
        owner = in_url if _OWNER_ID.fullmatch(in_url) else secrets.token_urlsafe(9)
        st.session_state[_OWNER_KEY] = owner
    if st.query_params.get("user") != owner:
        st.query_params["user"] = owner
    return owner


def is_admin() -> bool:
    """The URL carried ``?admin=<TLCORE_ADMIN_TOKEN>`` once in this session. It is put back
    in the URL (like ``?user=``) after a menu click drops it, so a refresh keeps the view."""
    given = st.query_params.get("admin")
    if not st.session_state.get(_ADMIN_KEY) and limits.is_admin(given):
        st.session_state[_ADMIN_KEY] = str(given)
    token = st.session_state.get(_ADMIN_KEY)
    if token and given != token and isinstance(token, str):
        st.query_params["admin"] = token
    return bool(token)


def runs_owner() -> str | None:
    """Whose runs this session lists: its own on a shared server, everyone's for the admin."""
    return None if not settings.multi_user() or is_admin() else owner_id()


def _read_file() -> dict[str, Any]:
    try:
        loaded = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_file(values: dict[str, Any]) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".app-state-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
    os.replace(tmp, path)


def sample_choice() -> dict[str, str]:
    return {"kind": "sample", "source": str(settings.sample_data_dir()), "label": SAMPLE_LABEL}


def selections() -> dict[str, Any]:
    """This session's choices; the first call of a session reads them back from disk."""
    owner_id()  # keeps ?user= in the URL on every page of a shared server
    if _SESSION_KEY not in st.session_state:
        stored = _read_file()
        values = {**DEFAULTS, **{k: v for k, v in stored.items() if k in DEFAULTS}}
        if not stored and settings.start_with_sample():  # `make run`: the tour starts ready
            values["data"] = sample_choice()
        run_in_url = st.query_params.get("run")
        if run_in_url:
            values["run_id"] = run_in_url
        st.session_state[_SESSION_KEY] = values
    values = st.session_state[_SESSION_KEY]
    if values.get("run_id") and st.query_params.get("run") != values["run_id"]:
        st.query_params["run"] = values["run_id"]
    return values


def get(name: str) -> Any:
    return selections()[name]


def update(**changes: Any) -> None:
    """Record choices in the session and on disk, so a refresh loses nothing."""
    values = selections()
    values.update(changes)
    if "run_id" in changes:
        if changes["run_id"]:
            st.query_params["run"] = changes["run_id"]
        else:
            st.query_params.pop("run", None)
    _write_file(values)


def widget_key(name: str) -> str:
    """The key for a widget showing a stored choice; pages pass the choice as ``value=``.

    The stored choice is the widget's own default (never seeded through session
    state: a browser that re-mounts a widget would fall back to the widget's
    minimum). When the app itself changes a choice, ``refresh_widgets`` gives the
    widget a new key so the browser shows the new value instead of its old one.
    """
    generation = st.session_state.get(_GENERATIONS_KEY, {}).get(name, 0)
    return f"w_{name}_{generation}"


def refresh_widgets(*names: str) -> None:
    generations = st.session_state.setdefault(_GENERATIONS_KEY, {})
    for name in names:
        generations[name] = generations.get(name, 0) + 1
