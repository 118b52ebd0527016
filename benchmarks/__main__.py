"""``python -m benchmarks [name ...]``: run every ``bench_*.py`` (or those named), then a summary."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pkgutil
import platform
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import format_row

PACKAGE_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names of the benchmark modules, without the ``bench_`` prefix, sorted."""
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if m.name.startswith("bench_")
    )


def machine() -> str:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    return (f"{platform.machine()} {platform.system()}, {cores} CPU cores, {gpu}; "
            f"python {platform.python_version()}, torch {torch.__version__}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    names = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default all: {', '.join(names)})"
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n.removeprefix("bench_") not in names]
    if unknown:
        print(f"error: unknown benchmark {', '.join(unknown)}; choose from {', '.join(names)}")
        return 2
    selected = [n.removeprefix("bench_") for n in args.names] or names
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # runs the benchmarks start go to a scratch folder, never the user's runs
    scratch = tempfile.TemporaryDirectory(prefix="tlcore-bench-")
    os.environ["TLCORE_RUNS_DIR"] = str(Path(scratch.name) / "runs")
    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks", *(argv or sys.argv[1:])])
    print(f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")
    print(f"command: {command}", flush=True)
    rows, failures = [], []
    for name in selected:
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            for r in module.run():
                rows.append({"benchmark": name, **r})
        except Exception:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            failures.append(name)
        print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    print("\n== summary ==")
    for r in rows:
        print(format_row(r))
    for name in failures:
        print(f"  [FAIL] {name}: raised an exception (traceback above)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    scratch.cleanup()
    missed = any(r["passed"] is False for r in rows)
    return 1 if failures or (args.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
