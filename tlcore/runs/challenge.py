"""A teacher's challenge: one dataset, a hidden test part, limits, a deadline, a board.

A class learns most when everyone trains on the same photos and is judged on the same
photos nobody saw. Creating a challenge (``tlcore.runs.challenge_create``) splits the
teacher's dataset once into the part students train on and a test part kept where no
page, download or data choice reaches it. Everything is plain files, so a restarted
server loses nothing:

``challenges_dir()/<id>/``

- ``challenge.json``   title, description, task, classes, counts, limits, deadline, closed
- ``data/``            what students train on: a folder per class (photos) or ``train.csv``
- ``hidden/``          the test part: ``test.json`` (a manifest) and ``test/`` (its photos),
  ``keys.json`` (content hashes of the test items: a run trained on them is refused)
- ``students/<owner>.json``   each student's display name
- ``submissions/<id>.json``   every submission, kept (``tlcore.runs.challenge_entry``),
  scored by ``tlcore.runs.challenge_scoring`` in its own process
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.data.scan import printable
from tlcore.data.task import Task
from tlcore.errors import ConfigError, RunError
from tlcore.runs.challenge_tasks import challenge_task
from tlcore.runs.files import now_iso, read_json, write_json_atomic

CHALLENGES_FOLDER = ".challenges"  # beside the runs: a dot folder is never listed as a run
MAX_TITLE, MAX_DESCRIPTION, MAX_NAME = 120, 2000, 40
_CHALLENGE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_OWNER = re.compile(r"[A-Za-z0-9_-]{1,64}")
LOCAL_OWNER = "local"  # the one user of an install that is not shared


def challenges_dir() -> Path:
    """Where challenges live: ``TLCORE_RUNS_DIR/.challenges``."""
    return settings.runs_dir() / CHALLENGES_FOLDER


@dataclass(frozen=True)
class ChallengeLimits:
    """What a submitted run may use; None or empty = no limit."""

    models: tuple[str, ...] = ()
    epochs: int | None = None
    img_size: int | None = None
    minutes: float | None = None  # training time of the run

    def __post_init__(self) -> None:
        for name in ("epochs", "img_size", "minutes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ConfigError(f"the challenge's {name} limit must be a positive number.")

    def words(self) -> list[str]:
        """Each limit as a sentence a student reads before training."""
        said = []
        if self.models:
            said.append("models: " + ", ".join(self.models))
        if self.epochs:
            said.append(f"at most {self.epochs} epochs")
        if self.img_size:
            said.append(f"image size at most {self.img_size} px")
        if self.minutes:
            said.append(f"at most {self.minutes:g} minutes of training")
        return said

    def problems(self, config: dict[str, Any], minutes: float | None) -> list[str]:
        """What a run's settings (its config.json ``config``) break, in words."""
        found = []
        if self.models and config.get("model") not in self.models:
            found.append(f"model {config.get('model')} is not one of {', '.join(self.models)}")
        if self.epochs and int(config.get("epochs") or 0) > self.epochs:
            found.append(f"{config.get('epochs')} epochs is above the limit of {self.epochs}")
        size = config.get("img_size")
        if self.img_size and (size is None or int(size) > self.img_size):
            shown = f"{size} px" if size else "the model's default size"
            found.append(f"image size {shown} is above the limit of {self.img_size} px")
        if self.minutes and minutes is not None and minutes > self.minutes:
            found.append(f"{minutes:.1f} minutes of training is above the limit of "
                         f"{self.minutes:g}")  # fmt: skip
        return found

    @classmethod
    def from_dict(cls, data: Any) -> ChallengeLimits:
        data = data if isinstance(data, dict) else {}
        return cls(models=tuple(str(m) for m in data.get("models") or ()),
                   epochs=data.get("epochs"), img_size=data.get("img_size"),
                   minutes=data.get("minutes"))  # fmt: skip


@dataclass
class Challenge:
    """A handle on one challenge folder; every read goes to disk."""

    dir: Path
    id: str
    title: str
    description: str
    task: Task
    classes: list[str]
    counts: dict[str, dict[str, int]]  # "data" / "test" -> class -> items
    limits: ChallengeLimits = field(default_factory=ChallengeLimits)
    deadline: str | None = None  # ISO 8601, UTC
    closed: bool = False
    created: str = ""
    seed: int = 0
    test_fraction: float = 0.2

    # -- files ---------------------------------------------------------------------------
    @property
    def record_path(self) -> Path:
        return self.dir / "challenge.json"

    @property
    def data_path(self) -> Path:
        """What students train on: the folder of class folders, or the text CSV."""
        return self.dir / "data" / ("train.csv" if self.task.is_text else "")

    @property
    def hidden_dir(self) -> Path:
        return self.dir / "hidden"

    @property
    def submissions_dir(self) -> Path:
        return self.dir / "submissions"

    @property
    def students_dir(self) -> Path:
        return self.dir / "students"

    def test_manifest(self) -> Manifest:
        """The hidden test part (scoring only: never shown, never offered for training); its
        photos are named inside ``hidden/``, so the challenge folder may move."""
        manifest = Manifest.load(self.hidden_dir / "test.json")
        for item in manifest.items:
            item.path = str(self.hidden_dir / item.path)
        return manifest

    def test_keys(self) -> dict[str, Any]:
        """Content keys of the test items: sha256 and sizes of photos, or text keys."""
        return read_json(self.hidden_dir / "keys.json") or {}

    @property
    def ranked_by(self) -> str:
        return challenge_task(self.task).metric

    # -- state ---------------------------------------------------------------------------
    def deadline_time(self) -> datetime | None:
        return parse_deadline(self.deadline) if self.deadline else None

    def closed_reason(self, now: datetime | None = None) -> str | None:
        """Why no more submissions are taken, in words; None while it is open."""
        if self.closed:
            return f"the challenge “{printable(self.title)}” is closed: no more submissions."
        deadline = self.deadline_time()
        if deadline is not None and (now or datetime.now(UTC)) > deadline:
            return (f"the deadline of “{printable(self.title)}” ({self.deadline}) has passed: "
                    "no more submissions.")  # fmt: skip
        return None

    def is_open(self, now: datetime | None = None) -> bool:
        return self.closed_reason(now) is None

    def close(self) -> Challenge:
        """No more submissions (the board stays)."""
        self.closed = True
        self._save()
        return self

    # -- students ------------------------------------------------------------------------
    def set_name(self, owner: str, name: str) -> str:
        """Record ``owner``'s display name (hostile text: checked here, escaped where shown)."""
        clean = display_name(name)
        self.students_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.students_dir / f"{owner_key(owner)}.json",
                          {"name": clean, "updated": now_iso()})  # fmt: skip
        return clean

    def name_of(self, owner: str) -> str | None:
        record = read_json(self.students_dir / f"{owner_key(owner)}.json") or {}
        name = record.get("name")
        return name if isinstance(name, str) and name else None

    def names(self) -> dict[str, str]:
        """owner -> display name, every student who picked one."""
        names = {}
        if self.students_dir.is_dir():
            for path in self.students_dir.glob("*.json"):
                name = (read_json(path) or {}).get("name")
                if isinstance(name, str) and name:
                    names[path.stem] = name
        return names

    # -- reading and writing -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "description": self.description,
            "task": self.task.to_dict(), "classes": self.classes, "counts": self.counts,
            "limits": {**asdict(self.limits), "models": list(self.limits.models)},
            "deadline": self.deadline, "closed": self.closed, "created": self.created,
            "seed": self.seed, "test_fraction": self.test_fraction,
        }  # fmt: skip

    def _save(self) -> None:
        write_json_atomic(self.record_path, self.to_dict())

    @classmethod
    def load(cls, folder: Path) -> Challenge:
        record = read_json(folder / "challenge.json")
        if record is None:
            raise RunError(f"no challenge in {folder.name}: its challenge.json is missing.")
        try:
            return cls(
                dir=folder, id=str(record["id"]), title=str(record["title"]),
                description=str(record.get("description", "")),
                task=Task.from_dict(record.get("task") or {}),
                classes=[str(c) for c in record["classes"]], counts=dict(record["counts"]),
                limits=ChallengeLimits.from_dict(record.get("limits")),
                deadline=record.get("deadline"), closed=bool(record.get("closed")),
                created=str(record.get("created", "")), seed=int(record.get("seed", 0)),
                test_fraction=float(record.get("test_fraction", 0.2)),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"the challenge {folder.name} is damaged ({exc!r}).") from None


def owner_key(owner: str) -> str:
    """The student's session id as a file name (``local`` on a one-person install)."""
    owner = owner or LOCAL_OWNER
    if not _OWNER.fullmatch(owner):
        raise RunError("this browser's user id is not valid: open the app again from its link.")
    return owner


def display_name(name: str) -> str:
    """A display name as kept: printable, trimmed, not empty, at most ``MAX_NAME`` characters."""
    clean = " ".join(printable(str(name)).split())
    if not clean:
        raise ConfigError("pick a display name for the board (any name, not your real one).")
    if len(clean) > MAX_NAME:
        raise ConfigError(f"a display name has at most {MAX_NAME} characters; yours has "
                          f"{len(clean)}.")  # fmt: skip
    return clean


def open_challenge(challenge_id: str) -> Challenge:
    """A challenge by id (from a URL or a form): never a path."""
    text = str(challenge_id)
    if not _CHALLENGE_ID.fullmatch(text):
        raise RunError(f"{text[:80]!r} is not a challenge id.")
    folder = challenges_dir() / text
    if folder.is_symlink() or not (folder / "challenge.json").is_file():
        raise RunError(f"there is no challenge {text!r} on this server.")
    return Challenge.load(folder)


def list_challenges(open_only: bool = False) -> list[Challenge]:
    """Every challenge, newest first (``open_only``: those still taking submissions)."""
    root = challenges_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.is_symlink() or not _CHALLENGE_ID.fullmatch(folder.name):
            continue
        with contextlib.suppress(RunError, OSError):
            found.append(Challenge.load(folder))
    found.sort(key=lambda c: (c.created, c.id), reverse=True)
    return [c for c in found if c.is_open()] if open_only else found


def parse_deadline(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"the deadline {str(text)[:40]!r} is not a date and time "
                          "(like 2026-12-24T18:00).") from None  # fmt: skip
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def content_key(path: str | Path) -> str:
    """sha256 of a file's bytes (how a test photo is recognised under any name)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
