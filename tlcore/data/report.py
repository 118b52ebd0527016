"""The validation report: what is wrong or notable in a dataset, as plain data.

The UI and the CLI both render a ``ValidationReport``; neither decides what a
problem is. Severities: "error" makes the dataset untrainable (``.reason`` says
why in one sentence), "warning" is something the user should look at (the
affected files are skipped or kept as stated), "info" is a change we made for
them (conversions, EXIF rotation, unwrapped folders).
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tlcore.data.images import ImageInfo
from tlcore.data.near_copies import copies_across, copy_groups, hash_photos
from tlcore.data.scan import CLASS_FOLDERS, DatasetScan, display_name, quoted

SEVERITIES = ("error", "warning", "info")
TINY_SIDE = 32  # px: smaller images carry little for a 224-px model
IMBALANCE_RATIO = 3.0  # largest / smallest class
FEW_IMAGES = 10  # per class: below this results are noise
MAX_NAMED = 5  # names listed in one sentence before "and N more", as files are listed


@dataclass
class Problem:
    """One finding: severity ("error" | "warning" | "info"), a stable code, a sentence, files."""

    severity: str
    code: str
    message: str
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "files": list(self.files),
        }


@dataclass
class UsableImage:
    """An image that passed inspection and goes into the manifest."""

    path: str
    class_name: str
    split: str | None
    sha256: str
    group: str = ""  # near-identical photos share it (tlcore.data.near_copies); "" = sha256

    def __post_init__(self) -> None:
        self.group = self.group or self.sha256


@dataclass
class ValidationReport:
    """Everything the user must know about a dataset before training on it."""

    root: str
    layout: str
    classes: list[str]  # classes with at least one usable image, sorted
    counts: dict[str, dict[str, int]]  # split ("all" without split folders) -> class -> usable
    problems: list[Problem] = field(default_factory=list)
    split_source: str = "random"  # "folders" when val/ is used as given
    n_found: int = 0  # files with an image extension
    n_usable: int = 0
    split_counts: dict[str, dict[str, int]] | None = None  # filled in once a manifest exists
    images: list[UsableImage] = field(default_factory=list, repr=False)
    # val/ photo -> the train/ photo it copies, when the user's folders split copies apart
    val_copies: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def infos(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "info"]

    @property
    def trainable(self) -> bool:
        return not self.errors

    @property
    def reason(self) -> str | None:
        """Why the dataset cannot be trained on, in one sentence; None when it can."""
        errors = self.errors
        return errors[0].message if errors else None

    def class_totals(self) -> dict[str, int]:
        """Usable images per class over all splits."""
        totals: Counter[str] = Counter()
        for per_class in self.counts.values():
            totals.update(per_class)
        return {c: totals[c] for c in self.classes}

    def to_dict(self) -> dict:
        """JSON-able summary (without the per-image list) for the UI and ``--json``."""
        return {
            "root": self.root,
            "layout": self.layout,
            "classes": list(self.classes),
            "counts": self.counts,
            "split_counts": self.split_counts,
            "split_source": self.split_source,
            "n_found": self.n_found,
            "n_usable": self.n_usable,
            "val_copies": len(self.val_copies),
            "trainable": self.trainable,
            "reason": self.reason,
            "problems": [p.to_dict() for p in self.problems],
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _names(names: list[str]) -> str:
    """'a', 'b' and 'c'; past ``MAX_NAMED`` names: the first five and "and N more"."""
    shown = [quoted(n) for n in names[:MAX_NAMED]]
    if len(names) > MAX_NAMED:
        return f"{', '.join(shown)} and {len(names) - MAX_NAMED:,} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def look_alike_names(names: list[str]) -> list[list[str]]:
    """Groups of names that differ only by Unicode normalisation ('café' written with a
    precomposed é, or with e + a combining accent): printed alike, they are two classes."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[unicodedata.normalize("NFC", name)].append(name)
    return [group for group in groups.values() if len(group) > 1]


def look_alike_problems(names: list[str], what: str) -> list[Problem]:
    """A warning per group of ``look_alike_names`` (``what``: "Class folders", "Labels")."""
    return [
        Problem(
            "warning",
            "look_alike_classes",
            f"{what} {_names(group)} look the same but are written with different Unicode "
            "(one with precomposed accents, one with combining accents), so they are "
            f"{len(group)} different classes; rename them to one spelling to merge them.",
        )
        for group in look_alike_names(names)
    ]


class _Builder:
    """Collects problems while walking a scan and its inspection results."""

    def __init__(self, scan: DatasetScan, results: dict[Path, ImageInfo | str]):
        self.scan, self.results = scan, results
        self.problems: list[Problem] = []
        self.rel = scan.relative
        self.conflicted: list[tuple] = []  # readable, but left out: one photo in two classes

    def add(self, severity: str, code: str, message: str, files=()) -> None:
        self.problems.append(Problem(severity, code, message, [self.rel(Path(f)) for f in files]))

    def readable(self) -> list[tuple]:
        """(ScannedImage, ImageInfo) for readable files; a warning per unreadable one."""
        good = []
        for image in self.scan.images:
            result = self.results.get(image.path, "was not inspected")
            if isinstance(result, ImageInfo):
                good.append((image, result))
            else:
                self.add(
                    "warning",
                    "unreadable",
                    f"Skipped {self.rel(image.path)}: {result}",
                    [image.path],
                )
        return good

    def drop_conflicts(self, good: list[tuple]) -> list[tuple]:
        """Identical files under different classes: warn, and keep neither copy."""
        by_hash: dict[str, list[tuple]] = defaultdict(list)
        for pair in good:
            by_hash[pair[1].sha256].append(pair)
        conflicted: set[str] = set()
        for pairs in by_hash.values():
            classes = sorted({img.class_name for img, _ in pairs})
            paths = [img.path for img, _ in pairs]
            if len(classes) > 1:
                conflicted.add(pairs[0][1].sha256)
                names = " and ".join(self.rel(p) for p in paths)
                self.add(
                    "warning",
                    "label_conflict",
                    f"The same image is labelled {' and '.join(quoted(c) for c in classes)} "
                    f"({names}); all copies are left out of training.",
                    paths,
                )
            elif len(pairs) > 1:
                names = ", ".join(self.rel(p) for p in paths)
                if len({img.split for img, _ in pairs}) > 1:
                    outcome = "they sit in different split folders, so validation is optimistic."
                else:
                    outcome = "they are kept together on one side of the split."
                self.add(
                    "warning",
                    "duplicate",
                    f"Identical images in class {quoted(classes[0])} ({names}); {outcome}",
                    paths,
                )
        self.conflicted = [pair for pair in good if pair[1].sha256 in conflicted]
        return [pair for pair in good if pair[1].sha256 not in conflicted]

    def notes(self, good: list[tuple]) -> None:
        """Info about conversions and layout, warnings about tiny or stray files."""
        conversions: dict[str, list[Path]] = defaultdict(list)
        for image, info in good:
            if info.converted_from:
                conversions[info.converted_from].append(image.path)
        for kind, paths in sorted(conversions.items()):
            self.add(
                "info",
                "converted",
                f"{_plural(len(paths), 'image')} converted to RGB from {kind}.",
                paths,
            )
        invalid = ", ".join(sorted({str(i.exif_invalid) for _, i in good if i.exif_invalid}))
        for code, pick, text in (
            (
                "exif_rotated",
                lambda i: i.exif_rotated,
                "rotated upright per the EXIF orientation tag",
            ),
            ("animated", lambda i: i.n_frames > 1, "animated; only the first frame is used"),
            (
                "exif_invalid",
                lambda i: i.exif_invalid,
                f"with an invalid EXIF orientation ({invalid}), which was ignored: used as stored",
            ),
            (
                "extension_mismatch",
                lambda i: i.extension_mismatch,
                "stored in another format than the file extension says; read by content",
            ),
        ):
            paths = [img.path for img, info in good if pick(info)]
            if paths:
                self.add("info", code, f"{_plural(len(paths), 'image')} {text}.", paths)
        tiny = [(img, info) for img, info in good if min(info.width, info.height) < TINY_SIDE]
        if tiny:
            w, h = min(((i.width, i.height) for _, i in tiny), key=lambda s: s[0] * s[1])
            self.add(
                "warning",
                "tiny_image",
                f"{_plural(len(tiny), 'image')} smaller than {TINY_SIDE} px on a side "
                f"(smallest {w}x{h}): upscaled for training, with little detail.",
                [img.path for img, _ in tiny],
            )
        nested = Counter(img.class_name for img, _ in good if img.nested)
        for class_name, n in sorted(nested.items()):
            self.add(
                "info",
                "nested",
                f"{_plural(n, 'image')} in sub-folders of {quoted(class_name)} counted as "
                f"{quoted(class_name)}.",
            )
        self.layout_notes()

    def layout_notes(self) -> None:
        scan = self.scan
        if scan.unwrapped:
            self.add(
                "info",
                "unwrapped",
                f"Used the folder {quoted('/'.join(scan.unwrapped))} inside the upload as the "
                "dataset root.",
            )
        if scan.loose_images:
            self.add(
                "warning",
                "loose_images",
                f"Ignored {_plural(len(scan.loose_images), 'image')} outside any class "
                "folder; move each into the folder of its class.",
                scan.loose_images,
            )
        if scan.extra_folders:
            names = _names([display_name(d.name) for d in scan.extra_folders])
            self.add(
                "warning",
                "extra_folder",
                f"Folders {names} next to train/ were ignored; only train/, val/ and test/ "
                "are read in this layout.",
                scan.extra_folders,
            )
        if scan.other_files:
            self.add(
                "info",
                "other_files",
                f"Ignored {_plural(len(scan.other_files), 'file')} without an image extension.",
                scan.other_files,
            )
        if scan.outside_links:
            self.add(
                "warning",
                "outside_link",
                f"Skipped {_plural(len(scan.outside_links), 'link')} pointing outside the "
                "allowed data folder (TLCORE_DATA_ROOT); copy those files in instead.",
                scan.outside_links,
            )
        if scan.special_files:
            self.add(
                "warning",
                "not_a_file",
                f"Skipped {_plural(len(scan.special_files), 'entry')} that are not regular files "
                "(a pipe, socket, device or broken link), so they were never opened.",
                scan.special_files,
            )
        if scan.n_ignored:
            self.add(
                "info",
                "hidden_files",
                f"Ignored {_plural(scan.n_ignored, 'hidden or system file')} "
                "(.DS_Store, __MACOSX, Thumbs.db, dot-files).",
            )


def _counts(scan: DatasetScan, kept: list[tuple]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {
        split: dict.fromkeys(scan.classes, 0) for split in scan.class_dirs
    }
    for image, _ in kept:
        counts[image.split or "all"][image.class_name] += 1
    return counts


def _distinct_in_pool(kept: list[tuple], groups: dict[str, str]) -> Counter:
    """Different photos (groups of near-identical copies) per class among those the
    random split draws from."""
    keys = {(img.class_name, groups[str(img.path)]) for img, _ in kept
            if img.split in (None, "train")}  # fmt: skip
    return Counter(class_name for class_name, _ in keys)


def _triples(pairs: list[tuple]) -> list[tuple[str, str, str]]:
    return [(str(img.path), img.class_name, info.sha256) for img, info in pairs]


def _near_copies(b: _Builder, kept: list[tuple], split_source: str) -> tuple[dict, dict]:
    """Group near-identical photos (tlcore.data.near_copies) and say what that means for
    the split: groups kept on one side, or, in the user's own folders, validation photos
    that copy training photos. Returns (path -> group key, val path -> train path)."""
    perceptual = hash_photos(b.scan.root, [(str(img.path), info.sha256) for img, info in kept])
    groups = copy_groups(_triples(kept), perceptual)
    if split_source == "folders":
        train = [pair for pair in kept if pair[0].split == "train"]
        val = [pair for pair in kept if pair[0].split == "val"]
        copies = copies_across(_triples(train), _triples(val), perceptual)
        if copies:
            shown = ", ".join(f"{b.rel(Path(v))} (of {b.rel(Path(t))})"
                              for v, t in list(copies.items())[:MAX_NAMED])  # fmt: skip
            more = f" and {len(copies) - MAX_NAMED:,} more" if len(copies) > MAX_NAMED else ""
            b.add(
                "warning",
                "val_copies",
                f"Validation has {len(copies):,} {'copy' if len(copies) == 1 else 'copies'} of "
                f"training photos: {shown}{more} (each identical to a train/ photo, or a "
                "resized, re-encoded or retouched copy of it). Your train/ and val/ folders are "
                "used as given, so "
                "the validation accuracy counts photos the model trained on and is optimistic; "
                "delete those copies from val/ (or train/) for an honest measure.",
                list(copies),
            )
        return groups, copies
    pool = [str(img.path) for img, _ in kept if img.split in (None, "train")]
    sizes = Counter(groups[path] for path in pool)
    together = [n for n in sizes.values() if n > 1]
    if together:
        b.add(
            "info",
            "near_copies",
            f"Kept {_plural(len(together), 'group')} of near-identical photos together "
            f"({sum(together):,} photos: identical files, or copies of one photo resized, "
            "re-encoded or retouched); each group stays on one side of the split, so no such "
            "copy is in both training and validation. Crops and other shots of the same scene "
            "are not caught here: the Doctor looks for those.",
        )
    return groups, {}


def _class_checks(
    b: _Builder, counts: dict[str, dict[str, int]], split_source: str, distinct: Counter
) -> list[str]:
    """Empty, too-small and imbalanced classes; returns the classes that have images."""
    scan = b.scan
    totals = Counter()
    for per_class in counts.values():
        totals.update(per_class)
    classes = [c for c in scan.classes if totals[c] > 0]
    empty = [c for c in scan.classes if totals[c] == 0]
    if len(empty) == 1:
        b.add("warning", "empty_class", f"Class folder {quoted(empty[0])} has no usable "
              "images, so it is left out.")  # fmt: skip
    elif empty:  # 5,000 empty folders are one warning, not 5,000 lines
        b.add("warning", "empty_class", f"Class folders {_names(empty)} have no usable "
              "images, so they are left out.")  # fmt: skip
    b.problems.extend(look_alike_problems(scan.classes, "Class folders"))
    if not classes:
        b.add("error", "no_images", _no_images_reason(b))
        return classes
    if len(classes) == 1:
        b.add(
            "error",
            "one_class",
            f"Only one class ({quoted(classes[0])}) has images; a classifier needs at least two "
            "class folders.",
        )
    train = counts["all"] if "all" in counts else counts.get("train", {})
    for c in classes:
        if split_source == "random" and train.get(c, 0) == 1:
            b.add(
                "error",
                "class_too_small",
                f"Class {quoted(c)} has only 1 usable image; it needs at least 2 to be split into "
                "training and validation.",
            )
        elif split_source == "random" and train.get(c, 0) > 1 and distinct[c] == 1:
            b.add(  # identical copies stay together in one split, so none could validate
                "error",
                "class_too_small",
                f"Class {quoted(c)} has {train[c]} usable images but they are all copies of one "
                "photo; it needs at least 2 different photos to be split into training and "
                "validation.",
            )
        elif train.get(c, 0) == 0:
            b.add(
                "error",
                "no_train_images",
                f"Class {quoted(c)} has no usable images in train/; add some or remove the class.",
            )
        elif split_source == "folders" and counts.get("val", {}).get(c, 0) == 0:
            b.add(
                "warning",
                "no_val_images",
                f"Class {quoted(c)} has no images in val/, so its accuracy cannot be measured.",
            )
        if 0 < totals[c] < FEW_IMAGES:
            b.add(
                "warning",
                "few_images",
                f"Class {quoted(c)} has only {totals[c]} usable images; results will be unreliable "
                f"below about {FEW_IMAGES} per class.",
            )
    sizes = {c: totals[c] for c in classes}
    if len(sizes) > 1 and max(sizes.values()) > IMBALANCE_RATIO * min(sizes.values()):
        big, small = max(sizes, key=sizes.get), min(sizes, key=sizes.get)
        b.add(
            "warning",
            "imbalance",
            f"Classes are imbalanced: {quoted(big)} has {sizes[big]} images and "
            f"{quoted(small)} only {sizes[small]}; consider class-balanced training.",
        )
    return classes


def _no_images_reason(b: _Builder) -> str:
    """Why nothing is usable, in one sentence: no image files, none readable, or (the
    surprise) every readable photo a copy of one photo filed under several classes."""
    found = len(b.scan.images)
    conflicted = b.conflicted
    unreadable = sum(1 for i in b.scan.images if not isinstance(b.results.get(i.path), ImageInfo))
    where = "put images into one sub-folder per class"
    if not found:
        loose = len(b.scan.loose_images)
        outside = f" ({_plural(loose, 'image')} lie outside any class folder)" if loose else ""
        return (f"No usable images were found: no image file is inside a class "
                f"folder{outside}; {where}.")  # fmt: skip
    if not conflicted:
        return (f"No usable images were found: none of the {_plural(found, 'image file')} "
                f"could be read (each is named under warnings); {where}.")  # fmt: skip
    photos = len({info.sha256 for _, info in conflicted})
    classes = sorted({img.class_name for img, _ in conflicted})
    copies = "copies of one photo" if photos == 1 else f"copies of {photos} photos"
    unread = f" ({unreadable} more could not be read)" if unreadable else ""
    return (f"No usable images are left: all {len(conflicted)} readable images are {copies} "
            f"filed under several classes ({_names(classes)}), so every copy was left "
            f"out{unread}; a classifier needs different photos in each class folder.")  # fmt: skip


def build_report(scan: DatasetScan, results: dict[Path, ImageInfo | str]) -> ValidationReport:
    """Turn a scan and per-file inspection results (ImageInfo, or a reason string) into a report."""
    b = _Builder(scan, results)
    kept = b.drop_conflicts(b.readable())
    counts = _counts(scan, kept)
    has_val = sum(counts.get("val", {}).values()) > 0
    split_source = "folders" if scan.layout != CLASS_FOLDERS and has_val else "random"
    if scan.layout != CLASS_FOLDERS and not has_val:
        b.add(
            "info",
            "no_val_folder",
            "No validation images in a val/ folder; a random split of train/ is used.",
        )
    groups, val_copies = _near_copies(b, kept, split_source)
    classes = _class_checks(b, counts, split_source, _distinct_in_pool(kept, groups))
    b.notes(kept)
    counts = {
        split: {c: n for c, n in per.items() if c in classes} for split, per in counts.items()
    }
    order = {s: i for i, s in enumerate(SEVERITIES)}
    problems = sorted(b.problems, key=lambda p: order[p.severity])
    return ValidationReport(
        root=str(scan.root),
        layout=scan.layout,
        classes=classes,
        counts=counts,
        problems=problems,
        split_source=split_source,
        n_found=len(scan.images),
        n_usable=sum(sum(per.values()) for per in counts.values()),
        images=[
            UsableImage(
                str(img.path), img.class_name, img.split, info.sha256, groups[str(img.path)]
            )
            for img, info in kept
            if img.class_name in classes
        ],
        val_copies=val_copies,
    )
