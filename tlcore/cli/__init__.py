"""The ``tlcore`` command line: one sub-command module per idea.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)`` that adds its
sub-commands, each with ``set_defaults(func=handler)``; a handler takes the
parsed ``argparse.Namespace`` and returns an exit code. A ``TLCoreError``
anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from tlcore import __version__
from tlcore.errors import TLCoreError

COMMAND_MODULES = (
    "tlcore.cli.data",
    "tlcore.cli.models",
    "tlcore.cli.train",
    "tlcore.cli.evaluate",
    "tlcore.cli.fewshot",
    "tlcore.cli.zeroshot",
    "tlcore.cli.label",
    "tlcore.cli.domain",
    "tlcore.cli.export",
    "tlcore.cli.compare",
    "tlcore.cli.doctor",
    "tlcore.cli.demo",
)

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlcore",
        description="Transfer learning on images: inspect data, pick a model, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"tlcore {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def print_answers(answers: Any, paths: list[str], as_json: bool, said: Any) -> int:
    """Predict for the photos under ``paths`` with ``answers(files)``: one JSON object or one
    line (``said(answer)``) per photo; DataError when the paths hold no photo."""
    from tlcore.data.images import images_in
    from tlcore.data.scan import printable
    from tlcore.errors import DataError

    files = [str(f) for f in images_in(paths)]
    if not files:
        raise DataError(f"no images found in {', '.join(paths)}.")
    for answer in answers(files):
        if as_json:
            print_json(answer)
        else:
            print(printable(f"{answer['path']}: {said(answer)}"))
    return 0


def start_and_wait(run: Any, report: list[str], args: Any) -> dict[str, Any] | None:
    """Say the data's report (stderr) and the run folder, start the worker, and wait for the
    end unless ``--detach``; the final status, or None when detached (its JSON said)."""
    from tlcore.data.scan import printable

    for line in report:
        print(printable(line), file=sys.stderr, flush=True)
    print(f"run directory: {run.dir}", flush=True)
    run.spawn_worker(resume=False)
    if args.detach:
        if args.json:
            print_json({"run_dir": str(run.dir), "id": run.id, "state": run.status()["state"]})
        return None
    status = run.wait()
    print(f"{status['state']}: {printable(str(status.get('message', '')))}", flush=True)
    return status


def print_json(obj: Any) -> None:
    """One JSON object on one line: the last line of output for ``--json``."""
    print(json.dumps(obj, default=str), flush=True)


def fail(message: str) -> int:
    """``error: message`` on stderr, control characters from names escaped (line breaks kept)."""
    from tlcore.data.scan import printable

    text = "\n".join(printable(line) for line in str(message).split("\n"))
    print(f"error: {text}", file=sys.stderr, flush=True)
    return EXIT_USER_ERROR


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except TLCoreError as exc:
        return fail(str(exc))
    except OSError as exc:  # a path the user gave cannot be read or written: one line, not a trace
        where = f" ({exc.filename})" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}.")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
