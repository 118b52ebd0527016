"""``tlcore predict`` for a text model: sentences on the command line, or .txt / CSV files.

``tlcore predict RUN "some sentence" --json`` scores the sentence itself; an
argument that names an existing ``.txt``, ``.csv`` or ``.tsv`` file is read
instead (a CSV's ``text`` column, one text a row). An argument that looks like a
file name (``reviews_typo.csv``, ``data/x``) but is not a readable regular file is an
error, never a sentence to classify; ``--text`` takes every argument as a sentence.
``--why`` adds the words that pushed each decision (integrated gradients,
``tlcore.results.text_explain``).
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from pathlib import Path

from tlcore.cli import print_json
from tlcore.data.scan import printable
from tlcore.errors import DataError, TLCoreError

TEXT_FILES = (".txt", ".csv", ".tsv")
MAX_TEXT_FILE_BYTES = 200_000_000  # far above any list of sentences
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")  # ".csv", ".jpeg": not "9.99" or "end."


def is_text_model_source(source: str) -> bool:
    """True when RUN (a run id/folder) or a bundle holds a text model; False when unsure."""
    from tlcore.models.text_catalog import is_text_model
    from tlcore.results.bundle_format import is_bundle, read_bundle

    try:
        if is_bundle(source):
            return read_bundle(source)[0].get("modality") == "text"
        from tlcore.runs.run import Run

        return is_text_model(Run.open(source).config.model)
    except TLCoreError:
        return False  # the photo path says what is wrong with it


def looks_like_path(value: str) -> bool:
    """A file name rather than a sentence: one word with a slash or a file extension
    (``reviews_typo.csv``, ``data/reviews``), or words ending in a text file's extension
    (``my reviews.csv``). "I paid 9.99", "Great." and "see example.com today" are sentences."""
    if "\n" in value or not value.strip():
        return False
    if not any(c.isspace() for c in value):
        return "/" in value or os.sep in value or bool(_EXTENSION.search(value))
    return value.lower().endswith(TEXT_FILES)


def text_file(value: str) -> Path:
    """The regular, readable .txt/.csv/.tsv file ``value`` names; DataError saying why not
    (missing, a pipe or device, a folder, another kind of file, too large)."""
    path = Path(value)
    hint = "; to predict it as a sentence, add --text."
    try:
        info = os.stat(path)  # through a link: a link to /dev/zero is a device
    except OSError as exc:
        raise DataError(f"{value} looks like a file name but cannot be read "
                        f"({exc.strerror or exc}){hint}") from None  # fmt: skip
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a pipe, device or socket"
        raise DataError(f"{value} is {kind}, not a file of texts{hint}")
    if path.suffix.lower() not in TEXT_FILES:
        raise DataError(f"{value} is not a .txt, .csv or .tsv file of texts{hint}")
    if info.st_size > MAX_TEXT_FILE_BYTES:
        raise DataError(f"{value} is {info.st_size / 1e6:,.0f} MB, more than the "
                        f"{MAX_TEXT_FILE_BYTES // 1_000_000} MB a file of texts may hold.")  # fmt: skip
    return path


def texts_from_args(values: list[str], all_text: bool = False) -> tuple[list[str], list[Path]]:
    """(texts, the files they were read from): each argument is a sentence, unless it looks
    like a file name (then it must be a .txt/.csv/.tsv file). ``all_text``: all sentences."""
    from tlcore.results.text_predict import read_texts

    texts: list[str] = []
    files: list[Path] = []
    for value in values:
        if all_text or not looks_like_path(value):
            texts.append(value)
            continue
        path = text_file(value)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{value} cannot be read ({exc.strerror or exc}).") from None
        texts.extend(read_texts(path.name, data))
        files.append(path)
    return texts, files


def cmd_predict_text(args: argparse.Namespace, k: int) -> int:
    """Predict sentences with a text run or bundle; --csv writes text,label,probability,top."""
    from tlcore.cli.csv_output import check_csv_target
    from tlcore.runs.scoring import load_model

    texts, files = texts_from_args(args.paths, getattr(args, "text", False))
    if not texts:
        raise DataError("no texts to predict: give a sentence, or a .txt or .csv file.")
    if args.csv:
        check_csv_target(Path(args.csv), files)  # never over the CSV the texts came from
    predictor = load_model(args.model, checkpoint=args.checkpoint)
    results = predictor.predict_texts(texts, k)
    why = []
    if getattr(args, "why", False):
        from tlcore.results.text_explain import explain_text

        why = [explain_text(predictor, r.path) if not r.error else None for r in results]
    if args.csv:
        _write_csv(results, Path(args.csv))
    for n, result in enumerate(results):
        if args.json:
            row = result.to_dict() | {"text": result.path}
            if why and why[n] is not None:
                row["why"] = why[n].to_dict()
            print_json(row)
        elif result.error:
            print(printable(f"{result.path[:80]}: error: {result.error}"))
        else:
            tops = ", ".join(f"{name} {p:.1%}" for name, p in result.top)
            print(printable(f"{result.path[:80]}: {tops}"))
            if why and why[n] is not None:
                print(printable(f"  why: {why[n].text_summary()}"))
    if not args.json:
        errors = sum(1 for r in results if r.error)
        print(f"{len(results) - errors} predicted, {errors} empty.", file=sys.stderr)
    return 0


def _write_csv(results: list, out: Path) -> None:
    from tlcore.cli.csv_output import write_csv_text
    from tlcore.results.text_predict import text_predictions_csv

    write_csv_text(text_predictions_csv(results), out)
