"""Finding the classes and image files in a folder, before any image is opened.

Two layouts are accepted: one sub-folder per class, or ``train/`` + ``val/``
(+ optional ``test/``) each holding class folders. Zips made by hand often add
one (or several) wrapping folders, which are unwrapped. Only file names are
looked at here; whether the files are real images is the report's business.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from tlcore import settings
from tlcore.data.images import is_ignored, is_image_file
from tlcore.errors import DataError

CLASS_FOLDERS = "class_folders"
SPLIT_FOLDERS = "split_folders"

# Folder names (lower-case) recognised as splits, and the split each one means.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
SPLIT_ORDER = ("train", "val", "test")


@dataclass
class ScannedImage:
    """A file whose extension says image, with the class (and split) its folder gives it."""

    path: Path
    class_name: str
    split: str | None  # None when the layout has no split folders
    nested: bool = False  # found in a sub-folder of its class folder


@dataclass
class DatasetScan:
    """The folder structure of a dataset: what the report and the split start from."""

    source: Path
    root: Path  # after unwrapping single wrapper folders
    layout: str  # CLASS_FOLDERS or SPLIT_FOLDERS
    classes: list[str]  # every class folder name found, sorted (empty ones included)
    images: list[ScannedImage] = field(default_factory=list)
    unwrapped: list[str] = field(default_factory=list)  # wrapper folder names removed
    split_dirs: dict[str, str] = field(default_factory=dict)  # split -> folder name
    class_dirs: dict[str, list[str]] = field(default_factory=dict)  # split|"all" -> classes
    loose_images: list[Path] = field(default_factory=list)  # not inside any class folder
    other_files: list[Path] = field(default_factory=list)  # not images by extension
    extra_folders: list[Path] = field(default_factory=list)  # beside train/val, unused
    n_ignored: int = 0  # hidden files, __MACOSX, .DS_Store, Thumbs.db
    outside_links: list[Path] = field(default_factory=list)  # links leaving TLCORE_DATA_ROOT
    special_files: list[Path] = field(default_factory=list)  # pipes, sockets, devices: never read

    def relative(self, path: Path) -> str:
        """A path as the user knows it: relative to the folder they gave, with '/'."""
        try:
            return display_name(path.relative_to(self.source).as_posix())
        except ValueError:
            return display_name(str(path))


def display_name(name: str) -> str:
    """A name that can be printed and shown: bytes that are not UTF-8 become U+FFFD.

    Linux hands Python undecodable names as lone surrogates, which crash any UTF-8
    encoding (terminal, JSON for the browser, a seeded RNG); the file itself is
    still opened by its real path. Control characters are escaped (``printable``).
    """
    return printable(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``, ``\\n``, ``\\u202e``).

    A file or class name is hostile: raw ESC sequences recolour or rewrite the
    terminal, a carriage return or newline forges output lines, and bidi controls
    reorder what is shown. Every name tlcore prints goes through here.
    """
    if text.isprintable() and not _BIDI_CONTROLS.intersection(text):
        return text
    out = []
    for char in text:
        if char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def short_name(name: str, limit: int = 40) -> str:
    """``name`` cut to ``limit`` characters with an ellipsis: one 10,000-character label
    must not widen every row of a table or fill a message."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def quoted(name: str, limit: int = 80) -> str:
    """A class or folder name inside a sentence: quoted, escaped once as in tables
    (``printable``, which leaves an already escaped name as it is), cut when long.

    Not ``repr``: a name holding ``\\u202e`` (as ``display_name`` writes a bidi control)
    would be escaped a second time, and show differently in a message than in a table.
    """
    return f"'{short_name(printable(name), limit)}'"


def _leaves_data_root(path: Path) -> bool:
    """True for a link inside ``TLCORE_DATA_ROOT`` that points outside it (never followed).

    The app may read only under the data root; a symlinked class folder or image
    there must not become a way around that.
    """
    root = settings.data_root()
    if root is None or not path.is_symlink() or not path.parent.resolve().is_relative_to(root):
        return False
    return not path.resolve().is_relative_to(root)


def is_regular_file(path: str | Path) -> bool:
    """A regular file (links followed): a FIFO named .jpg would block the reader forever."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _children(
    folder: Path, outside: list[Path] | None = None, special: list[Path] | None = None
) -> tuple[list[Path], list[Path], int]:
    """Visible sub-folders and files of one folder (sorted), and how many were ignored."""
    dirs, files, ignored = [], [], 0
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"Cannot list the folder {folder}: {exc.strerror or exc}.") from None
    for entry in entries:
        if is_ignored(entry.name):
            ignored += 1
        elif entry.is_symlink() and _leaves_data_root(Path(entry.path)):
            if outside is not None:
                outside.append(Path(entry.path))
        elif entry.is_dir():
            dirs.append(Path(entry.path))
        elif entry.is_file():
            files.append(Path(entry.path))
        elif special is not None:  # a pipe, socket, device or broken link
            special.append(Path(entry.path))
    return dirs, files, ignored


def _is_wrapper(folder: Path) -> Path | None:
    """The single folder inside ``folder`` when it only wraps the real dataset, else None."""
    dirs, files, _ = _children(folder)
    if len(dirs) != 1 or any(is_image_file(f) for f in files):
        return None
    inner = dirs[0]
    if inner.name.lower() in SPLIT_NAMES:
        return None
    inner_dirs, inner_files, _ = _children(inner)
    if not inner_dirs or any(is_image_file(f) for f in inner_files):
        return None  # the one folder is itself a class folder (a one-class dataset)
    return inner


def _walk_files(folder: Path, outside: list[Path], special: list[Path]) -> tuple[list[Path], int]:
    """Every visible file under ``folder`` (depth-first, sorted), and how many were ignored."""
    found, ignored = [], 0
    for current, dirnames, filenames in os.walk(folder):
        kept = [d for d in dirnames if not is_ignored(d)]
        ignored += len(dirnames) - len(kept)
        dirnames[:] = sorted(kept)
        for name in sorted(filenames):
            if is_ignored(name):
                ignored += 1
            elif _leaves_data_root(Path(current) / name):
                outside.append(Path(current) / name)
            elif not is_regular_file(Path(current) / name):
                special.append(Path(current) / name)
            else:
                found.append(Path(current) / name)
    return found, ignored


def _split_folders(dirs: list[Path]) -> dict[str, Path]:
    """train/val/test folders among ``dirs`` when a train folder is there, else {}."""
    splits: dict[str, Path] = {}
    for d in dirs:
        split = SPLIT_NAMES.get(d.name.lower())
        if split and split not in splits:
            splits[split] = d
    return splits if "train" in splits else {}


def _scan_classes(scan: DatasetScan, parent: Path, split: str | None) -> list[str]:
    """Class folders under ``parent``: their images go to ``scan``; loose files are noted."""
    dirs, files, ignored = _children(parent, scan.outside_links, scan.special_files)
    scan.n_ignored += ignored
    for f in files:
        (scan.loose_images if is_image_file(f) else scan.other_files).append(f)
    names = []
    for class_dir in dirs:
        class_name = display_name(class_dir.name)  # a label, never turned back into a path
        names.append(class_name)
        files_in_class, ignored = _walk_files(class_dir, scan.outside_links, scan.special_files)
        scan.n_ignored += ignored
        for f in files_in_class:
            if not is_image_file(f):
                scan.other_files.append(f)
                continue
            nested = f.parent != class_dir
            scan.images.append(ScannedImage(f, class_name, split, nested))
    return names


def scan_folder(source: str | Path) -> DatasetScan:
    """Find the layout, classes and image files under ``source`` (a folder).

    Raises DataError when the folder does not exist or cannot be listed; an empty
    or odd folder gives a scan the report then explains.
    """
    source = Path(source).expanduser().absolute()
    if not source.exists():
        raise DataError(f"The folder {source} does not exist.")
    if not source.is_dir():
        raise DataError(f"{source} is not a folder; give a folder of class folders or a .zip.")
    root, unwrapped = source, []
    while (inner := _is_wrapper(root)) is not None:
        unwrapped.append(display_name(inner.name))
        root = inner
    outside: list[Path] = []
    dirs, _, _ = _children(root, outside)
    splits = _split_folders(dirs)
    scan = DatasetScan(
        source=source,
        root=root,
        layout=SPLIT_FOLDERS if splits else CLASS_FOLDERS,
        classes=[],
        unwrapped=unwrapped,
    )
    if splits:  # otherwise _scan_classes lists the root again and notes its links
        scan.outside_links.extend(outside)
    if not splits:
        scan.class_dirs["all"] = _scan_classes(scan, root, None)
    else:
        _, files, ignored = _children(root)
        scan.n_ignored += ignored
        for f in files:
            (scan.loose_images if is_image_file(f) else scan.other_files).append(f)
        scan.extra_folders = [d for d in dirs if d not in splits.values()]
        for split in SPLIT_ORDER:
            if split in splits:
                scan.split_dirs[split] = splits[split].name
                scan.class_dirs[split] = _scan_classes(scan, splits[split], split)
    scan.classes = sorted({name for names in scan.class_dirs.values() for name in names})
    return scan
