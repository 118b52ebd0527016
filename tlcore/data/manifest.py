"""The manifest: which file is in which split with which label, frozen in one JSON file.

A run trains on a manifest, not on a folder, so that the same seed gives the
same split on any machine and the UI can show exactly what was used. The split
is stratified per class and deterministic: each class is shuffled with its own
seeded generator over files sorted by their path relative to the dataset root,
so moving the folder or adding a class does not reshuffle the others.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tlcore.data import version_checks
from tlcore.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
MANIFEST_VERSION = 1


@dataclass
class ManifestItem:
    """One image: absolute path, class index into ``Manifest.classes``, and its split.

    A text example (``Manifest.modality == "text"``) carries its sentence in ``text``;
    ``path`` then names where it came from (``reviews.csv:12`` or a ``.txt`` file).
    """

    path: str
    label: int
    split: str
    text: str | None = None


@dataclass
class Manifest:
    """Every image a run may use, with the split that was chosen and how."""

    root: str
    classes: list[str]
    items: list[ManifestItem]
    seed: int = 0
    val_fraction: float | None = None
    split_source: str = "random"  # "random" or "folders"
    version: int = field(default=MANIFEST_VERSION)
    modality: str = "image"  # or "text" (tlcore.data.text_source)
    # a validation photo -> the training photo it copies (identical or near-identical,
    # tlcore.data.near_copies): only where the user's own folders split copies apart
    val_copies: dict[str, str] = field(default_factory=dict)

    def items_for(self, split: str) -> list[ManifestItem]:
        """The items of one split, in manifest order."""
        if split not in SPLITS:
            raise DataError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
        return [item for item in self.items if item.split == split]

    def copies_in_validation(self) -> dict[str, str]:
        """``val_copies`` whose two photos are still in validation and training (a dataset
        version, ``tlcore.data.overrides``, may have left one of them out)."""
        if not self.val_copies:
            return {}
        where = {item.path: item.split for item in self.items}
        return {
            v: t
            for v, t in self.val_copies.items()
            if where.get(v) == "val" and where.get(t) == "train"
        }

    def counts(self) -> dict[str, dict[str, int]]:
        """split -> class -> number of images (every class listed, zeros included)."""
        result: dict[str, dict[str, int]] = {}
        for item in self.items:
            per_class = result.setdefault(item.split, dict.fromkeys(self.classes, 0))
            per_class[self.classes[item.label]] += 1
        return {split: result[split] for split in SPLITS if split in result}

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.modality == "image":  # photo manifests (and their fingerprints) stay as they were
            del data["modality"]
            for item in data["items"]:
                del item["text"]
        if not self.val_copies:  # and manifests without copies keep their fingerprints
            del data["val_copies"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Manifest:
        """Rebuild from ``to_dict`` output; DataError when fields are missing or wrong."""
        try:
            classes = [str(c) for c in data["classes"]]
            items = [
                ManifestItem(str(i["path"]), int(i["label"]), str(i["split"]), i.get("text"))
                for i in data["items"]
            ]
            manifest = cls(
                root=str(data["root"]),
                classes=classes,
                items=items,
                seed=int(data.get("seed", 0)),
                val_fraction=data.get("val_fraction"),
                split_source=str(data.get("split_source", "random")),
                version=int(data.get("version", MANIFEST_VERSION)),
                modality=str(data.get("modality", "image")),
                val_copies={str(k): str(v) for k, v in dict(data.get("val_copies") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"The manifest is incomplete or malformed ({exc!r}).") from None
        for item in manifest.items:
            if not 0 <= item.label < len(classes) or item.split not in SPLITS:
                raise DataError(f"The manifest entry for {item.path} has a bad label or split.")
            if manifest.modality == "text" and not isinstance(item.text, str):
                raise DataError(f"The manifest entry for {item.path} has no text.")
        return manifest

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + os.replace) so readers never see half a manifest."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a read-only folder, a file where a folder should be, a full disk
            raise DataError(
                f"cannot write the manifest to {path}: {exc.strerror or exc}; choose a place "
                "you can write to."
            ) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a saved manifest; DataError (naming the file) when missing or not a manifest.

        A dataset version's file is checked against its original first (by its size, before
        it is read, then by its content): ``tlcore.data.version_checks``."""
        path = Path(path)
        version_checks.check_version_size(path)
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except FileNotFoundError:
            raise DataError(f"The manifest {path} does not exist.") from None
        except RecursionError:
            raise DataError(f"The manifest {path} cannot be read (its JSON is nested too "
                            "deeply to be a file tlcore wrote).") from None  # fmt: skip
        except (OSError, ValueError) as exc:
            raise DataError(f"The manifest {path} cannot be read ({exc}).") from None
        if not isinstance(data, dict):
            raise DataError(f"The manifest {path} is not a JSON object.")
        if "dataset_version" in data:
            version_checks.check_version_data(path, raw, data, cls)
        return cls.from_dict(data)

    def files_stamp(self) -> str:
        """sha256 of every file's size and change time: a photo replaced under the same
        name changes it, so caches keyed on it (embeddings, decoded pixels) are not stale."""
        digest = hashlib.sha256()
        for item in self.items:
            try:
                stat = Path(item.path).stat()
                digest.update(f"{item.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{item.path}\0missing\n".encode())
        return digest.hexdigest()

    def fingerprint(self) -> str:
        """sha256 of the content: equal fingerprints mean the same images, labels and split."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _sort_key(root: str, path: str) -> str:
    """Order files by their path under the root, so the split ignores where the folder lives."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _sort_keys(root: str, paths: Sequence[str]) -> dict[str, str]:
    """``_sort_key`` of many paths under one root, by slicing strings where that gives the
    same answer (a plain POSIX path under the root): parsing 50,000 paths with pathlib was
    most of the split's time."""
    prefix = str(Path(root)).rstrip("/") + "/"
    keys = {}
    for path in paths:
        rest = path[len(prefix) :] if os.sep == "/" and path.startswith(prefix) else ""
        plain = rest and not (rest.startswith(("/", "./")) or rest.endswith(("/", "/."))
                              or "//" in rest or "/./" in rest or rest == ".")  # fmt: skip
        keys[path] = rest if plain else _sort_key(root, path)
    return keys


def _all_plain(root: str, paths: Sequence[str]) -> bool:
    """True when every path is a plain POSIX path under ``root``: then each ``_sort_key`` is
    the path less one shared prefix, and sorting the paths themselves gives the same order
    without building a key per photo (at 50,000 photos, memory the split had to touch)."""
    prefix = str(Path(root)).rstrip("/") + "/"
    if os.sep != "/" or "//" in prefix:
        return False
    return all(
        p.startswith(prefix) and not ("//" in p or "/./" in p or p.endswith(("/", "/.")))
        for p in paths
    )


def _class_split(
    paths: list[str], n_val: int, rng: random.Random, groups: Mapping[str, str]
) -> set[str]:
    """Pick validation files for one class, keeping identical files (same group) together.

    Groups are counted, not listed: a list per photo was most of the memory a split of
    50,000 photos touched. Same choice as listing them (groups in first-seen order,
    shuffled, taken whole until ``n_val`` files)."""
    keys = [groups.get(p, p) for p in paths]
    sizes = Counter(keys)  # insertion-ordered: groups in the order first seen
    group_keys = list(sizes)
    rng.shuffle(group_keys)
    chosen: set[str] = set()
    taken = 0
    for key in group_keys[:-1]:  # the last group always stays in train
        if taken >= n_val:
            break
        chosen.add(key)
        taken += sizes[key]
    return {p for p, key in zip(paths, keys, strict=True) if key in chosen}


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a split builds its objects.

    Creating tens of thousands of items in a heap that already holds the report's photos
    sets off full collections that walk all of them: at 50,000 photos they were 45 % of
    the split's time (2.9 vs 1.6 us per photo). The items hold no reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def make_split(
    root: str | Path,
    classes: Sequence[str],
    samples: Sequence[tuple[str, str]],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    groups: Mapping[str, str] | None = None,
    test_samples: Sequence[tuple[str, str]] = (),
) -> Manifest:
    """A stratified, seeded train/val split of ``samples`` (absolute path, class name).

    Each class with n >= 2 images gets round(n * val_fraction) validation images,
    at least 1 and at most n - 1; a class with one image stays in train.
    ``groups`` maps a path to a key (its group of near-identical copies,
    ``tlcore.data.near_copies``): files sharing a key land in the same split, so a copy
    never leaks from train into val.
    ``test_samples`` (from a ``test/`` folder) are kept as the test split.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
    with collector_paused():
        return _make_split(root, classes, samples, val_fraction, seed, groups or {}, test_samples)


def _make_split(
    root: str | Path,
    classes: Sequence[str],
    samples: Sequence[tuple[str, str]],
    val_fraction: float,
    seed: int,
    groups: Mapping[str, str],
    test_samples: Sequence[tuple[str, str]],
) -> Manifest:
    root = str(root)
    classes = list(classes)
    label_of = {name: i for i, name in enumerate(classes)}
    by_class: dict[str, list[str]] = {name: [] for name in classes}
    for path, class_name in samples:
        if class_name not in label_of:
            raise DataError(f"{path} has class {class_name!r}, which is not in the class list.")
        by_class[class_name].append(str(path))
    items: list[ManifestItem] = []
    every = [p for paths in by_class.values() for p in paths]
    keys = None if _all_plain(root, every) else _sort_keys(root, every)
    for class_name in classes:
        paths = sorted(by_class[class_name], key=None if keys is None else keys.__getitem__)
        n = len(paths)
        val: set[str] = set()
        if n >= 2:
            n_val = min(max(round(n * val_fraction), 1), n - 1)
            rng = random.Random(f"{seed}:{class_name}")
            val = _class_split(paths, n_val, rng, groups)
        for p in paths:
            split = "val" if p in val else "train"
            items.append(ManifestItem(p, label_of[class_name], split))
    for path, class_name in sorted(test_samples, key=lambda s: _sort_key(root, s[0])):
        if class_name in label_of:
            items.append(ManifestItem(str(path), label_of[class_name], "test"))
    return Manifest(root, classes, items, seed, float(val_fraction), "random")


def folder_manifest(
    root: str | Path,
    classes: Sequence[str],
    samples: Sequence[tuple[str, str, str]],
    val_copies: Mapping[str, str] | None = None,
) -> Manifest:
    """A manifest that keeps the split the user gave with ``train/``/``val/``/``test/`` folders.

    ``samples`` are (absolute path, class name, split); classes not in ``classes`` are dropped.
    ``val_copies`` (validation photo -> the training photo it copies) cannot be moved, only
    kept so that the run and its model card can say validation is optimistic.
    """
    classes = list(classes)
    label_of = {name: i for i, name in enumerate(classes)}
    rank = {s: i for i, s in enumerate(SPLITS)}
    ordered = sorted(
        (s for s in samples if s[1] in label_of),
        key=lambda s: (rank[s[2]], label_of[s[1]], _sort_key(str(root), s[0])),
    )
    items = [ManifestItem(str(p), label_of[c], split) for p, c, split in ordered]
    manifest = Manifest(
        str(root), classes, items, 0, None, "folders", val_copies=dict(val_copies or {})
    )
    manifest.val_copies = manifest.copies_in_validation()
    return manifest
