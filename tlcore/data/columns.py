"""A table of labels: one row per photo (or sentence), several label columns, each a task.

Real labelled data often comes as a spreadsheet: a photo per row and several columns
(kind, colour, for children or not), or tags ("beach;sunset"). ``read_columns`` reads a
``.csv``, ``.tsv`` or ``.xlsx`` and returns ``ColumnsData``: the items with one label per
task (``None`` where the cell is blank: "not labelled for this task", left out of that
task's loss), the tasks (``ColumnTask``: one-of-N or tags, with the separator found), a
split that keeps each group (``--group``: who took the photo) on one side, and
``problems``: one line per thing that was skipped or changed, so nothing is lost silently.

The item column is a column of photo paths (modality "image") or, failing that, a column
called text/sentence/review or of sentences of several words ("text"; each row's sentence
is the item, ``ColumnsItem.text``).

Paths in the table are hostile: a photo must lie inside the table's folder (``..`` and
absolute paths elsewhere are refused, listed and skipped). Cells that a spreadsheet would
run as a formula are read as plain text, never evaluated, and said.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlcore.data.csv_safe import FORMULA_STARTS
from tlcore.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TAG_SEPARATORS = (";", "|", ",")  # in the order a tie is broken
MAX_TAGS = 100  # a tag column with more distinct tags is left out (too few photos per tag)
ITEM_NAMES = ("image", "photo", "path", "file", "filename", "picture")
TEXT_NAMES = ("text", "sentence", "review", "comment", "message")
ITEM_WORDS = {"image": "photos", "text": "texts"}
SHOWN = 5  # names listed per problem line


@dataclass
class ColumnTask:
    """One label column learned as a task: ``kind`` "one-of" (one class per item) or
    "tags" (any number of tags, split on ``separator``)."""

    name: str
    kind: str
    classes: list[str]
    separator: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # class or tag -> items
    labelled: int = 0  # items with a non-blank cell


@dataclass
class ColumnsItem:
    """One photo (its absolute path) or sentence (``text``; its ``path`` names its row): its
    split, its group, and per task its label (a class index; for tags a list of tag
    indices; None when not labelled)."""

    path: str
    split: str
    labels: dict[str, Any]
    group: str | None = None
    text: str | None = None


@dataclass
class ColumnsData:
    """Everything a multitask run trains on, frozen in one JSON file (``columns.json``)."""

    source: str
    item_column: str
    tasks: list[ColumnTask]
    items: list[ColumnsItem]
    group: str | None = None
    groups: dict[str, int] = field(default_factory=dict)  # split -> groups on that side
    problems: list[str] = field(default_factory=list)
    seed: int = 0
    val_fraction: float = 0.2
    modality: str = "image"

    def task(self, name: str) -> ColumnTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise DataError(
            f"no task called {name!r} (tasks: {', '.join(t.name for t in self.tasks)})."
        )

    def items_for(self, split: str) -> list[ColumnsItem]:
        return [item for item in self.items if item.split == split]

    def summary(self) -> str:
        """What was read, in a few lines (the CLI prints them)."""
        lines = [f"{len(self.items)} {ITEM_WORDS.get(self.modality, 'items')}, {len(self.items_for('train'))} train / "
                 f"{len(self.items_for('val'))} validation."]  # fmt: skip
        if self.group:
            lines.append(f"grouped by {self.group!r}: {self.groups.get('train', 0)} groups in "
                         f"train, {self.groups.get('val', 0)} in validation (none on both sides).")  # fmt: skip
        for task in self.tasks:
            what = (f"tags separated by {task.separator!r}" if task.kind == "tags"
                    else "one of")  # fmt: skip
            counts = ", ".join(f"{c} {n}" for c, n in task.counts.items())
            lines.append(f"task {task.name!r} ({what}, {task.labelled} labelled): {counts}")
        lines.extend(f"note: {p}" for p in self.problems)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnsData:
        try:
            tasks = [ColumnTask(**t) for t in data["tasks"]]
            items = [ColumnsItem(**i) for i in data["items"]]
            rest = {k: v for k, v in data.items() if k not in ("tasks", "items")}
            return cls(tasks=tasks, items=items, **rest)
        except (KeyError, TypeError) as exc:
            raise DataError(f"The columns file is incomplete or malformed ({exc!r}).") from None

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> ColumnsData:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# -- reading the table ---------------------------------------------------------------------------
def is_table(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES and Path(path).is_file()


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows as text (every cell stripped; a short row padded)."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            import openpyxl
        except ImportError:
            raise DataError(
                "reading .xlsx needs openpyxl: pip install openpyxl, or save as CSV."
            ) from None
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=False)
        except Exception as exc:  # noqa: BLE001 - a broken or foreign file, in one line
            raise DataError(
                f"cannot read {path.name} as a spreadsheet ({type(exc).__name__})."
            ) from None
        sheet = book.worksheets[0]
        rows = [["" if c is None else str(c).strip() for c in row]
                for row in sheet.iter_rows(values_only=True)]  # fmt: skip
        book.close()
    else:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        delimiter = "\t" if suffix == ".tsv" else ","
        rows = [
            [c.strip() for c in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)
        ]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2:
        raise DataError(f"{path.name} has no rows under its header.")
    header = [h or f"column {i + 1}" for i, h in enumerate(rows[0])]
    width = len(header)
    body = [(row + [""] * width)[:width] for row in rows[1:]]
    return header, body


def names_photos(path: str | Path) -> bool:
    """A .csv/.tsv/.xlsx with a column of photo paths and at least one other column: a table
    of labels (a sentences CSV has no such column)."""
    if not is_table(path):
        return False
    try:
        header, rows = read_table(Path(path))
    except DataError:
        return False
    return len(header) > 1 and any(
        sum(r[i].lower().endswith(IMAGE_SUFFIXES) for r in rows) >= 0.8 * len(rows)
        for i in range(len(header))
    )


def is_sentence_table(path: str | Path) -> bool:
    """A table whose items are sentences with SEVERAL learnable label columns (a ``text,label``
    file is one label per text, read by ``tlcore.data.text_source``)."""
    if not is_table(path):
        return False
    try:
        data = read_columns(path)
    except DataError:
        return False
    return data.modality == "text" and len(data.tasks) >= 2


def find_table(folder: str | Path, depth: int = 2) -> Path | None:
    """The table of labels in an unpacked upload: the first .csv/.tsv/.xlsx naming photos, at
    the top of ``folder`` or up to ``depth`` folders down (a zip often wraps one folder)."""
    root = Path(folder)
    for level in range(depth + 1):
        pattern = "/".join(["*"] * (level + 1))
        for path in sorted(root.glob(pattern)):
            if not path.is_symlink() and names_photos(path):
                return path
    return None


def table_columns(path: str | Path) -> tuple[str, list[str]]:
    """The column naming the photos and every other column (label or group candidates)."""
    header, rows = read_table(Path(path))
    at, _ = item_column(header, rows)
    return header[at], [h for i, h in enumerate(header) if i != at]


def item_column(header: Sequence[str], rows: Sequence[Sequence[str]]) -> tuple[int, str]:
    """The column naming the item and its modality: the first whose cells are mostly image
    file names ("image"), else a column called text/sentence/review, or whose cells are
    mostly sentences of several words ("text")."""
    for i in range(len(header)):
        cells = [row[i] for row in rows if row[i]]
        photos = sum(c.lower().endswith(IMAGE_SUFFIXES) for c in cells)
        if cells and photos >= 0.8 * len(cells):
            return i, "image"
    for i, name in enumerate(header):
        if name.strip().lower() in ITEM_NAMES:
            return i, "image"
    for i, name in enumerate(header):
        if name.strip().lower() in TEXT_NAMES:
            return i, "text"
    for i in range(len(header)):
        cells = [row[i] for row in rows if row[i]]
        if cells and sum(len(c.split()) >= 3 for c in cells) >= 0.8 * len(cells):
            return i, "text"
    raise DataError("no column names photos (a column of paths such as images/1.jpg, relative "
                    "to the table) or holds sentences (a column called text).")  # fmt: skip


def tag_separator(cells: Sequence[str]) -> tuple[str | None, bool]:
    """The separator of a tag column (None: one value per cell) and whether several
    separators were mixed. A separator counts when at least 10% of cells hold it."""
    found = {sep: sum(sep in c for c in cells) for sep in TAG_SEPARATORS}
    used = [sep for sep, n in found.items() if n and n >= 0.1 * len(cells)]
    if not used:
        return None, False
    best = max(used, key=lambda sep: (found[sep], -TAG_SEPARATORS.index(sep)))
    return best, len([s for s, n in found.items() if n]) > 1


def _shown(names: Sequence[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(repr(n) for n in names[:SHOWN]) + more


def _inside(root: Path, cell: str) -> Path | None:
    """The photo's absolute path when it lies inside ``root``; None for one outside."""
    path = (root / cell).resolve()
    return path if path.is_relative_to(root) else None


def read_columns(
    source: str | Path,
    tasks: Sequence[str] | None = None,
    group: str | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> ColumnsData:
    """Read a table of labels into ``ColumnsData`` (DataError in words when it cannot be used)."""
    path = Path(source)
    if not is_table(path):
        raise DataError(f"{path} is not a .csv, .tsv or .xlsx file.")
    if not 0 < val_fraction < 1:
        raise DataError("the validation fraction must be between 0 and 1.")
    root = path.parent.resolve()
    header, rows = read_table(path)
    problems: list[str] = []
    if len(set(header)) < len(header):
        twice = [h for h, n in Counter(header).items() if n > 1]
        raise DataError(
            f"column names appear twice: {_shown(twice)}; give each column its own name."
        )
    item_at, modality = item_column(header, rows)
    if group is not None and group not in header:
        raise DataError(f"no group column {group!r} (columns: {', '.join(header)}).")
    candidates = [h for i, h in enumerate(header) if i != item_at and h != group]
    if tasks:
        unknown = [t for t in tasks if t not in header or t == header[item_at] or t == group]
        if unknown:
            raise DataError(
                f"no label column {_shown(unknown)} (label columns: {', '.join(candidates)})."
            )
        candidates = list(dict.fromkeys(tasks))

    formula = sorted({c for row in rows for c in row if c.startswith(FORMULA_STARTS)
                      and not _number(c)})  # fmt: skip
    if formula:
        problems.append(f"{len(formula)} cells look like spreadsheet formulas ({_shown(formula)}): "
                        "read as plain text, never run.")  # fmt: skip

    # rows: inside the folder, present, once (a sentence is its own item: nothing to find)
    outside, missing, conflicts, seen = [], [], [], {}
    kept: list[tuple[Path | str, list[str]]] = []
    duplicates = 0
    for row in rows:
        cell = row[item_at]
        if not cell:
            continue
        photo = cell if modality == "text" else _inside(root, cell)
        if photo is None:
            outside.append(cell)
            continue
        if isinstance(photo, Path) and not photo.is_file():
            missing.append(cell)
            continue
        if str(photo) in seen:
            if seen[str(photo)] == row:
                duplicates += 1
            else:
                conflicts.append(cell)
            continue
        seen[str(photo)] = row
        kept.append((photo, row))
    if outside:
        problems.append(
            f"{len(outside)} paths point outside the table's folder, skipped: {_shown(outside)}."
        )
    if missing:
        problems.append(f"{len(missing)} photos listed but not found, skipped: {_shown(missing)}.")
    if duplicates:
        problems.append(f"{duplicates} duplicate rows, kept once.")
    if conflicts:
        problems.append(f"{len(conflicts)} {ITEM_WORDS[modality]} listed twice with different labels, the first "
                        f"row kept: {_shown(conflicts)}.")  # fmt: skip
    if not kept:
        raise DataError(f"no photo of {path.name} could be read inside its folder."
                        if modality == "image" else f"{path.name} holds no text.")  # fmt: skip

    column_tasks: list[ColumnTask] = []
    for name in candidates:
        at = header.index(name)
        cells = [row[at] for _, row in kept if row[at]]
        task = _column_task(name, cells, problems, asked=bool(tasks))
        if task is not None:
            column_tasks.append(task)
    if not column_tasks:
        raise DataError(f"no label column of {path.name} can be learned (see the notes above): "
                        + " ".join(problems))  # fmt: skip

    items = []
    for n, (photo, row) in enumerate(kept, 1):
        labels = {t.name: _label(t, row[header.index(t.name)]) for t in column_tasks}
        groups = row[header.index(group)] if group else None
        if modality == "text":
            items.append(ColumnsItem(f"text {n}", "train", labels, groups or None, str(photo)))
        else:
            items.append(ColumnsItem(str(photo), "train", labels, groups or None))
    data = ColumnsData(str(path.resolve()), header[item_at], column_tasks, items, group,
                       problems=problems, seed=seed, val_fraction=val_fraction,
                       modality=modality)  # fmt: skip
    _split(data)
    return data


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _column_task(
    name: str, cells: list[str], problems: list[str], asked: bool
) -> ColumnTask | None:
    """The task of one column, or None (with a line in ``problems``) when it cannot be learned."""
    separator, mixed = tag_separator(cells)
    if separator is None:
        counts = Counter(cells)
        if len(counts) < 2:
            problems.append(f"column {name!r} has {'one value only' if counts else 'no values'}"
                            f"{f' ({next(iter(counts))!r})' if counts else ''}: nothing to learn, left out.")  # fmt: skip
            return None
        if len(counts) > MAX_TAGS:
            problems.append(f"column {name!r} has {len(counts)} distinct values (more than "
                            f"{MAX_TAGS}): too few photos per class, left out.")  # fmt: skip
            return None
        classes = sorted(counts)
        return ColumnTask(
            name, "one-of", classes, None, {c: counts[c] for c in classes}, len(cells)
        )
    if mixed:
        problems.append(f"column {name!r} mixes tag separators; split on {separator!r} (the most "
                        "common), the others are kept inside tags.")  # fmt: skip
    tags = Counter(t for c in cells for t in {x.strip() for x in c.split(separator)} if t)
    if len(tags) > MAX_TAGS:
        problems.append(f"column {name!r} has {len(tags)} distinct tags (more than {MAX_TAGS}): "
                        "too few photos per tag, left out.")  # fmt: skip
        return None
    if len(tags) < 1:
        problems.append(f"column {name!r} has no tags: left out.")
        return None
    classes = sorted(tags)
    return ColumnTask(name, "tags", classes, separator, {c: tags[c] for c in classes}, len(cells))


def _label(task: ColumnTask, cell: str) -> Any:
    if not cell:
        return None  # not labelled for this task
    if task.kind == "tags":
        assert task.separator is not None
        return sorted(
            {task.classes.index(t) for t in (x.strip() for x in cell.split(task.separator)) if t}
        )
    return task.classes.index(cell)


def _split(data: ColumnsData) -> None:
    """Validation gets whole groups (seeded) until it holds ``val_fraction`` of the items;
    an item without a group is a group of its own."""
    rng = random.Random(data.seed)
    groups: dict[str, list[ColumnsItem]] = {}
    for i, item in enumerate(data.items):
        key = f"g\0{item.group}" if data.group and item.group else f"i\0{i}"
        groups.setdefault(key, []).append(item)
    if data.group and all(k.startswith("i\0") for k in groups):
        data.problems.append(f"the group column {data.group!r} is empty: split photo by photo.")
    order = sorted(groups)
    rng.shuffle(order)
    want = max(1, round(data.val_fraction * len(data.items)))
    in_val, counted = 0, {"train": 0, "val": 0}
    for key in order:
        side = (
            "val" if in_val < want and len(groups[key]) <= max(1, 2 * (want - in_val)) else "train"
        )
        for item in groups[key]:
            item.split = side
        in_val += len(groups[key]) if side == "val" else 0
        counted[side] += 1
    if not data.items_for("train") or not data.items_for("val"):
        raise DataError("the split left one side empty: add photos or groups.")
    data.groups = counted if data.group else {}
