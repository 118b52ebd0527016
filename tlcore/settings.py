"""Where things live on disk, each overridable by an environment variable."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def runs_dir() -> Path:
    """Training runs, one directory each (``TLCORE_RUNS_DIR``, default ``./runs``)."""
    return _env_path("TLCORE_RUNS_DIR", Path.cwd() / "runs")


def uploads_dir() -> Path:
    """Extracted uploads and their manifests (``TLCORE_UPLOADS_DIR``, default ``./uploads``)."""
    return _env_path("TLCORE_UPLOADS_DIR", Path.cwd() / "uploads")


def data_root() -> Path | None:
    """The only server folder the app may read datasets from (``TLCORE_DATA_ROOT``), if any."""
    value = os.environ.get("TLCORE_DATA_ROOT")
    return Path(value).expanduser().resolve() if value else None


def sample_data_dir() -> Path:
    """The bundled ants/bees photos (``TLCORE_SAMPLE_DIR`` to point elsewhere)."""
    return _env_path("TLCORE_SAMPLE_DIR", PROJECT_ROOT / "assets" / "ants-bees")


def cache_dir() -> Path:
    """Models unpacked from installed packages, e.g. the bundled sentence encoder
    (``TLCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tlcore``, else ``~/.cache/tlcore``)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return _env_path("TLCORE_CACHE_DIR", (base / "tlcore").resolve())


def sample_datasets() -> dict[str, Path]:
    """Every bundled sample by name: ants/bees (two classes) and clothing4 (four look-alikes).

    Each is also the "none of these" photos for a model trained on the other.
    """
    return {
        "ants-bees": sample_data_dir(),
        "clothing4": PROJECT_ROOT / "assets" / "clothing4",
    }


def text_sample_path() -> Path:
    """The bundled text sample: 1,000 labelled review sentences (``text,label`` CSV, CC BY 4.0)."""
    return PROJECT_ROOT / "assets" / "reviews-amazon" / "reviews.csv"


# -- a shared server (see docs/deployment.md) ------------------------------------------------
LIMIT_VARIABLES = {
    "epochs": "TLCORE_MAX_EPOCHS",
    "img_size": "TLCORE_MAX_IMG_SIZE",
    "dataset_images": "TLCORE_MAX_DATASET_IMAGES",
    "queued_per_user": "TLCORE_MAX_QUEUED_PER_USER",
}


def env_int(name: str) -> int | None:
    """A positive whole number from the environment; None when unset, empty or not one."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def max_concurrent_runs() -> int:
    """Runs that train at once on one device (``TLCORE_MAX_CONCURRENT_RUNS``, default 1)."""
    return env_int("TLCORE_MAX_CONCURRENT_RUNS") or 1


def admin_token() -> str:
    """``TLCORE_ADMIN_TOKEN``: who knows it sees every user's runs (``?admin=<token>``)."""
    return os.environ.get("TLCORE_ADMIN_TOKEN", "").strip()


def multi_user() -> bool:
    """Each browser session gets its own runs (``TLCORE_MULTI_USER=1``, or an admin token set)."""
    flag = os.environ.get("TLCORE_MULTI_USER", "").strip().lower() in ("1", "true", "yes", "on")
    return flag or bool(admin_token())


def start_with_sample() -> bool:
    """``TLCORE_START_WITH_SAMPLE=1`` (set by ``make run``): a first visit finds the bundled
    sample already chosen, so the whole tour works without a single click on Data."""
    flag = os.environ.get("TLCORE_START_WITH_SAMPLE", "").strip().lower()
    return flag in ("1", "true", "yes", "on")


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or with None, unset) environment variables for a block, then put them back.

    Settings are read from the environment on every call, so this is how a benchmark or
    a session-wide test fixture points runs and uploads at a scratch folder for a while.
    """
    old = {key: os.environ.get(key) for key in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(old)


def _set_environment(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
