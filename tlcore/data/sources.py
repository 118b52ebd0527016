"""Where a dataset may come from when people hand it over through the web app.

Uploads arrive as bytes with names chosen by someone else's computer, and a server
folder is named by typing a path: both are turned into folders under the app's
own directories (or under ``TLCORE_DATA_ROOT``) here, so no name or path from the
browser can write or read anywhere else.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

from tlcore import settings
from tlcore.data.images import IMAGE_EXTENSIONS
from tlcore.errors import DataError

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str, what: str = "name") -> str:
    """A file or folder name reduced to harmless characters (no separators, no dots first)."""
    base = Path(str(name).replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    if not cleaned:
        raise DataError(f"The {what} {name!r} has no usable characters; use letters or digits.")
    return cleaned[:120]


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def save_upload(name: str, data: bytes, kind: str) -> Path:
    """Keep one uploaded file (a zip, a checkpoint) under ``uploads_dir()/kind/``."""
    path = settings.uploads_dir() / safe_name(kind) / uuid.uuid4().hex[:8] / safe_name(name)
    _write_atomically(path, data)
    return path


def new_image_set() -> Path:
    """A fresh folder that images uploaded class by class are collected into."""
    path = settings.uploads_dir() / "image-sets" / uuid.uuid4().hex[:10]
    path.mkdir(parents=True, exist_ok=True)
    return path


def add_class_images(
    image_set: Path, class_name: str, files: Iterable[tuple[str, bytes]]
) -> tuple[list[Path], list[str]]:
    """Save a batch of images as one class; returns (saved paths, skipped file names).

    Files whose extension is not an image are skipped (and named) rather than
    saved, so one stray PDF does not spoil the batch. Whether each image can
    actually be read is the validation report's job.
    """
    image_set = Path(image_set)
    if not str(class_name).strip():
        raise DataError("Type a class name for this batch of images (for example 'cats').")
    folder = image_set / safe_name(class_name.strip(), "class name")
    saved, skipped = [], []
    for name, data in files:
        if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(name)
            continue
        target = folder / safe_name(name, "file name")
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists():
            n += 1
            target = folder / f"{stem}-{n}{suffix}"
        _write_atomically(target, data)
        saved.append(target)
    return saved, skipped


def image_set_classes(image_set: Path) -> dict[str, int]:
    """Classes collected so far in an image set and how many files each has."""
    image_set = Path(image_set)
    if not image_set.is_dir():
        return {}
    return {
        d.name: sum(1 for f in d.iterdir() if f.is_file())
        for d in sorted(image_set.iterdir())
        if d.is_dir()
    }


def folders_under_data_root() -> list[str]:
    """Sub-folders of ``TLCORE_DATA_ROOT`` (two levels deep), relative, for a picker."""
    root = settings.data_root()
    if root is None or not root.is_dir():
        return []

    def inside(folder: Path) -> list[Path]:  # links leading out of the root are not offered
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.resolve().is_relative_to(root)
        )

    found = []
    for first in inside(root):
        found.append(first.relative_to(root).as_posix())
        found.extend(second.relative_to(root).as_posix() for second in inside(first))
    return found


def folder_under_data_root(relative: str) -> Path:
    """Resolve a folder the user typed, refusing anything outside ``TLCORE_DATA_ROOT``."""
    root = settings.data_root()
    if root is None:
        raise DataError(
            "Reading folders on the server is turned off. Upload a zip instead, "
            "or ask whoever runs the app to set TLCORE_DATA_ROOT."
        )
    candidate = (root / str(relative).strip()).resolve()
    if not candidate.is_relative_to(root):
        raise DataError(f"The folder {relative!r} is outside the allowed data folder {root}.")
    if not candidate.is_dir():
        raise DataError(f"There is no folder {relative!r} under {root}.")
    return candidate
