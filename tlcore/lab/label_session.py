"""A labelling session: a folder of unlabelled photos, class names, and the answers so far.

A session is a folder tlcore creates (``uploads_dir()/labelling/<id>/``), never the
photos' own: ``session.json`` (the photos' folder, the class names, the backbone, the
photos that could not be read) and ``answers.jsonl``, append-only, one line per click:
a class, ``skip``, ``none`` (none of these classes) or ``undo`` (takes back the last
answer still standing). Replaying the lines gives the labels, so a closed tab, a
restarted server or the CLI continue the same session; a photo answered twice keeps
its last answer. After each batch the model's numbers are appended to ``progress.jsonl``.

Labels leave the session as a *dataset version*: a numbered manifest file
(``versions/v1.json``, ``v2.json``, ..., written once and never changed, like the
Doctor's) that a run trains on like any manifest, or as copies of the photos in
class folders, or as a CSV. The photos are never moved or renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tlcore import settings
from tlcore.data import csv_safe
from tlcore.data.images import images_in, load_rgb
from tlcore.data.manifest import Manifest, ManifestItem, make_split
from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.data.sources import safe_name
from tlcore.errors import ConfigError, DataError
from tlcore.lab.labelling import (
    BATCH_SIZE,
    KEEP_C_UNTIL,
    LabelModel,
    Suggestion,
    fit_model,
    suggest_batch,
)
from tlcore.training import embedding_cache, features
from tlcore.training.embedder import Embedder

SKIP, NONE, UNDO = "skip", "none", "undo"  # the answers that are not a class
MAX_PHOTOS = 200_000
SESSION_FILE, ANSWERS_FILE, PROGRESS_FILE = "session.json", "answers.jsonl", "progress.jsonl"
_VERSION = re.compile(r"v(\d{1,6})\.json")


def sessions_dir() -> Path:
    return settings.uploads_dir() / "labelling"


def parse_classes(text: str | Sequence[str]) -> list[str]:
    """Class names from 'a, b, c' (or a list): words, no control characters, no repeats, none
    called like an answer that is not a class."""
    from tlcore.lab.zeroshot import parse_class_names

    names = parse_class_names(text)
    for name in names:
        if name.casefold() in (SKIP, NONE, UNDO):
            raise ConfigError(f"{name!r} cannot be a class name: it is one of the answers "
                              f"({SKIP}, {NONE}, {UNDO}). Choose another word.")  # fmt: skip
    return names


# --- reading the photos --------------------------------------------------------------------
class _Photos(torch.utils.data.Dataset):
    """Photos by path; one that cannot be read gives a flag, not an error."""

    def __init__(self, paths: Sequence[str], transform: Any, size: Sequence[int]) -> None:
        self.paths, self.transform, self.size = list(paths), transform, tuple(size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            return self.transform(load_rgb(self.paths[index])), 1
        except (DataError, OSError, ValueError):
            return torch.zeros(3, *self.size), 0


def embed_photos(
    paths: Sequence[str], embedder: Embedder, progress: ProgressCallback | None = None
) -> tuple[torch.Tensor, list[str], dict[str, str]]:
    """Embeddings of the readable photos (through the one cache), their paths, and the
    unreadable ones with why. A broken file is left out, never cached, never fatal."""
    from tlcore.data.task import PHOTO_LABEL

    items = [ManifestItem(str(p), 0, "train") for p in paths]
    stamps = embedding_cache.item_stamps(PHOTO_LABEL, items)
    lookup = embedder.rows.lookup(stamps)
    tracker = Tracker("Embedding the photos", len(paths), progress)
    tracker.advance(len(lookup.found))
    computed, ok = None, torch.ones(len(paths), dtype=torch.bool)
    if lookup.missing:
        dataset = _Photos([str(paths[i]) for i in lookup.missing], embedder.transform,
                          embedder.data_config["input_size"][1:])  # fmt: skip
        computed, flags = features.embed(embedder.model, embedder._loader(dataset),
                                         embedder.device, tracker.advance)  # fmt: skip
        computed = computed.cpu()
        for j, flag in enumerate(flags.tolist()):
            ok[lookup.missing[j]] = bool(flag)
    unreadable = {}
    for i in (~ok).nonzero().flatten().tolist():
        try:
            load_rgb(paths[i])
            unreadable[str(paths[i])] = "it could not be read"
        except DataError as exc:
            unreadable[str(paths[i])] = str(exc)
    keep = ok.nonzero().flatten().tolist()
    index = {old: new for new, old in enumerate(keep)}
    good = embedding_cache.Lookup(
        [stamps[i] for i in keep],
        {index[i]: row for i, row in lookup.found.items()},
        [index[i] for i in lookup.missing if ok[i]],
    )
    rows = None
    if computed is not None:
        rows = computed[torch.tensor([bool(ok[i]) for i in lookup.missing])]
    x = embedder.rows.complete(good, rows) if keep else torch.empty(0, 0)
    return x.cpu(), [str(paths[i]) for i in keep], unreadable


# --- the session ---------------------------------------------------------------------------
@dataclass
class Answers:
    """The answers replayed: labels (photo -> class), skipped and unknown photos, in order."""

    labels: dict[str, str] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    standing: list[dict[str, str]] = field(default_factory=list)  # answers not undone

    @classmethod
    def replay(cls, lines: Sequence[dict[str, str]]) -> Answers:
        standing: list[dict[str, str]] = []
        for line in lines:
            if line.get("answer") == UNDO:
                if standing:
                    standing.pop()
            else:
                standing.append(line)
        out = cls(standing=standing)
        for line in standing:  # a photo answered twice keeps its last answer
            path, answer = line["path"], line["answer"]
            out.labels.pop(path, None)
            out.skipped.discard(path)
            out.unknown.discard(path)
            if answer == SKIP:
                out.skipped.add(path)
            elif answer == NONE:
                out.unknown.add(path)
            else:
                out.labels[path] = answer
        return out


class LabelSession:
    """One folder of photos and class names, with the answers kept in the session folder."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        try:
            data = json.loads((self.dir / SESSION_FILE).read_text(encoding="utf-8"))
            self.root, self.classes = str(data["root"]), [str(c) for c in data["classes"]]
            self.settings = dict(data.get("settings", {}))
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{self.dir} is not a labelling session tlcore can read (its "
                            f"{SESSION_FILE} is missing or damaged).") from None  # fmt: skip

    @classmethod
    def start(cls, folder: str | Path, classes: str | Sequence[str], model: str = "tf_efficientnet_lite0",
              weights: str = "bundled", img_size: int | None = None) -> LabelSession:  # fmt: skip
        """The session for this folder, these classes and this backbone: the one started
        before (its answers kept) or a new one."""
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise DataError(f"{str(folder)[:200]!r} is not a folder of photos.")
        names = parse_classes(classes)
        settings_ = {"model": model, "weights": weights, "img_size": img_size}
        ident = json.dumps([str(root.resolve()), names, settings_], sort_keys=True)
        directory = sessions_dir() / hashlib.sha256(ident.encode()).hexdigest()[:16]
        if not (directory / SESSION_FILE).is_file():
            data = {"root": str(root.resolve()), "classes": names, "settings": settings_,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
            _write_json(directory / SESSION_FILE, data)
        return cls(directory)

    def photos(self) -> list[str]:
        """Every image file under the folder, sorted (unreadable ones too: embedding says)."""
        files = [str(p) for p in images_in([self.root])]
        if not files:
            raise DataError(f"There are no photos in {self.root!r}: put .jpg or .png files in "
                            "it (subfolders are read too).")  # fmt: skip
        if len(files) > MAX_PHOTOS:
            raise DataError(f"{len(files):,} photos is more than one session takes "
                            f"({MAX_PHOTOS:,}): label a part of the folder.")  # fmt: skip
        return files

    def embedder(self, device: str = "auto") -> Embedder:
        s = self.settings
        return Embedder(s.get("model", "tf_efficientnet_lite0"), s.get("weights", "bundled"),
                        s.get("img_size"), device)  # fmt: skip

    def needs_names(self) -> bool:
        """True until the labels cover two classes: the guesses then come from the names."""
        return len(set(self.answers().labels.values())) < 2

    # --- answers -------------------------------------------------------------------------------
    def _lines(self, name: str) -> list[dict[str, Any]]:
        path = self.dir / name
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: the ones before it stand
            if isinstance(value, dict):
                out.append(value)
        return out

    def answers(self) -> Answers:
        lines = [ln for ln in self._lines(ANSWERS_FILE)
                 if isinstance(ln.get("path"), str) and isinstance(ln.get("answer"), str)]  # fmt: skip
        return Answers.replay(lines)

    def answer(self, path: str, answer: str) -> None:
        """Record one answer: a class name, ``skip`` or ``none``; ConfigError for anything else."""
        if answer not in (*self.classes, SKIP, NONE):
            raise ConfigError(f"{str(answer)[:80]!r} is not one of the classes "
                              f"({', '.join(self.classes)}), {SKIP} or {NONE}.")  # fmt: skip
        if not Path(path).resolve().is_relative_to(self.root):
            raise ConfigError(f"{str(path)[:200]!r} is not a photo of the folder being labelled "
                              f"({self.root}).")  # fmt: skip
        self._append(ANSWERS_FILE, {"path": str(path), "answer": answer, "time": time.time()})

    def undo(self) -> dict[str, str] | None:
        """Take back the last answer still standing (None when there is none)."""
        standing = self.answers().standing
        if not standing:
            return None
        self._append(ANSWERS_FILE, {"path": standing[-1]["path"], "answer": UNDO,
                                    "time": time.time()})  # fmt: skip
        return standing[-1]

    def progress(self) -> list[dict[str, Any]]:
        """The model's numbers after each batch: labels, CV estimate, check-set accuracy."""
        return self._lines(PROGRESS_FILE)

    def record_progress(self, model: LabelModel, **extra: Any) -> None:
        """Note a refit's numbers (once per number of labels)."""
        done = self.progress()
        if model.labels and (not done or done[-1].get("labels") != model.labels):
            self._append(PROGRESS_FILE, model.summary() | extra | {"time": time.time()})

    def kept_c(self, labels: int) -> float | None:
        """The L2 strength chosen at the last full choice, until the labels have doubled
        since (a refit then scores one strength, not four); None to choose again."""
        for entry in reversed(self.progress()):
            chosen_at = entry.get("C_chosen_at")
            if isinstance(chosen_at, int) and chosen_at > 0:
                if labels < KEEP_C_UNTIL * chosen_at and isinstance(entry.get("C"), (int, float)):
                    return float(entry["C"])
                return None
        return None

    def _append(self, name: str, value: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / name, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(value) + "\n")

    # --- the model and the next batch -------------------------------------------------------
    def next_batch(self, x: torch.Tensor, paths: Sequence[str], size: int = BATCH_SIZE,
                   prior: torch.Tensor | None = None,
                   seed: int = 0) -> tuple[list[Suggestion], LabelModel]:  # fmt: skip
        """The next photos to ask about and the head fitted on the answers so far. ``prior``
        (N, classes) are guesses from the class names (zero-shot), used until the labels
        cover two classes."""
        answers = self.answers()
        position = {p: i for i, p in enumerate(paths)}
        labelled = [position[p] for p in answers.labels if p in position]
        y = torch.tensor([self.classes.index(answers.labels[paths[i]]) for i in labelled],
                         dtype=torch.long)  # fmt: skip
        model = fit_model(x[labelled], y, self.classes, seed, self.kept_c(len(labelled)))
        probabilities = model.probabilities(x) if model.head is not None else prior
        left_out = [position[p] for p in answers.skipped | answers.unknown if p in position]
        guesser = "model" if model.head is not None else "names"
        batch = suggest_batch(
            x, labelled, probabilities, self.classes, size, left_out, seed, guesser
        )
        return batch, model

    # --- labels out ----------------------------------------------------------------------------
    def labelled_manifest(self, val_fraction: float = 0.2, seed: int = 0) -> Manifest:
        """The labelled photos as a manifest (a seeded split); the classes that have photos."""
        labels = self.answers().labels
        present = [c for c in self.classes if c in labels.values()]
        if len(present) < 2:
            raise DataError("Label photos of at least two classes before saving or training: "
                            f"so far {len(labels)} photos are labelled.")  # fmt: skip
        samples = sorted(labels.items())
        return make_split(self.root, present, samples, val_fraction=val_fraction, seed=seed)

    def check_trainable(self) -> None:
        """DataError in words unless two classes or more have 2 labelled photos each (the
        least a split into training and validation photos needs)."""
        counts = {c: 0 for c in self.classes}
        for label in self.answers().labels.values():
            counts[label] = counts.get(label, 0) + 1
        few = {c: n for c, n in counts.items() if n == 1}
        if few or sum(1 for n in counts.values() if n >= 2) < 2:
            detail = "; ".join(f"{c!r} has {n}" for c, n in counts.items())
            raise DataError("To train, label at least 2 photos of each class you keep (a class "
                            f"with no photo is left out): {detail}.")  # fmt: skip

    def save_version(self, seed: int = 0) -> Path:
        """The labels as a new numbered manifest file (never changed after), its path."""
        manifest = self.labelled_manifest(seed=seed)
        folder = self.dir / "versions"
        numbers = [int(m.group(1)) for p in folder.glob("v*.json")
                   if (m := _VERSION.fullmatch(p.name))] if folder.is_dir() else []  # fmt: skip
        newest = folder / f"v{max(numbers)}.json" if numbers else None
        if newest is not None and Manifest.load(newest).fingerprint() == manifest.fingerprint():
            return newest  # the same labels: no second identical version
        return manifest.save(folder / f"v{max(numbers, default=0) + 1}.json")

    def versions(self) -> list[Path]:
        folder = self.dir / "versions"
        found = [(int(m.group(1)), p) for p in folder.glob("v*.json")
                 if (m := _VERSION.fullmatch(p.name))] if folder.is_dir() else []  # fmt: skip
        return [p for _, p in sorted(found)]

    def export_csv(self) -> str:
        """``path,label`` for every labelled photo (cells safe from spreadsheet formulas)."""
        rows = sorted(self.answers().labels.items())
        return csv_safe.csv_text(["path", "label"], rows)

    def export_folders(self, destination: str | Path) -> Path:
        """Copies of the labelled photos in one folder per class under ``destination`` (a new
        or empty folder); the photos themselves stay where they are."""
        destination = Path(destination).expanduser()
        if destination.exists() and any(destination.iterdir()):
            raise DataError(f"{str(destination)[:200]!r} is not empty: choose a new folder.")
        if destination.resolve().is_relative_to(Path(self.root).resolve()):
            raise DataError("Export the class folders outside the folder being labelled.")
        labels = self.answers().labels
        folders = class_folders([c for c in self.classes if c in labels.values()])
        tmp = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.tmp")
        used: set[str] = set()
        for path, label in sorted(labels.items()):
            target = tmp / folders[label]
            target.mkdir(parents=True, exist_ok=True)
            name = safe_name(Path(path).name, "photo name")
            stem, suffix, k = Path(name).stem, Path(name).suffix, 1
            while f"{folders[label]}/{name}" in used:  # two photos of one name: keep both
                k += 1
                name = f"{stem}-{k}{suffix}"
            used.add(f"{folders[label]}/{name}")
            shutil.copy2(path, target / name)
        if destination.exists():
            destination.rmdir()
        os.replace(tmp, destination)
        return destination


def class_folders(classes: Sequence[str]) -> dict[str, str]:
    """A safe, distinct folder name for each class ('a/b' and 'a_b' both become folders)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in classes:
        base = safe_name(name, "class name")
        folder, k = base, 1
        while folder.casefold() in taken:
            k += 1
            folder = f"{base}-{k}"
        taken.add(folder.casefold())
        out[name] = folder
    return out


def check_set(
    folder: str | Path, classes: Sequence[str], embedder: Embedder
) -> tuple[torch.Tensor, torch.Tensor]:
    """A labelled folder's photos (every split) and their labels in the session's class order:
    a folder named like a class ('ants' for 'ant') is that class, else the folders by order."""
    from tlcore.lab.fewshot import load_manifest

    manifest = load_manifest(folder)
    folders, classes = manifest.classes, list(classes)
    if len(folders) != len(classes):
        raise DataError(f"The check set has {len(folders)} class folders but {len(classes)} "
                        "class names were given: use one folder per class.")  # fmt: skip

    def stem(name: str) -> str:
        return name.casefold().strip().removesuffix("s")

    order = [next((j for j, c in enumerate(classes) if stem(c) == stem(f)), None) for f in folders]
    if None in order or len(set(order)) != len(order):
        order = list(range(len(folders)))
    parts = [embedder.embed_split(manifest, split) for split in ("train", "val")]
    x = torch.cat([p[0] for p in parts if len(p[1])])
    y = torch.tensor([order[int(v)] for p in parts for v in p[1]], dtype=torch.long)
    return x, y


def guesses_from_names(
    x: torch.Tensor, classes: Sequence[str], embedder: Embedder
) -> torch.Tensor | None:
    """(N, classes) zero-shot guesses from the class names alone (``tlcore.lab.zeroshot``), the
    first batch's doubt before any label; None when the backbone has no ImageNet head."""
    from tlcore.errors import ModelError
    from tlcore.lab.zeroshot import ZeroShotClassifier, imagenet_probabilities

    try:
        imagenet = imagenet_probabilities(embedder, x)
    except ModelError:
        return None
    return ZeroShotClassifier.from_names(list(classes)).predict_proba(imagenet)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
