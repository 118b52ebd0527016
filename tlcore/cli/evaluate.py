"""``tlcore evaluate`` and ``tlcore predict``: a trained run's report card, and its guesses.

``predict`` takes files and folders (searched recursively for images); a file that
cannot be read gets an error entry of its own and the others still get a label,
so one bad photo never costs a whole batch. Exit code 0 as long as the command
itself worked, even when some files were errors (they are in the output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tlcore.cli import print_json
from tlcore.cli.csv_output import check_csv_target, write_csv_text
from tlcore.data.scan import printable
from tlcore.errors import ConfigError, DataError, TLCoreError

MAX_TOP_K = 1000


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
    p.add_argument("paths", metavar="PATH", nargs="+",
                   help="image files or folders; for a text model: sentences, .txt or .csv files")  # fmt: skip
    p.add_argument("--why", action="store_true",
                   help="text models: show the words that pushed each decision")  # fmt: skip
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="for a run: which saved model (default best)")  # fmt: skip
    p.add_argument(
        "--top-k", default="3", metavar="K", help="classes to list per image (default 3)"
    )
    p.add_argument("--csv", metavar="OUT",
                   help="also write one row per image to this CSV file (a new file, or a CSV "
                   "of predictions tlcore wrote; never one of the inputs)")  # fmt: skip
    p.add_argument("--text", action="store_true",
                   help="text models: every PATH is a sentence, even one that looks like a "
                   "file name (e.g. 'see notes.csv')")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument(
        "--unknown-threshold",
        metavar="X",
        help="distance to the nearest training photo above which a photo is 'none of these' "
        "(default: the model's own, set so 95%% of validation photos are accepted)",
    )
    p.set_defaults(func=cmd_predict)


def _task_commands() -> dict[str, dict[str, Any]]:
    """The commands of the tasks whose runs answer in their own shape (not one label)."""
    from tlcore.cli.boxes import boxes_result, cmd_evaluate_boxes, cmd_predict_boxes
    from tlcore.cli.columns import (
        cmd_evaluate_columns,
        cmd_predict_columns,
        cmd_predict_text_columns,
    )

    return {"image-columns": {"predict": cmd_predict_columns, "evaluate": cmd_evaluate_columns},
            "text-columns": {"predict": cmd_predict_text_columns, "evaluate": cmd_evaluate_columns},
            "image-boxes": {"predict": cmd_predict_boxes, "evaluate": cmd_evaluate_boxes,
                            "result": boxes_result}}  # fmt: skip


def command_for_run(source: str, verb: str) -> tuple[Any, Any]:
    """(the run at ``source``, its task's own ``verb`` command), or (None, None) for a
    bundle, a one-label run, or a name that is no run (the usual path says what is wrong)."""
    from tlcore.runs.run import Run

    try:
        run = Run.open(source)
        key = run.task.key
    except TLCoreError:
        return None, None
    command = _task_commands().get(key, {}).get(verb)
    return (run, command) if command is not None else (None, None)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tlcore.data.progress import terminal_bar
    from tlcore.runs.run import Run
    from tlcore.runs.scoring import evaluate_run

    run, command = command_for_run(args.run, "evaluate")
    if command is not None:  # label columns, boxes: that task's own report
        return command(run, args)
    # stderr: scoring k of N photos, and the time left
    report = evaluate_run(Run.open(args.run), checkpoint=args.checkpoint, split=args.split,
                          progress=terminal_bar())  # fmt: skip
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"Evaluated {report.source}.")
    print(report.text())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tlcore.cli import flags
    from tlcore.data.images import images_in

    k = flags.whole(args, "top_k", 1, MAX_TOP_K)  # more than the classes lists them all
    from tlcore.cli.text_predict import cmd_predict_text, is_text_model_source

    run, command = command_for_run(args.model, "predict")
    if command is not None:  # label columns (photos or sentences) or boxes: their own answer
        return command(run, args)
    if is_text_model_source(args.model):  # sentences, not photos: tlcore.cli.text_predict
        return cmd_predict_text(args, k)
    files = images_in(args.paths)
    if not files:
        raise DataError(f"no images found in {', '.join(args.paths)}.")
    if args.csv:
        check_csv_target(Path(args.csv), files)  # before the work, not after it
    threshold = unknown_threshold(args.unknown_threshold)
    predictor = load_trusted_model(args.model, args.checkpoint)
    if threshold is not None and predictor.unknown is None:
        raise ConfigError(
            f"--unknown-threshold: {args.model} has no 'none of these' detector (an export "
            "from an older tlcore); export it again, or leave the flag out."
        )
    results = predictor.predict_files(files, k=k, unknown_threshold=threshold)
    if args.csv:
        write_csv(results, Path(args.csv))
    for result in results:
        if args.json:
            print_json(result.to_dict())
        elif result.error:
            print(printable(f"{result.path}: error: {result.error}"))
        else:
            tops = ", ".join(f"{name} {p:.1%}" for name, p in result.top)
            if result.unknown:
                classes = ", ".join(predictor.classes)
                tops = f"NOT SURE: looks like none of {classes} (unknown score {result.unknown_score:.3f}); {tops}"
            print(printable(f"{result.path}: {tops}"))
    errors = sum(1 for r in results if r.error)
    if not args.json:
        print(f"{len(results) - errors} predicted, {errors} could not be read.", file=sys.stderr)
    return 0


def unknown_threshold(value: str | None) -> float | None:
    """--unknown-threshold as a number >= 0 (None when not given)."""
    import math

    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number) or number < 0:
        raise ConfigError(
            f"--unknown-threshold {value!r} is not valid: give a number >= 0 (e.g. 0.9)."
        )
    return number


def load_trusted_model(source: str, checkpoint: str):
    """A bundle, or a run with its calibration (fitted now if the run has none yet)."""
    from tlcore.results.bundle_format import is_bundle
    from tlcore.runs.run import Run
    from tlcore.runs.scoring import load_model
    from tlcore.runs.trust_store import ensure_trust

    if is_bundle(source):
        return load_model(source, checkpoint=checkpoint)
    run = Run.open(source)  # the edge: a run id or folder becomes a Run here
    trust = None
    try:
        trust = ensure_trust(
            run,
            checkpoint,
            on_fit=lambda: print("Calibrating the model once (first use)…", file=sys.stderr),
        )
    except TLCoreError as exc:  # e.g. an old run whose photos have moved: predict all the same
        from tlcore.data.scan import printable

        print(
            f"warning: could not calibrate the model ({printable(str(exc))}); its probabilities "
            "are uncalibrated and photos of none of its classes are not flagged.",
            file=sys.stderr,
        )
    predictor = load_model(run, checkpoint=checkpoint)
    if predictor.trust is None and trust is not None:  # fitted now but not kept: read-only run
        predictor.set_trust(trust)
    return predictor


def write_csv(results: list, out: Path) -> None:
    """The photos' predictions CSV (``tlcore.results.predict.predictions_csv``) at ``out``."""
    from tlcore.results.predict import predictions_csv

    write_csv_text(predictions_csv(results), out)
