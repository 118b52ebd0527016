"""Dataset versions: a manifest plus the fixes a person decided on, never the photos.

Fixing a wrong label must not move, rename or delete a photo (the folder is the
user's, and a fix may be wrong), and every fix must be undoable. So a *version*
is the original manifest plus a list of overrides (relabel this photo, leave
that one out, or keep it as it is) with who decided, when and why. Each version
is one file that is also a complete manifest, so a run trains on it like on any
manifest and the fixes travel with it. Version 0 is the original split.

Layout: ``uploads_dir()/versions/<first 16 hex of the original's fingerprint>/``
holds ``v1.json``, ``v2.json``, ...: each a manifest with an extra
``dataset_version`` object (number, parent, author, created, note, overrides).
A version file is written once and never changed: a new decision makes a new
version, which keeps every earlier one trainable and comparable.

A version file is checked against its original every time it is read
(``tlcore.data.version_checks``, from ``Manifest.load`` and ``read_version``).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.data.overrides import (  # the model of a version; named here as before
    ACTIONS,
    DatasetVersion,
    Override,
    apply_overrides,
    current_user,
    merge_overrides,
    now_iso,
)
from tlcore.data.version_checks import ORIGINAL_FILE, VERSION_FILE, read_version_file
from tlcore.errors import DataError

__all__ = ["ACTIONS", "DatasetVersion", "Override", "VersionStore", "apply_overrides",
           "merge_overrides", "read_version", "version_record"]  # fmt: skip


class VersionStore:
    """Every version of one original manifest (same folder, split fraction and seed)."""

    def __init__(self, base: Manifest, base_path: str | Path | None = None) -> None:
        self.base = base
        self.base_path = str(base_path) if base_path else ""
        self.base_fingerprint = base.fingerprint()
        self.dir = settings.uploads_dir() / "versions" / self.base_fingerprint[:16]

    @classmethod
    def of(cls, manifest: Manifest, manifest_path: str | Path | None = None) -> VersionStore:
        """The store a manifest belongs to: its own, or its original's when it is a version."""
        found = read_version(manifest_path) if manifest_path else None
        if found is not None:
            base_path = Path(manifest_path).parent / ORIGINAL_FILE
            if base_path.is_file():
                return cls(Manifest.load(base_path), base_path)
        return cls(manifest, manifest_path)

    def versions(self) -> list[DatasetVersion]:
        """v0 (the original) then every saved version, oldest first (refused ones left out)."""
        return self._scan()[0]

    def refused(self) -> dict[int, str]:
        """Version files that fail their checks (edited by hand, damaged): number -> why."""
        return self._scan()[1]

    def _scan(self) -> tuple[list[DatasetVersion], dict[int, str]]:
        original = DatasetVersion(0, None, "", "", overrides=[], manifest_path=self.base_path,
                                  fingerprint=self.base_fingerprint,
                                  base_fingerprint=self.base_fingerprint)  # fmt: skip
        found, refused = [original], {}
        if self.dir.is_dir():
            numbered = []
            for path in self.dir.iterdir():
                match = VERSION_FILE.fullmatch(path.name)
                if match:
                    numbered.append((int(match.group(1)), path))
            for number, path in sorted(numbered):
                try:
                    version = read_version(path)
                except DataError as exc:
                    refused[number] = str(exc)
                    continue
                if version is not None and version.base_fingerprint == self.base_fingerprint:
                    found.append(version)
        return found, refused

    def get(self, number: int) -> DatasetVersion:
        found, refused = self._scan()
        for version in found:
            if version.number == int(number):
                return version
        if int(number) in refused:
            raise DataError(refused[int(number)])
        raise DataError(f"There is no version v{number} of this dataset (see its versions list).")

    def holding(self, decisions: Sequence[Override]) -> DatasetVersion | None:
        """The newest version that already makes every one of ``decisions`` (same photo, same
        fix): saving them again would only stack an identical version."""
        wanted = {(d.path, d.action, d.label) for d in decisions}
        for version in reversed(self.versions()[1:]):
            if wanted <= {(o.path, o.action, o.label) for o in version.overrides}:
                return version
        return None

    def latest(self) -> DatasetVersion:
        return self.versions()[-1]

    def manifest(self, number: int) -> Manifest:
        """The manifest of one version (the original's for 0)."""
        return apply_overrides(self.base, self.get(number).overrides)

    def create(
        self,
        decisions: Sequence[Override],
        *,
        author: str = "",
        note: str = "",
        parent: int | None = None,
    ) -> DatasetVersion:
        """A new version: ``parent``'s overrides (default: the latest) plus ``decisions``.

        The photo files are not touched. Raises DataError when a decision names an
        unknown photo or class, when nothing would change, or when the training
        split would be left empty.
        """
        if not decisions:
            raise DataError("No decision was given, so there is nothing to save as a new version.")
        parent_version = self.latest() if parent is None else self.get(parent)
        who, when = author or current_user(), now_iso()
        stamped = []
        original_label = {item.path: self.base.classes[item.label] for item in self.base.items}
        for d in decisions:
            previous = original_label.get(d.path, d.previous)
            stamped.append(replace(d, previous=previous, who=d.who or who, when=d.when or when))
        overrides = merge_overrides(parent_version.overrides, stamped)
        manifest = apply_overrides(self.base, overrides)
        if not manifest.items_for("train"):
            raise DataError("These fixes leave no photo to train on: keep at least one.")
        self._save_original()
        self.dir.mkdir(parents=True, exist_ok=True)
        numbers = [v.number for v in self.versions()]
        for number in range(max(numbers) + 1, max(numbers) + 100):
            path = self.dir / f"v{number}.json"
            version = DatasetVersion(
                number, parent_version.number, when, who, note, overrides, str(path),
                manifest.fingerprint(), self.base_fingerprint,
            )  # fmt: skip
            payload = manifest.to_dict() | {"dataset_version": version.to_dict()}
            if _write_new(path, payload):
                return version
        raise DataError(f"Could not save a new version in {self.dir}: too many writers at once.")

    def _save_original(self) -> None:
        """Keep the original next to its versions, so a version file alone leads back to it."""
        path = self.dir / ORIGINAL_FILE
        if not path.is_file():
            self.base.save(path)


def _write_new(path: Path, payload: dict[str, Any]) -> bool:
    """Write ``path`` only if it does not exist yet (atomic); False when another writer won."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        os.link(tmp, path)  # fails if the number was taken meanwhile
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise DataError(
            f"Cannot save the dataset version to {path}: {exc.strerror or exc}."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_version(path: str | Path | None) -> DatasetVersion | None:
    """The version record inside a manifest file, or None for a plain manifest (or none).

    Raises DataError in one line for a version file that fails its checks
    (``tlcore.data.version_checks``): too large, nested too deeply, malformed or tampered.
    """
    return read_version_file(path, Manifest)


def version_record(manifest_path: str | Path | None) -> dict[str, Any]:
    """What a run records about the data version it trains on (v0 for a plain manifest)."""
    version = read_version(manifest_path)
    if version is None:
        return {"number": 0, "name": "v0", "summary": "the original labels and split"}
    counts = version.counts()
    return {
        "number": version.number,
        "name": version.name,
        "summary": version.summary(),
        "relabelled": counts["relabel"],
        "excluded": counts["exclude"],
        "author": version.author,
        "created": version.created,
        "manifest_path": str(manifest_path),
    }
