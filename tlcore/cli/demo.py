"""``tlcore demo BUNDLE_OR_RUN --port 8600``: a small read-only app with Predict and the model card.

For showing one model to people who should see nothing else: no wizard, no runs, no upload
kept on disk. The model is loaded (and any error said in words) before the server starts;
the app itself is ``appkit/demo_app.py``, started with ``streamlit run``, which is told the
model through the ``TLCORE_DEMO_SOURCE`` environment variable.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tlcore import settings
from tlcore.errors import ConfigError

DEMO_APP = settings.PROJECT_ROOT / "appkit" / "demo_app.py"
SOURCE_VARIABLE = "TLCORE_DEMO_SOURCE"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add demo."""
    p = subparsers.add_parser(
        "demo",
        help="serve one run or exported bundle as a read-only demo (Predict + model card)",
        description="Start a small web app that shows only Predict and the model card of one "
        "model: visitors can try photos (or sentences) and change nothing.",
    )
    p.add_argument("source", metavar="BUNDLE_OR_RUN", help="an exported bundle (folder or .zip), "
                   "or a run id or folder")  # fmt: skip
    p.add_argument("--port", default="8600", help="port to listen on (default 8600)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)")  # fmt: skip
    p.add_argument("--check", action="store_true",
                   help="load the model and print the command, without starting the server")  # fmt: skip
    p.set_defaults(func=cmd_demo)


def demo_command(source: str, port: str, address: str) -> list[str]:
    """The ``streamlit run`` line of the demo app (the source travels in the environment)."""
    if not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--port must be a port number from 1 to 65535, got {port!r}.")
    return [sys.executable, "-m", "streamlit", "run", str(DEMO_APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]  # fmt: skip


def resolved_source(source: str) -> str:
    """A bundle path or a run folder as an absolute path (a run id becomes its folder)."""
    from tlcore.results.bundle_format import is_bundle
    from tlcore.runs.run import Run

    if is_bundle(source):
        return str(Path(source).expanduser().resolve())
    return str(Run.open(source).dir)


def cmd_demo(args: argparse.Namespace) -> int:
    import tlcore

    source = resolved_source(args.source)
    predictor = tlcore.load(source)  # a broken bundle or run fails here, in words
    command = demo_command(source, args.port, args.address)
    print(f"Demo of {predictor.model_name} ({', '.join(predictor.classes)}) at "
          f"http://{args.address}:{args.port}")  # fmt: skip
    if args.check:
        print(" ".join(command))
        return 0
    env = {**os.environ, SOURCE_VARIABLE: source}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0
