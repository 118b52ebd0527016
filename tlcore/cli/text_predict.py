"""``tlcore predict`` for a text model: sentences on the command line, or .txt / CSV files.

``tlcore predict RUN "some sentence" --json`` scores the sentence itself; an
argument that names an existing ``.txt``, ``.csv`` or ``.tsv`` file is read
instead (a CSV's ``text`` column, one text a row). ``--why`` adds the words
that pushed each decision (integrated gradients, ``tlcore.results.text_explain``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from tlcore.cli import print_json
from tlcore.data.scan import printable
from tlcore.errors import ConfigError, DataError, TLCoreError

TEXT_FILES = (".txt", ".csv", ".tsv")


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


def texts_from_args(values: list[str]) -> list[str]:
    """Each argument is a sentence, unless it names a .txt/.csv/.tsv file to read texts from."""
    from tlcore.results.text_predict import read_texts

    texts: list[str] = []
    for value in values:
        path = Path(value)
        if path.suffix.lower() in TEXT_FILES and path.is_file():
            texts.extend(read_texts(path.name, path.read_bytes()))
        else:
            texts.append(value)
    return texts


def cmd_predict_text(args: argparse.Namespace, k: int) -> int:
    """Predict sentences with a text run or bundle; --csv writes text,label,probability,top."""
    from tlcore.runs.scoring import load_model

    texts = texts_from_args(args.paths)
    if not texts:
        raise DataError("no texts to predict: give a sentence, or a .txt or .csv file.")
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
    from tlcore.results.text_predict import text_predictions_csv

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text_predictions_csv(results), encoding="utf-8", newline="")
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write --csv {out}: {exc.strerror or exc}.") from None
