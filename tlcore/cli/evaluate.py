"""``tlcore evaluate`` and ``tlcore predict``: a trained run's report card, and its guesses.

``predict`` takes files and folders (searched recursively for images); a file that
cannot be read gets an error entry of its own and the others still get a label,
so one bad photo never costs a whole batch. Exit code 0 as long as the command
itself worked, even when some files were errors (they are in the output).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tlcore.cli import print_json
from tlcore.errors import ConfigError, DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add evaluate and predict."""
    p = subparsers.add_parser(
        "evaluate",
        help="per-class precision/recall/F1 of a run on its validation images",
        description="Score a run's checkpoint on the validation split of the run's own data.",
    )
    p.add_argument("run", metavar="RUN", help="run id (see `tlcore runs`) or run folder")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which saved model to score (default best)")  # fmt: skip
    p.add_argument("--split", choices=("val", "train", "test"), default="val",
                   help="which images of the run's data (default val)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "predict",
        help="classify images with a trained run or an exported bundle",
        description="Print the top classes of each image; folders are searched for images.",
    )
    p.add_argument("model", metavar="RUN", help="run id or folder, or an exported bundle folder")
    p.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="for a run: which saved model (default best)")  # fmt: skip
    p.add_argument(
        "--top-k", default="3", metavar="K", help="classes to list per image (default 3)"
    )
    p.add_argument("--csv", metavar="OUT", help="also write one row per image to this CSV file")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.set_defaults(func=cmd_predict)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tlcore.runs.scoring import evaluate_run

    report = evaluate_run(args.run, checkpoint=args.checkpoint, split=args.split)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"Evaluated {report.source}.")
    print(report.text())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tlcore.data.images import images_in
    from tlcore.runs.scoring import load_model

    try:
        k = int(args.top_k)
    except ValueError:
        raise ConfigError(
            f"--top-k {args.top_k!r} is not valid: give a whole number >= 1."
        ) from None
    if k < 1:
        raise ConfigError(f"--top-k {k} is not valid: give a whole number >= 1.")
    files = images_in(args.paths)
    if not files:
        raise DataError(f"no images found in {', '.join(args.paths)}.")
    predictor = load_model(args.model, checkpoint=args.checkpoint)
    results = predictor.predict_files(files, k=k)
    if args.csv:
        write_csv(results, Path(args.csv))
    for result in results:
        if args.json:
            print_json(result.to_dict())
        elif result.error:
            print(f"{result.path}: error: {result.error}")
        else:
            tops = ", ".join(f"{name} {p:.1%}" for name, p in result.top)
            print(f"{result.path}: {tops}")
    errors = sum(1 for r in results if r.error)
    if not args.json:
        print(f"{len(results) - errors} predicted, {errors} could not be read.", file=sys.stderr)
    return 0


def write_csv(results: list, out: Path) -> None:
    """Written whole then renamed, so a half-written CSV is never left behind."""
    from tlcore.results.predict import predictions_csv

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(predictions_csv(results), newline="")
    os.replace(tmp, out)
