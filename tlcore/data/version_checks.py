"""A dataset version file checked against its original, every time it is read.

A version file is a complete manifest (``tlcore.data.versions``), so whoever can edit
it could make a run train on ``/etc/hostname``, relabel to a class that does not exist,
or record "11 relabelled" for fixes that are not in its items. ``Manifest.load`` and
``read_version`` therefore check each one against the original beside it before
anything uses it, and refuse it in one line: a run, the app and the worker never open
what a tampered version names. A file far larger than its original could make is
refused by its size before it is read, and JSON nested too deeply is a sentence, not
a RecursionError.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from tlcore.data.overrides import DatasetVersion, apply_overrides
from tlcore.data.scan import printable
from tlcore.errors import DataError

# manifests here are tlcore.data.manifest.Manifest, which imports this module: named in
# words, not imported, so there is no import circle (not even for type hints).

VERSION_FILE = re.compile(r"v([1-9][0-9]{0,5})\.json")  # v1.json, v2.json, ... of one original
ORIGINAL_FILE = "original.json"  # the original manifest, kept beside its versions

# A version holds its original's items (fewer when some are left out) plus one override per
# changed photo (~3x an item's bytes): four times the original, plus room for notes, is a bound
# no version tlcore writes can pass.
_SIZE_FACTOR, _SIZE_SLACK = 4, 1024**2


def read_version_file(path: str | Path | None, manifest_type: type) -> DatasetVersion | None:
    """The version record inside a manifest file, or None for a plain manifest (or none).

    Raises DataError in one line for a version file that fails its checks
    (``check_version_data``): too large, nested too deeply, malformed or tampered with.
    """
    if not path:
        return None
    path = Path(path)
    check_version_size(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except RecursionError:
        raise _refused(path, "its JSON is nested too deeply to be a file tlcore wrote") from None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "dataset_version" not in data:
        return None
    return check_version_data(path, raw, data, manifest_type)


def _refused(path: Path, why: str) -> DataError:
    match = VERSION_FILE.fullmatch(path.name)
    name = f"v{match.group(1)}" if match else path.name
    return DataError(f"The dataset version {name} ({path}) was refused: {why.rstrip('.')}.")


def check_version_size(path: Path) -> None:
    """DataError when a file beside its original (a version file) is far larger than any
    version of that original can be: checked from the sizes, before a byte is read."""
    original = path.parent / ORIGINAL_FILE
    if path.name == ORIGINAL_FILE:
        return
    try:
        size, base = path.stat().st_size, original.stat().st_size
    except OSError:
        return  # no original beside it: its content says whether it is a version
    bound = _SIZE_FACTOR * base + _SIZE_SLACK
    if size > bound:
        raise _refused(path, f"it is too large ({size / 1e6:,.1f} MB) for a version of its "
                       f"original ({base / 1e6:,.1f} MB; at most {bound / 1e6:,.1f} MB), so it "
                       "was not read")  # fmt: skip


# verdicts by the bytes of a version and the file times of its original: a page asks for the
# versions list several times a render, and checking one reads and fingerprints both files
# (1 s at 50,000 photos; hashing the bytes read takes 5 ms)
_verdicts: dict[tuple, DatasetVersion | str] = {}


def check_version_data(
    path: str | Path, raw: bytes, data: dict[str, Any], manifest_type: type
) -> DatasetVersion:
    """The version record of ``data`` (parsed from ``raw``, the bytes read from ``path``),
    checked against its original.

    The original (``original.json`` beside it) must be the one the version was made
    from; every item must be a photo of that dataset, inside its folder; every fix must
    name one of its photos, a known action and an existing class; and applying the fixes
    to the original must give exactly the items and labels the file holds. DataError in
    one line otherwise: a run, the app and the worker never open what it names.
    """
    path = Path(path)
    original = path.parent / ORIGINAL_FILE
    try:  # the original's times before it is read: an edit after them is a new key
        key = (str(path), hashlib.sha256(raw).hexdigest(), *_stamp(original))
    except OSError:
        key = None
    verdict = _verdicts.get(key) if key else None
    if verdict is None:
        try:
            verdict = _check(path, data, original, manifest_type)
        except DataError as exc:
            verdict = str(exc)
        if key:
            if len(_verdicts) > 256:
                _verdicts.clear()
            _verdicts[key] = verdict
    if isinstance(verdict, str):
        raise DataError(verdict)
    return replace(verdict, manifest_path=str(path))


def _stamp(path: Path) -> tuple[int, ...]:
    info = path.stat()  # ctime too: it changes with any edit and cannot be set back
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino


def _check(path: Path, data: dict[str, Any], original: Path, manifest_type: type) -> DatasetVersion:
    record = data.get("dataset_version")
    if not isinstance(record, dict):
        raise _refused(path, "its version record is not an object")
    if path.name == ORIGINAL_FILE:  # it would be checked against itself, forever
        raise _refused(path, "it is the original of other versions, yet holds a version record")
    try:
        version = DatasetVersion.from_dict(record, manifest_path=str(path))
        manifest = manifest_type.from_dict(data)
    except DataError as exc:
        raise _refused(path, str(exc)) from None
    if not original.is_file():
        raise _refused(path, f"its original ({ORIGINAL_FILE} beside it) is missing, so it "
                       "cannot be checked")  # fmt: skip
    try:
        base = manifest_type.load(original)
    except DataError as exc:
        raise _refused(path, f"its original cannot be read: {exc}") from None
    if base.fingerprint() != version.base_fingerprint:
        raise _refused(path, f"it was not made from the original beside it ({ORIGINAL_FILE})")
    root = os.path.normpath(base.root)
    known = set()
    for item in base.items:
        if not _inside(root, item.path):
            raise _refused(path, f"its original names {printable(item.path[:200])}, outside "
                           f"its dataset folder {printable(base.root[:200])}")  # fmt: skip
        known.add(item.path)
    named = [(item.path, "it names") for item in manifest.items]
    named += [(o.path, f"its '{o.action}' fix names") for o in version.overrides]
    for photo, what in named:
        if photo not in known:
            raise _refused(path, f"{what} {printable(photo[:200])}, which is not a photo of "
                           "this dataset")  # fmt: skip
    try:
        expected = apply_overrides(base, version.overrides)
    except DataError as exc:
        raise _refused(path, str(exc)) from None
    if expected.fingerprint() != manifest.fingerprint():
        raise _refused(path, "its photos and labels do not match its fixes (the file was "
                       "changed after tlcore wrote it)")  # fmt: skip
    return version


def _inside(root: str, path: str) -> bool:
    """``path`` inside the dataset folder ``root``, by its words (no link followed): a photo
    under it, or for a CSV of texts (the root is the file) one of its lines ``file.csv:12``."""
    path = os.path.normpath(path)
    return path.startswith((root.rstrip(os.sep) + os.sep, root + ":")) or path == root
