"""Where things live on disk, each overridable by an environment variable."""

from __future__ import annotations

import os
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
