"""``tlcore export``: take a trained run away as a bundle, ONNX, TorchScript or a training script.

ONNX and TorchScript files are checked against PyTorch on the run's own photos
as they are written; the check is printed, and a failed check exits with 1 (the
file is kept so it can be inspected). Bad input (unknown run, existing --out
without --force) exits with 2 like every other command.
"""

from __future__ import annotations

import argparse

from tlcore.cli import print_json

EXIT_CHECK_FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add export."""
    from tlcore.export.formats import FORMATS

    p = subparsers.add_parser(
        "export",
        help="export a trained run: bundle, onnx, torchscript or a standalone training script",
        description=(
            "bundle: model.safetensors + tlcore.json + README.md model card (a folder, or a zip "
            "when --out ends in .zip), loadable with tlcore.load(). onnx / torchscript: one "
            "file, checked against PyTorch on real photos. script: train.py + split.json (+ "
            "initial weights) that retrain the same model with torch and timm only."
        ),
    )
    p.add_argument("run", metavar="RUN", help="run id (see `tlcore runs`) or run folder")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", required=True, metavar="PATH", help="file or folder to write")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                   help="which saved model to export (default best)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace PATH if it exists")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from tlcore.data.progress import terminal_bar
    from tlcore.export.exporter import export_run
    from tlcore.runs.run import Run

    result = export_run(Run.open(args.run), args.format, args.out, checkpoint=args.checkpoint,
                        overwrite=args.force, progress=terminal_bar())  # fmt: skip
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.text())
    return EXIT_CHECK_FAILED if result.check_passed is False else 0
