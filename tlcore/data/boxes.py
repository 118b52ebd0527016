"""Photos with boxes, read from the common formats: Pascal VOC XML, COCO JSON, YOLO txt and a
CSV (``image,xmin,ymin,xmax,ymax,label``), found automatically in a folder.

A small reader rather than ``supervision``'s loaders: measured with ``pip download
supervision`` (0.31.2), it adds 36.4 MB of wheels to this install (av, a video decoder, is
35.7 MB of them; pydeprecate, defusedxml and itself the rest) for four file formats we read
in ~300 lines. Annotation files
are hostile input: XML is parsed with the standard library's expat after refusing any
``<!DOCTYPE``/``<!ENTITY`` (no entity expansion, no external entities) and with a size cap;
JSON and CSV have size caps too. Every box that cannot be used is clipped or dropped with one
line saying which file and why; nothing else is lost.
"""

from __future__ import annotations

import csv
import json
import math
import random
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlcore.errors import DataError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_XML_BYTES = 2_000_000  # a VOC file for one photo is a few kB
MAX_JSON_BYTES = 300_000_000  # a COCO file for a large set; 1 GB is refused in words
MAX_CSV_BYTES = 200_000_000
MAX_BOXES_PER_PHOTO = 1000  # more is an export gone wrong, not a photo
FORMATS = ("voc", "coco", "yolo", "csv")


@dataclass
class Box:
    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin


@dataclass
class BoxedPhoto:
    """One photo, its size in pixels, its boxes (pixels of the photo) and its split."""

    path: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    split: str | None = None


@dataclass
class BoxData:
    """What was read: the photos, the classes, and one line per thing that was not used."""

    root: str
    format: str
    photos: list[BoxedPhoto]
    classes: list[str]
    problems: list[str] = field(default_factory=list)
    annotations_without_photo: list[str] = field(default_factory=list)
    photos_without_annotation: list[str] = field(default_factory=list)
    split_source: str = "seeded"

    def split(self, name: str) -> list[BoxedPhoto]:
        return [p for p in self.photos if p.split == name]


# --- finding the format ---------------------------------------------------------------


def _files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))  # fmt: skip


def _looks_coco(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(65536)
    except OSError:
        return False
    return '"annotations"' in head or '"images"' in head


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            return [c.strip().lower() for c in next(csv.reader(f), [])]
    except OSError:
        return []


def box_format(root: str | Path) -> str | None:
    """Which box format a folder holds ("voc", "coco", "yolo", "csv"), or None (no boxes)."""
    root = Path(root)
    if not root.is_dir():
        return None
    xmls = [p for p in _files(root, (".xml",))[:50] if _head(p).find(b"<annotation") >= 0]
    if xmls:
        return "voc"
    if any(_looks_coco(p) for p in _files(root, (".json",))[:20]):
        return "coco"
    has_names = (root / "data.yaml").is_file() or (root / "classes.txt").is_file()
    if has_names and any(p.name != "classes.txt" for p in _files(root, (".txt",))):
        return "yolo"
    for path in _files(root, (".csv",))[:20]:
        if {"xmin", "ymin", "xmax", "ymax"} <= set(_csv_header(path)):
            return "csv"
    return None


def _head(path: Path, n: int = 4096) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


# --- the readers: each returns {photo name: [Box]} plus problems -----------------------


def _number(text: Any) -> float:
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return math.nan


def read_voc_file(path: Path) -> tuple[str | None, list[Box], tuple[int, int] | None]:
    """(the photo's file name, its boxes, its (width, height) if said); DataError in words."""
    size = path.stat().st_size
    if size > MAX_XML_BYTES:
        raise DataError(f"{path.name}: {size:,} bytes is too large for one photo's annotation "
                        f"(limit {MAX_XML_BYTES:,}); skipped.")  # fmt: skip
    data = path.read_bytes()
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise DataError(f"{path.name}: declares a DOCTYPE or ENTITY, which annotation files "
                        "never need (entity expansion is refused); skipped.")  # fmt: skip
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(f"{path.name}: not readable XML ({exc}); skipped.") from None
    filename = (root.findtext("filename") or "").strip() or None
    w, h = _number(root.findtext("size/width")), _number(root.findtext("size/height"))
    dims = (int(w), int(h)) if w > 0 and h > 0 else None
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        label = (obj.findtext("name") or "").strip()
        coords = [_number(bb.findtext(k)) if bb is not None else math.nan
                  for k in ("xmin", "ymin", "xmax", "ymax")]  # fmt: skip
        boxes.append(Box(label, *coords))
    return filename, boxes, dims


def _read_voc(root: Path, problems: list[str]) -> tuple[dict[str, list[Box]], dict[str, tuple[int, int]], list[str]]:  # fmt: skip
    found: dict[str, list[Box]] = {}
    dims: dict[str, tuple[int, int]] = {}
    names: list[str] = []
    for path in _files(root, (".xml",)):
        try:
            filename, boxes, size = read_voc_file(path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        key = Path(filename).stem if filename else path.stem
        names.append(key)
        found[key] = boxes
        if size:
            dims[key] = size
    return found, dims, names


def _read_coco(root: Path, problems: list[str]) -> tuple[dict[str, list[Box]], dict[str, tuple[int, int]], list[str]]:  # fmt: skip
    found: dict[str, list[Box]] = {}
    dims: dict[str, tuple[int, int]] = {}
    for path in _files(root, (".json",)):
        if not _looks_coco(path):
            continue
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            problems.append(f"{path.name}: {size / 1e9:.1f} GB is larger than the "
                            f"{MAX_JSON_BYTES / 1e9:.1f} GB a COCO file may be here; skipped "
                            "(split it, or keep only the annotations of these photos).")  # fmt: skip
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            images = {im["id"]: im for im in data["images"]}
            cats = {c["id"]: str(c["name"]) for c in data.get("categories", [])}
            anns = data.get("annotations", [])
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path.name}: not a readable COCO file ({type(exc).__name__}: "
                            f"{str(exc)[:80]}); skipped.")  # fmt: skip
            continue
        for im in images.values():
            key = Path(str(im.get("file_name", ""))).stem
            found.setdefault(key, [])
            if _number(im.get("width")) > 0 and _number(im.get("height")) > 0:
                dims[key] = (int(im["width"]), int(im["height"]))
        for ann in anns:
            try:
                im = images[ann["image_id"]]
                x, y, w, h = (_number(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                problems.append(f"{path.name}: annotation {str(ann.get('id', '?'))[:20]} has no "
                                "usable image_id or bbox; dropped.")  # fmt: skip
                continue
            cat = ann.get("category_id")
            if cat not in cats:
                problems.append(f"{path.name}: annotation {str(ann.get('id', '?'))[:20]} has "
                                f"category_id {str(cat)[:20]}, which no category has; dropped.")  # fmt: skip
                continue
            key = Path(str(im.get("file_name", ""))).stem
            found[key].append(Box(cats[cat], x, y, x + w, y + h))
    return found, dims, list(found)


def _yolo_classes(root: Path) -> list[str]:
    if (root / "classes.txt").is_file():
        return [line.strip() for line in (root / "classes.txt").read_text(errors="replace")
                .splitlines() if line.strip()]  # fmt: skip
    text = (root / "data.yaml").read_text(errors="replace")
    import yaml  # PyYAML comes with the stack (huggingface, transformers)

    try:
        data = yaml.safe_load(text)
        names = data["names"]
    except Exception as exc:  # noqa: BLE001 - any unreadable yaml says the same
        raise DataError(f"data.yaml: cannot read its class names ({str(exc)[:80]}).") from None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    return [str(n) for n in names]


def _read_yolo(root: Path, problems: list[str]) -> tuple[dict[str, list[Box]], dict[str, tuple[int, int]], list[str]]:  # fmt: skip
    """Boxes in fractions of the photo: ``class cx cy w h``; turned into pixels later."""
    classes = _yolo_classes(root)
    found: dict[str, list[Box]] = {}
    for path in _files(root, (".txt",)):
        if path.name == "classes.txt" or "ImageSets" in path.parts:
            continue
        boxes = []
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 5:
                problems.append(f"{path.name} line {n}: expected 'class cx cy w h'; dropped.")
                continue
            cid, cx, cy, w, h = parts[0], *(_number(v) for v in parts[1:])
            if not cid.isdigit() or int(cid) >= len(classes):
                problems.append(f"{path.name} line {n}: class id {cid[:10]} is out of range "
                                f"(0..{len(classes) - 1}); dropped.")  # fmt: skip
                continue
            boxes.append(Box(classes[int(cid)], cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        found[path.stem] = boxes
    return found, {}, list(found)


def _read_csv(root: Path, problems: list[str]) -> tuple[dict[str, list[Box]], dict[str, tuple[int, int]], list[str]]:  # fmt: skip
    found: dict[str, list[Box]] = {}
    for path in _files(root, (".csv",)):
        header = _csv_header(path)
        if not {"xmin", "ymin", "xmax", "ymax"} <= set(header):
            continue
        if path.stat().st_size > MAX_CSV_BYTES:
            problems.append(f"{path.name}: larger than {MAX_CSV_BYTES:,} bytes; skipped.")
            continue
        label_col = "label" if "label" in header else "class"
        image_col = next((c for c in ("image", "filename", "file", "path") if c in header), None)
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
            for n, row in enumerate(csv.DictReader(f, fieldnames=header), 0):
                if n == 0:
                    continue
                key = Path(str(row.get(image_col) or "")).stem if image_col else ""
                if not key:
                    problems.append(f"{path.name} row {n}: no image named; dropped.")
                    continue
                label = str(row.get(label_col) or "").strip()
                coords = [_number(row.get(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
                found.setdefault(key, []).append(Box(label, *coords))
    return found, {}, list(found)


READERS = {"voc": _read_voc, "coco": _read_coco, "yolo": _read_yolo, "csv": _read_csv}


# --- checking boxes against their photo -------------------------------------------------


def _photo_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - an unreadable photo is said by the caller
        return None


def clean_boxes(name: str, boxes: list[Box], width: int, height: int,
                problems: list[str]) -> list[Box]:  # fmt: skip
    """Boxes inside the photo: NaN, negative or zero size dropped, those reaching outside
    clipped; each named in ``problems``."""
    kept: list[Box] = []
    if len(boxes) > MAX_BOXES_PER_PHOTO:
        problems.append(f"{name}: {len(boxes):,} boxes in one photo; the first "
                        f"{MAX_BOXES_PER_PHOTO} are kept, the rest dropped.")  # fmt: skip
        boxes = boxes[:MAX_BOXES_PER_PHOTO]
    for i, b in enumerate(boxes, 1):
        where = f"{name} box {i} ({b.label[:40] or 'no label'})"
        coords = (b.xmin, b.ymin, b.xmax, b.ymax)
        if not b.label:
            problems.append(f"{where}: has no class name; dropped.")
        elif not all(math.isfinite(v) for v in coords):
            problems.append(f"{where}: a coordinate is not a number; dropped.")
        elif b.width <= 0 or b.height <= 0:
            problems.append(f"{where}: zero or negative size ({b.width:g}×{b.height:g}); dropped.")
        else:
            c = Box(b.label, max(0.0, b.xmin), max(0.0, b.ymin), min(float(width), b.xmax),
                    min(float(height), b.ymax))  # fmt: skip
            if c.width < 1 or c.height < 1:
                problems.append(f"{where}: lies outside the {width}×{height} photo; dropped.")
                continue
            if (c.xmin, c.ymin, c.xmax, c.ymax) != coords:
                problems.append(f"{where}: reaches outside the {width}×{height} photo; clipped.")
            kept.append(c)
    return kept


# --- splits -----------------------------------------------------------------------------


def _given_splits(root: Path, fmt: str) -> dict[str, str]:
    """{photo stem: split} from VOC ImageSets/Main or YOLO train/valid/test folders."""
    splits: dict[str, str] = {}
    main = next((p for p in root.rglob("ImageSets/Main") if p.is_dir()), None)
    if main is not None:
        for split, file in (("train", "train.txt"), ("val", "val.txt"), ("test", "test.txt")):
            if (main / file).is_file():
                for line in (main / file).read_text(errors="replace").split():
                    splits.setdefault(line.strip(), split)
        return splits
    for photo in _files(root, PHOTO_SUFFIXES):
        parts = {p.lower() for p in photo.relative_to(root).parts[:-1]}
        for split, names in (("train", {"train"}), ("val", {"valid", "val"}), ("test", {"test"})):
            if parts & names:
                splits[photo.stem] = split
    return splits


def seeded_split(photos: list[BoxedPhoto], val_fraction: float, seed: int) -> None:
    """A split by photo that keeps every class on both sides when it has two photos or more."""
    order = list(range(len(photos)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(photos) * val_fraction)) if len(photos) > 1 else 0
    for rank, i in enumerate(order):
        photos[i].split = "val" if rank < n_val else "train"
    for label in sorted({b.label for p in photos for b in p.boxes}):
        having = [i for i in order if any(b.label == label for b in photos[i].boxes)]
        if len(having) < 2:
            continue
        for side in ("val", "train"):
            if not any(photos[i].split == side for i in having):
                photos[having[0 if side == "val" else -1]].split = side


# --- the whole read ---------------------------------------------------------------------


def read_boxes(root: str | Path, val_fraction: float = 0.2, seed: int = 0) -> BoxData:
    """Every photo with its boxes under ``root``; DataError in words when there is none."""
    root = Path(root)
    fmt = box_format(root)
    if fmt is None:
        raise DataError(f"{root}: found no boxes (Pascal VOC .xml, COCO .json, YOLO .txt with "
                        "data.yaml or classes.txt, or a CSV with xmin,ymin,xmax,ymax).")  # fmt: skip
    problems: list[str] = []
    found, dims, _ = READERS[fmt](root, problems)
    photos_by_stem: dict[str, Path] = {}
    for path in _files(root, PHOTO_SUFFIXES):
        photos_by_stem.setdefault(path.stem, path)
    photos: list[BoxedPhoto] = []
    for stem, path in photos_by_stem.items():
        size = dims.get(stem) or _photo_size(path)
        if size is None:
            problems.append(f"{path.name}: not a readable photo; skipped.")
            continue
        raw = found.get(stem, [])
        if fmt == "yolo":  # fractions of the photo
            raw = [Box(b.label, b.xmin * size[0], b.ymin * size[1], b.xmax * size[0],
                       b.ymax * size[1]) for b in raw]  # fmt: skip
        boxes = clean_boxes(path.name, raw, size[0], size[1], problems)
        photos.append(BoxedPhoto(str(path), size[0], size[1], boxes))
    data = BoxData(str(root), fmt, photos, sorted({b.label for p in photos for b in p.boxes}),
                   problems)  # fmt: skip
    data.annotations_without_photo = sorted(set(found) - set(photos_by_stem))
    data.photos_without_annotation = sorted(set(photos_by_stem) - set(found))
    given = _given_splits(root, fmt)
    if given and any(v == "val" for v in given.values()):
        for p in photos:
            p.split = given.get(Path(p.path).stem, "train")
        data.split_source = "ImageSets/Main" if fmt == "voc" else "train/valid/test folders"
    else:
        seeded_split(photos, val_fraction, seed)
        data.split_source = f"seeded split by photo (seed {seed}, {val_fraction:.0%} validation)"
    if not data.classes:
        raise DataError(f"{root}: {len(photos)} photos but no usable box "
                        f"({len(problems)} problems, first: {problems[:1]}).")  # fmt: skip
    return data


def box_counts(data: BoxData) -> dict[str, int]:
    return dict(Counter(b.label for p in data.photos for b in p.boxes))
