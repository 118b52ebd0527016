"""A person's fixes to a dataset, as data: relabel this photo, leave that one out, keep it.

The model of a dataset version (``tlcore.data.versions`` keeps them in files): one
``Override`` per decided photo with who, when and why, a numbered ``DatasetVersion``
holding them, and ``apply_overrides`` to make the manifest a version trains on. It
imports no manifest code, so the manifest can check a version file it reads
(``tlcore.data.version_checks``) without an import circle.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlcore.errors import DataError

# manifests here are tlcore.data.manifest.Manifest, which imports this wing's version checks:
# named in words, not imported, so there is no import circle (not even for type hints).

ACTIONS = ("relabel", "exclude", "keep")  # keep: looked at, the label stays (not asked again)
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


def apply_overrides(base: Any, overrides: Sequence[Override]) -> Any:
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
