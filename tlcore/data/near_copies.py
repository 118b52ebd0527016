"""Near-identical photos: resized, re-encoded or retouched copies of one photo, found by a
perceptual hash so the split can keep each copy on the same side as its original.

Identical files share a content hash; a copy saved at another size or JPEG quality does
not. A DCT perceptual hash (``imagehash.phash``, 256 bits) of a small grey decode does:
measured on the 340 photos of assets/ (ants-bees, clothing4), resized (1/4 to 2x),
re-encoded (quality 30, PNG), brightened by up to 25 % or darkened copies differ from
their original by at most 28 bits, while two different photos of one class differ by at
least 74 (``COPY_DISTANCE`` sits between). Crops and other shots of the same scene are
not caught; the Doctor's embedding check looks for those.

Cost: about 1 ms a photo on assets' 320-px samples and 11 ms for a 12-megapixel JPEG
(decoded at 1/8 scale), the same as the inspection's own decode. Hashes are kept per
dataset folder, keyed by each file's content hash, so a re-scan only decodes photos it
has not seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tlcore import settings
from tlcore.data.images import to_rgb

HASH_SIZE = 16  # a 16x16 block of DCT coefficients: 256 bits
COPY_DISTANCE = 40  # bits of 256: copies measured <= 28, different photos >= 74
DRAFT_SIDE = 64  # JPEGs are decoded at the smallest scale keeping 64 px (phash uses 64x64)
FLAT_STD = 2.0  # grey levels: a photo this flat (one colour) has no hash worth comparing
_CHUNK = 256  # rows compared at once: (256 x n) distances bounds the memory of a big class


def perceptual_hash(path: str | Path) -> str | None:
    """The photo's 256-bit perceptual hash in hex, or None when it cannot be read or is flat.

    Decoded small (``draft``: a 4000x3000 JPEG is read at 1/8 scale), upright per EXIF,
    in grey. A flat photo (one colour) is left out: all flat photos hash alike.
    """
    import imagehash

    try:
        with Image.open(path) as im:
            im.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
            im.load()
            try:
                upright = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block: hash the photo as stored
                upright = im
            grey = to_rgb(upright or im).convert("L")  # transparency on white, 16-bit scaled
    except Exception:  # unreadable here means unreadable in the report: nothing to compare
        return None
    if float(np.asarray(grey.resize((32, 32)), dtype=np.float32).std()) < FLAT_STD:
        return None
    return str(imagehash.phash(grey, hash_size=HASH_SIZE))


def _cache_file(root: str | Path) -> Path:
    key = hashlib.sha256(str(Path(root).absolute()).encode("utf-8", "surrogateescape"))
    return settings.uploads_dir() / "perceptual-hashes" / f"{key.hexdigest()[:16]}.json"


def _read_cache(path: Path) -> dict[str, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v if isinstance(v, str) else None for k, v in data.items()}


def _write_cache(path: Path, hashes: Mapping[str, str | None]) -> None:
    """Atomically (temp + replace); a cache that cannot be written only costs time."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(dict(hashes)), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def hash_photos(
    root: str | Path, photos: Sequence[tuple[str | Path, str]], workers: int | None = None
) -> dict[str, str | None]:
    """content hash -> perceptual hash for ``photos`` ((path, content hash) pairs).

    Photos whose content hash was hashed before under ``root`` are not decoded again;
    the rest are decoded in threads (Pillow decodes without the GIL).
    """
    file = _cache_file(root)
    known = _read_cache(file)
    todo: dict[str, str | Path] = {}
    for path, sha in photos:
        if sha not in known:
            todo.setdefault(sha, path)
    if todo:
        workers = workers or min(8, (os.cpu_count() or 1) + 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = pool.map(perceptual_hash, todo.values())
            known.update(zip(todo, found, strict=True))
    wanted = {sha: known[sha] for _, sha in photos}
    if todo or len(known) != len(wanted):  # kept to this dataset's photos: no stale growth
        _write_cache(file, wanted)
    return wanted


def _as_words(hashes: Sequence[str]) -> np.ndarray:
    """(n, 4) uint64: each 256-bit hex hash as four 64-bit words."""
    raw = b"".join(bytes.fromhex(h) for h in hashes)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hashes), -1)


def _distances(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(len(rows), len(cols)) Hamming distances between two sets of hashes as words."""
    distance = np.zeros((len(rows), len(cols)), dtype=np.uint16)
    for w in range(rows.shape[1]):
        distance += np.bitwise_count(rows[:, w, None] ^ cols[None, :, w])
    return distance


def close_pairs(hashes: Sequence[str], limit: int = COPY_DISTANCE) -> Iterator[tuple[int, int]]:
    """Index pairs (i < j) of hashes at most ``limit`` bits apart."""
    if len(hashes) < 2:
        return
    words = _as_words(hashes)
    for start in range(0, len(words) - 1, _CHUNK):
        rows, rest = words[start : start + _CHUNK], words[start + 1 :]  # rest: after row 0
        i, j = np.nonzero(_distances(rows, rest) <= limit)
        for a, b in zip(i.tolist(), j.tolist(), strict=True):
            if b >= a:  # column b is photo start + 1 + b: keep each pair once, i < j
                yield start + a, start + 1 + b


def cross_pairs(
    first: Sequence[str], second: Sequence[str], limit: int = COPY_DISTANCE
) -> Iterator[tuple[int, int]]:
    """Index pairs (i into ``first``, j into ``second``) at most ``limit`` bits apart."""
    if not first or not second:
        return
    a, b = _as_words(first), _as_words(second)
    for start in range(0, len(a), _CHUNK):
        i, j = np.nonzero(_distances(a[start : start + _CHUNK], b) <= limit)
        yield from zip((start + i).tolist(), j.tolist(), strict=True)


class _Groups:
    """Union-find over keys: ``join`` puts two keys in one group, ``find`` names it."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, key: str) -> str:
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller key names the group: the same whatever the order
            self.parent[max(ra, rb)] = min(ra, rb)


def copy_groups(
    photos: Sequence[tuple[str, str, str]], perceptual: Mapping[str, str | None]
) -> dict[str, str]:
    """path -> group key for ``photos`` ((path, class name, content hash)).

    Photos of one class whose perceptual hashes are within ``COPY_DISTANCE`` are joined
    (union-find, so a chain of copies is one group), as are identical files. A group is
    named by the smallest content hash in it: a photo without copies keeps its own.
    """
    groups = _Groups(sha for _, _, sha in photos)
    by_class: dict[str, dict[str, str]] = {}
    for _, class_name, sha in photos:
        if (hashed := perceptual.get(sha)) is not None:
            by_class.setdefault(class_name, {})[sha] = hashed
    for per_class in by_class.values():
        shas = list(per_class)
        for i, j in close_pairs(list(per_class.values())):
            groups.join(shas[i], shas[j])
    return {path: groups.find(sha) for path, _, sha in photos}


def copies_across(
    train: Sequence[tuple[str, str, str]],
    held_out: Sequence[tuple[str, str, str]],
    perceptual: Mapping[str, str | None],
) -> dict[str, str]:
    """held-out path -> a training path it copies (same class; identical or near-identical).

    For splits the user made with folders: those photos cannot be moved, only counted.
    """
    found: dict[str, str] = {}
    train_by_class: dict[str, list[tuple[str, str]]] = {}
    for path, class_name, sha in train:
        train_by_class.setdefault(class_name, []).append((path, sha))
    for path, class_name, sha in held_out:
        candidates = train_by_class.get(class_name, [])
        same = next((p for p, s in candidates if s == sha), None)
        if same is not None:
            found[path] = same
    for class_name, candidates in train_by_class.items():
        hashed_train = [(p, perceptual[s]) for p, s in candidates if perceptual.get(s)]
        hashed_held = [(p, perceptual[s]) for p, c, s in held_out
                       if c == class_name and p not in found and perceptual.get(s)]  # fmt: skip
        for i, j in cross_pairs([h for _, h in hashed_held], [h for _, h in hashed_train]):
            found.setdefault(hashed_held[i][0], hashed_train[j][0])
    return found
