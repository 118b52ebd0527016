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
import getpass
import json
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.errors import DataError

ACTIONS = ("relabel", "exclude", "keep")  # keep: looked at, the label stays (not asked again)
VERSION_FILE = re.compile(r"v([1-9][0-9]{0,5})\.json")
ORIGINAL_FILE = "original.json"
MAX_NOTE_CHARS = 10_000  # tlcore writes one sentence; the app and the CLI take no longer note


@dataclass
class Override:
    """One decision about one photo: relabel it, leave it out, or keep it as given."""

    path: str
    action: str
    label: str = ""  # the new class name (relabel only)
    previous: str = ""  # the class it had in the original manifest
    who: str = ""
    when: str = ""  # ISO time, UTC
    why: str = ""  # e.g. "doctor: label issue, suggested shirt (0.82)"

    def text(self) -> str:
        """One line a person reads: what changed, by whom, when."""
        name = Path(self.path).name
        what = {
            "relabel": f"{name}: {self.previous} → {self.label}",
            "exclude": f"{name}: left out (was {self.previous})",
            "keep": f"{name}: kept as {self.previous}",
        }[self.action]
        return f"{what} · {self.who or 'someone'} · {self.when}" + (
            f" · {self.why}" if self.why else ""
        )


@dataclass
class DatasetVersion:
    """A numbered, immutable set of overrides on the original manifest."""

    number: int
    parent: int | None
    created: str
    author: str
    note: str = ""
    overrides: list[Override] = field(default_factory=list)
    manifest_path: str = ""  # the file a run trains on ("" for the original: its own manifest)
    fingerprint: str = ""  # of the resulting manifest
    base_fingerprint: str = ""  # of the original manifest

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def counts(self) -> dict[str, int]:
        """How many photos each action touched (relabel, exclude, keep)."""
        result = dict.fromkeys(ACTIONS, 0)
        for override in self.overrides:
            result[override.action] += 1
        return result

    def summary(self) -> str:
        """'v2: 3 relabelled, 1 left out (by ana, 2026-11-29T06:00:00+00:00)' or 'v0: original'."""
        if self.number == 0:
            return "v0: the original labels and split"
        c = self.counts()
        parts = [f"{c['relabel']} relabelled", f"{c['exclude']} left out"]
        if c["keep"]:
            parts.append(f"{c['keep']} kept as labelled")
        note = f" — {self.note}" if self.note else ""
        return (
            f"{self.name}: {', '.join(parts)} (by {self.author or 'someone'}, {self.created}){note}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], manifest_path: str = "") -> DatasetVersion:
        try:
            raw = data.get("overrides", [])
            if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
                raise DataError("A dataset version record is malformed (its overrides are not "
                                "a list of fixes).")  # fmt: skip
            overrides = [Override(**{k: str(v) for k, v in o.items() if k in _OVERRIDE_KEYS})
                         for o in raw]  # fmt: skip
            for override in overrides:
                if override.action not in ACTIONS:
                    raise DataError(f"A dataset version record has an unknown fix "
                                    f"{override.action[:40]!r} (the fixes are "
                                    f"{', '.join(ACTIONS)}).")  # fmt: skip
            if len(str(data.get("note", ""))) > MAX_NOTE_CHARS:
                raise DataError(f"A dataset version record has a note longer than "
                                f"{MAX_NOTE_CHARS:,} characters.")  # fmt: skip
            parent = data.get("parent")
            return cls(
                number=int(data["number"]),
                parent=None if parent is None else int(parent),
                created=str(data.get("created", "")),
                author=str(data.get("author", "")),
                note=str(data.get("note", "")),
                overrides=overrides,
                manifest_path=manifest_path or str(data.get("manifest_path", "")),
                fingerprint=str(data.get("fingerprint", "")),
                base_fingerprint=str(data.get("base_fingerprint", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"A dataset version record is malformed ({exc!r}).") from None


_OVERRIDE_KEYS = {f for f in Override.__dataclass_fields__}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_user() -> str:
    """Who is deciding, for the record: the login name on the command line."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def apply_overrides(base: Manifest, overrides: Sequence[Override]) -> Manifest:
    """The base manifest with relabels applied and exclusions dropped (a new object).

    A later override of the same photo wins. Raises DataError for a photo that
    is not in the base manifest or a class that does not exist.
    """
    label_of = {name: i for i, name in enumerate(base.classes)}
    known = {item.path for item in base.items}
    final: dict[str, Override] = {}
    for override in overrides:
        if override.action not in ACTIONS:
            raise DataError(f"Unknown fix {override.action!r}: use one of {', '.join(ACTIONS)}.")
        if override.path not in known:
            raise DataError(f"{Path(override.path).name} is not a photo of this dataset.")
        if override.action == "relabel" and override.label not in label_of:
            raise DataError(
                f"Cannot relabel {Path(override.path).name} as {override.label!r}: the classes "
                f"are {', '.join(base.classes)}."
            )
        final[override.path] = override
    items = []
    for item in base.items:
        override = final.get(item.path)
        if override is None or override.action == "keep":
            items.append(replace(item))
        elif override.action == "relabel":
            items.append(replace(item, label=label_of[override.label]))
    return replace(base, items=items)


def merge_overrides(old: Iterable[Override], new: Iterable[Override]) -> list[Override]:
    """One override per photo, the newest decision winning, in first-decided order."""
    merged: dict[str, Override] = {}
    for override in [*old, *new]:
        merged.pop(override.path, None)
        merged[override.path] = override
    return [o for o in merged.values() if not _is_noop(o)]


def _is_noop(override: Override) -> bool:
    return override.action == "relabel" and override.label == override.previous


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
    from tlcore.data.version_checks import read_version_file

    return read_version_file(path)


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
