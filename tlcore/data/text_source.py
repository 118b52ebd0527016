"""Labelled sentences: a ``text,label`` CSV or one folder of ``.txt`` files per label.

The text twin of scan + report + manifest for photos: read what the user gave,
say in words what is wrong (empty or very long texts, exact duplicates, the
same text under two labels, imbalance, bytes that are not UTF-8), and split it
with the same seeded, stratified ``make_split`` photos use, duplicates kept in
one split. The texts travel inside the manifest (``ManifestItem.text``), so a
run holds exactly the sentences it trained on even if the CSV changes later.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tlcore.data.manifest import Manifest, folder_manifest, make_split
from tlcore.data.report import (
    FEW_IMAGES,
    IMBALANCE_RATIO,
    Problem,
    ValidationReport,
    look_alike_problems,
)
from tlcore.data.scan import quoted
from tlcore.errors import DataError

TEXT_COLUMNS = ("text", "sentence", "review", "content", "message", "document")
LABEL_COLUMNS = ("label", "class", "category", "target", "sentiment")
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
LONG_WORDS = 100  # about 128 word pieces: longer texts are cut (see text_models.DEFAULT_MAX_TOKENS)
MAX_CSV_BYTES = 200_000_000
MAX_LISTED = 5
MAX_FIELD_CHARS = 10_000_000
csv.field_size_limit(MAX_FIELD_CHARS)
# Characters that show nothing: a text made only of these (and spaces) is empty
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # Hangul fillers, braille blank


@dataclass
class TextExample:
    """One usable labelled text and where it came from (``file.csv:LINE`` or a .txt path)."""

    path: str
    class_name: str
    text: str
    key: str  # the text with case and spacing normalised, hashed: equal keys are duplicates
    split: str | None = None  # from train/ val/ test/ folders, as photos' split folders


@dataclass
class TextReport(ValidationReport):
    """A ``ValidationReport`` for texts: the same problems/counts/trainable, plus the texts."""

    examples: list[TextExample] = field(default_factory=list, repr=False)
    modality: str = "text"
    words: dict[str, float] = field(default_factory=dict)  # min / median / max words per text

    def to_dict(self) -> dict:
        return {**super().to_dict(), "modality": "text", "words": self.words}


def is_text_source(source: str | Path) -> bool:
    """A .csv/.tsv file, or a folder whose files are .txt (and no images): the text wing's."""
    path = Path(source)
    if path.is_file():
        return path.suffix.lower() in (".csv", ".tsv")
    if not path.is_dir():
        return False
    from tlcore.data.images import is_image_file

    seen_txt = False
    for n, file in enumerate(path.rglob("*")):
        if n > 5000:
            break
        if file.is_file() and not file.name.startswith("."):
            if is_image_file(file):
                return False
            seen_txt = seen_txt or file.suffix.lower() == ".txt"
    return seen_txt


def text_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.casefold().split()).encode("utf-8")).hexdigest()


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:MAX_LISTED])
    return shown + (f" and {len(numbers) - MAX_LISTED} more" if len(numbers) > MAX_LISTED else "")


def visible(text: str) -> bool:
    """True when ``text`` shows something: not only spaces and invisible characters (a
    zero-width space, a byte-order mark, a soft hyphen, controls), which are no example."""
    return any(
        not (ch.isspace() or ch in _BLANK_LETTERS or unicodedata.category(ch) in ("Cf", "Cc"))
        for ch in text
    )


def _pick(header: list[str], wanted: tuple[str, ...]) -> int | None:
    names = [h.strip().lstrip("\ufeff").casefold() for h in header]
    return next((names.index(w) for w in wanted if w in names), None)


def read_csv(path: Path, problems: list[Problem]) -> list[TextExample]:
    """Rows of a text,label CSV; rows that cannot be used are counted into ``problems``."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DataError(f"{path.name} is larger than {MAX_CSV_BYTES // 1_000_000} MB.")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text": UTF-16 with a BOM
        content = raw.decode("utf-16", errors="replace")
        problems.append(
            Problem("info", "utf16", f"{path.name} is UTF-16 text; it was read as such.")
        )
    elif b"\x00" in raw[:4096]:
        raise DataError(f"{path.name} is not a text file (it holds binary data): give a CSV.")
    else:  # surrogateescape keeps bytes that are not UTF-8 visible as lone surrogates, row by row
        content = raw.decode("utf-8", errors="surrogateescape")
    content = content.removeprefix("\ufeff")
    # Lines end only at \n, \r or \r\n, as the csv module reads a file opened with newline="":
    # str.splitlines would also end one at U+2028, U+0085 or a form feed inside a text.
    lines = io.StringIO(content, newline="").readlines()
    delimiter = _delimiter(path, content)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"{path.name} is not a readable CSV ({exc}).") from None
    if not header:
        raise DataError(f"{path.name} is empty: it needs a header line 'text,label' and rows.")
    text_col, label_col = _pick(header, TEXT_COLUMNS), _pick(header, LABEL_COLUMNS)
    if text_col is None or label_col is None:
        found = ", ".join(repr(h.strip()[:40]) for h in header[:8])
        raise DataError(
            f"{path.name} needs a 'text' and a 'label' column in its first line (found {found})."
        )
    bad_bytes, empty, no_label, short_rows = [], [], [], []
    examples: list[TextExample] = []
    spans: list[tuple[int, int]] = []  # rows written over several lines: first and last line
    start = line = reader.line_num + 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if reader.line_num > line:
                spans.append((line, reader.line_num))
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(text_col, label_col):
                short_rows.append(line)
                continue
            text, label = row[text_col].strip(), row[label_col].strip()
            if _has_bad_bytes(text) or _has_bad_bytes(label):
                bad_bytes.append(line)
            elif not visible(text):
                empty.append(line)
            elif not visible(label):
                no_label.append(line)
            else:
                examples.append(TextExample(f"{path}:{line}", label, text, text_key(text)))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):  # a quote that never closes, in a big file
            raise DataError(f"{path.name} line {start}: a quote (\") opens a text that runs on "
                            f"for more than {MAX_FIELD_CHARS:,} characters; close the quote or "
                            "remove it.") from None  # fmt: skip
        raise DataError(f"{path.name} line {reader.line_num}: not valid CSV ({exc}).") from None
    labels = {e.class_name for e in examples}
    _check_quotes(path.name, lines, spans, delimiter, (len(header), label_col, labels))
    name = path.name
    for lines, code, what in (
        (bad_bytes, "not_utf8", "are not UTF-8 text (save the file as UTF-8)"),
        (empty, "empty_text", "have an empty text"),
        (no_label, "no_label", "have no label"),
        (short_rows, "short_row", "have fewer columns than the header"),
    ):
        if lines:
            problems.append(Problem("warning", code, f"{len(lines)} rows of {name} {what}, so "
                                    f"they are left out (lines {_lines(lines)}).", [f"{path}:{n}" for n in lines]))  # fmt: skip
    return examples


def _check_quotes(
    name: str,
    lines: list[str],
    spans: list[tuple[int, int]],
    delimiter: str,
    row: tuple[int, int, set[str]],
) -> None:
    """DataError naming the line of a stray quote: one that never closes (the csv module
    then reads the rest of the file as one text), or one that a later stray quote closes,
    so that rows in between became one text (lines that, read alone, are rows of their
    own: ``row`` is the header's number of columns, the label's column and the labels).

    A text written over several lines inside quotes, as spreadsheets save one, passes.
    """
    for first, last in spans:
        record = lines[first - 1 : last]
        try:
            list(csv.reader(record, delimiter=delimiter, strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise DataError(
                    f'{name} line {first}: a quote (") opens a text that is never closed, so '
                    f"lines {first}-{last} (the rest of the file) would be one text; close the "
                    "quote or remove it."
                ) from None
        rows = [ln for ln in record if _looks_like_row(ln, delimiter, *row)]
        if rows:
            raise DataError(
                f'{name} line {first}: a quote (") opens a text that runs to line {last}, '
                f"taking in {len(rows)} lines that look like rows of their own; close the quote "
                f"on line {first} or remove it."
            )


def _looks_like_row(
    line: str, delimiter: str, columns: int, label_col: int, labels: set[str]
) -> bool:
    """A line that, read alone, has the header's columns and a known label in its place."""
    try:
        cells = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return False
    return len(cells) == columns and cells[label_col].strip() in labels


def _delimiter(path: Path, content: str) -> str:
    """Tab for .tsv; else what the header line uses: ',' or the ';' of European Excel exports."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    first = content.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] and not counts[","] else ","


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_text_folder(root: Path, problems: list[Problem]) -> list[TextExample]:
    """``root/<label>/*.txt`` (or ``root/train|val|test/<label>/*.txt``): one example a file."""
    examples: list[TextExample] = []
    bad, empty = [], []
    for file in sorted(root.rglob("*.txt")):
        rel = file.relative_to(root)
        if len(rel.parts) < 2 or any(part.startswith((".", "__MACOSX")) for part in rel.parts):
            continue
        try:
            text = file.read_bytes().decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            bad.append(rel.as_posix())
            continue
        except OSError:
            bad.append(rel.as_posix())
            continue
        if not visible(text):
            empty.append(rel.as_posix())
            continue
        split = SPLIT_FOLDERS.get(rel.parts[0].lower()) if len(rel.parts) >= 3 else None
        label = rel.parts[1] if split else rel.parts[0]
        examples.append(TextExample(str(file), label, text, text_key(text), split))
    for files, code, what in ((bad, "not_utf8", "are not readable UTF-8 text"),
                              (empty, "empty_text", "are empty")):  # fmt: skip
        if files:
            shown = ", ".join(files[:MAX_LISTED])
            problems.append(Problem("warning", code, f"{len(files)} .txt files {what}, so they "
                                    f"are left out ({shown}).", files))  # fmt: skip
    return examples


def build_text_report(source: str | Path) -> TextReport:
    """Read ``source`` (CSV or folder) and describe it; errors make it untrainable."""
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise DataError(f"{source} does not exist; give a text,label CSV or a folder of .txt.")
    problems: list[Problem] = []
    if source.is_file():
        examples, layout = read_csv(source, problems), "csv"
    else:
        examples, layout = read_text_folder(source, problems), "text_folders"
    n_found = len(examples) + sum(len(p.files) for p in problems)
    examples = _drop_conflicts(examples, problems)
    _note_duplicates(examples, problems)
    totals = Counter(e.class_name for e in examples)
    classes = sorted(totals)
    _class_checks(classes, totals, problems, n_rows=len(examples))
    problems.extend(look_alike_problems(classes, "Labels"))
    words = sorted(len(e.text.split()) for e in examples)
    long = [e.path for e in examples if len(e.text.split()) > LONG_WORDS]
    if long:
        problems.append(Problem("info", "long_text", f"{len(long)} texts are longer than about "
                                f"{LONG_WORDS} words; only their beginning (the first word pieces "
                                "the model reads) is used.", long))  # fmt: skip
    order = {"error": 0, "warning": 1, "info": 2}
    problems.sort(key=lambda p: order[p.severity])
    given = any(e.split == "val" for e in examples)  # a val/ folder: used as given
    counts: dict[str, dict[str, int]] = {}
    for e in examples:
        per = counts.setdefault((e.split or "train") if given else "all", dict.fromkeys(classes, 0))
        per[e.class_name] += 1
    return TextReport(
        root=str(source), layout=layout, classes=classes, counts=counts, problems=problems,
        split_source="folders" if given else "random",
        n_found=n_found, n_usable=len(examples), examples=examples,
        words={"min": words[0], "median": words[len(words) // 2], "max": words[-1]} if words else {},
    )  # fmt: skip


def _drop_conflicts(examples: list[TextExample], problems: list[Problem]) -> list[TextExample]:
    """The same text under two labels teaches nothing and poisons the score: drop every copy."""
    labels: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        labels[e.key].add(e.class_name)
    clash = {k for k, ls in labels.items() if len(ls) > 1}
    if not clash:
        return examples
    dropped = [e for e in examples if e.key in clash]
    sample = next(e for e in dropped)
    problems.append(Problem("warning", "conflicting_labels", f"{len(clash)} texts appear under "
                            f"two or more labels (e.g. {_quote(sample.text)} as "
                            f"{', '.join(quoted(x) for x in sorted(labels[sample.key]))}), so all "
                            f"{len(dropped)} copies are left out.", [e.path for e in dropped]))  # fmt: skip
    return [e for e in examples if e.key not in clash]


def _note_duplicates(examples: list[TextExample], problems: list[Problem]) -> None:
    copies = Counter(e.key for e in examples)
    repeated = [e for e in examples if copies[e.key] > 1]
    if repeated:
        n_texts = len({e.key for e in repeated})
        problems.append(Problem("warning", "duplicates", f"{n_texts} texts appear more than once "
                                f"(ignoring case and spacing; {len(repeated)} rows, e.g. "
                                f"{_quote(repeated[0].text)}). Copies are kept in the same split, "
                                "so validation never sees a text it trained on.",
                                [e.path for e in repeated]))  # fmt: skip


def _quote(text: str, limit: int = 60) -> str:
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(re.sub(r"\s+", " ", short))


def _class_checks(
    classes: list[str], totals: Counter, problems: list[Problem], n_rows: int
) -> None:
    def add(severity: str, code: str, message: str) -> None:
        problems.append(Problem(severity, code, message))

    if not classes:
        add("error", "no_texts", "No usable labelled texts were found: give a CSV with a "
            "header 'text,label' and one example a row, or one folder of .txt files per label.")  # fmt: skip
        return
    if len(classes) == 1:
        add("error", "one_class", f"Only one label ({quoted(classes[0])}) has texts; a classifier "
            "needs at least two labels.")  # fmt: skip
        return
    if n_rows >= 20 and len(classes) > n_rows / 2:
        add("error", "too_many_labels", f"The label column has {len(classes)} different values "
            f"for {n_rows} texts: is it the right column? Each label needs several examples.")  # fmt: skip
        return
    for c in classes:
        if totals[c] == 1:
            add("error", "class_too_small", f"Label {quoted(c)} has only 1 text; it needs at "
                "least 2 to be split into training and validation.")  # fmt: skip
        elif totals[c] < FEW_IMAGES:
            add("warning", "few_examples", f"Label {quoted(c)} has only {totals[c]} texts; results "
                f"will be unreliable below about {FEW_IMAGES} per label.")  # fmt: skip
    big, small = max(classes, key=totals.get), min(classes, key=totals.get)
    if totals[big] > IMBALANCE_RATIO * totals[small]:
        add("warning", "imbalance", f"Labels are imbalanced: {quoted(big)} has {totals[big]} "
            f"texts and {quoted(small)} only {totals[small]}; consider class-balanced "
            "training.")  # fmt: skip


def text_manifest(report: TextReport, *, val_fraction: float = 0.2, seed: int = 0) -> Manifest:
    """The seeded stratified split of a trainable report, texts inside; duplicates together."""
    if not report.trainable:
        raise DataError(f"The texts cannot be trained on: {report.reason}")
    if report.split_source == "folders":
        given = [(e.path, e.class_name, e.split or "train") for e in report.examples]
        manifest = folder_manifest(report.root, report.classes, given)
    else:
        samples = [(e.path, e.class_name) for e in report.examples if e.split != "test"]
        tests = [(e.path, e.class_name) for e in report.examples if e.split == "test"]
        groups = {e.path: e.key for e in report.examples}
        manifest = make_split(report.root, report.classes, samples, val_fraction=val_fraction,
                              seed=seed, groups=groups, test_samples=tests)  # fmt: skip
    text_of = {e.path: e.text for e in report.examples}
    for item in manifest.items:
        item.text = text_of[item.path]
    manifest.modality = "text"
    return manifest
