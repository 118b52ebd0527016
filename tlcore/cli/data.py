"""``tlcore inspect``: check a dataset before training, from a terminal or a script."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tlcore.cli import EXIT_USER_ERROR, flags, print_json
from tlcore.data.prepare import prepare_data
from tlcore.data.report import SEVERITIES, ValidationReport
from tlcore.data.scan import printable, short_name


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``inspect``."""
    parser = subparsers.add_parser(
        "inspect",
        help="validate a dataset folder or zip and show its report",
        description="Scan a folder (one sub-folder per class, or train/ + val/) or a .zip, "
        "decode every image, and report what can be trained on. Exit 0 when trainable, "
        "2 with a one-line reason when not.",
    )
    parser.add_argument("data", metavar="DATA", help="a dataset folder or a .zip of one")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (last line)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of each class held out for validation (default 0.2)",
    )
    parser.add_argument("--seed", default="0", metavar="N",
                        help="seed of the random split (default 0)")  # fmt: skip
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="where to write the manifest (default: under the uploads folder)",
    )
    parser.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Print the report; exit 0 when trainable, 2 with the reason on stderr when not."""
    from tlcore.cli.boxes import cmd_inspect_boxes, wants_boxes
    from tlcore.data.progress import terminal_bar

    if wants_boxes(args):  # photos with boxes: the detection report (tlcore.cli.boxes)
        return cmd_inspect_boxes(args)
    prepared = prepare_data(
        args.data,
        val_fraction=args.val_fraction,
        seed=flags.seed(args),  # bounded like every count flag (tlcore.training.config.BOUNDS)
        manifest_path=args.manifest,
        progress=terminal_bar(),  # stderr: the report (or --json) stays alone on stdout
    )
    report = prepared.report
    if args.json:
        data = report.to_dict()
        data["manifest_path"] = str(prepared.manifest_path) if prepared.manifest_path else None
        print_json(data)
    else:
        print(format_report(report))
        if prepared.manifest_path:
            print(printable(f"Manifest: {prepared.manifest_path}"))
    if not report.trainable:
        print(printable(f"error: {report.reason}"), file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    return 0


def format_report(report: ValidationReport, max_files: int = 5) -> str:
    """Plain-text rendering for the terminal: counts table, then problems by severity."""
    from tlcore.data.task import task_of

    items = "texts" if task_of(report).is_text else "image files"
    lines = [
        f"Dataset: {report.root}",
        f"Layout: {report.layout.replace('_', ' ')}; "
        f"{report.n_usable} of {report.n_found} {items} usable.",
    ]
    table = report.split_counts or report.counts
    if report.classes:
        splits = list(table)
        shown = {c: short_name(printable(c)) for c in report.classes}  # a long label is cut
        width = max(len(name) for name in shown.values()) + 2
        lines.append("")
        lines.append("class".ljust(width) + "".join(s.rjust(8) for s in splits))
        for c in report.classes:
            counts = "".join(str(table[s].get(c, 0)).rjust(8) for s in splits)
            lines.append(shown[c].ljust(width) + counts)
    for severity in SEVERITIES:
        problems = [p for p in report.problems if p.severity == severity]
        if problems:
            lines.append("")
            lines.append(f"{severity.upper()}S ({len(problems)}):")
        for p in problems:
            lines.append(f"  - {p.message}")
            if p.code not in ("unreadable", "label_conflict", "duplicate"):
                shown = p.files[:max_files]
                lines.extend(f"      {f}" for f in shown)
                if len(p.files) > len(shown):
                    lines.append(f"      ... and {len(p.files) - len(shown)} more")
    lines.append("")
    lines.append("Trainable: yes" if report.trainable else f"Trainable: no. {report.reason}")
    return "\n".join(printable(line) for line in lines)  # names never reach the terminal raw
