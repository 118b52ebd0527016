"""``tlcore train/predict/evaluate`` for a table of several label columns per photo.

``tlcore train --data labels.csv [--tasks garment,kids] [--group sender]`` reads the table
(``tlcore.data.columns``), writes a run directory whose task is "image-columns" and starts
the same detached worker as any run (``tlcore.runs.columns_run`` trains one head per
task on the cached embeddings); ``predict`` and ``evaluate`` on such a run answer per task.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tlcore.cli import print_json
from tlcore.data.scan import printable
from tlcore.errors import ConfigError, TLCoreError
from tlcore.runs.run import Run


def wants_columns(args: argparse.Namespace) -> bool:
    """--tasks or --group given, or a .csv/.tsv/.xlsx whose rows name photos."""
    if getattr(args, "tasks", None) or getattr(args, "group", None):
        return True
    from tlcore.data.columns import IMAGE_SUFFIXES, is_table, read_table

    if not is_table(args.data):
        return False
    try:
        header, rows = read_table(Path(args.data))
    except TLCoreError:  # not a table of labels: the other readers say what is wrong
        return False
    return any(sum(r[i].lower().endswith(IMAGE_SUFFIXES) for r in rows) >= 0.8 * len(rows)
               for i in range(len(header)))  # a column of photo paths; a sentences CSV has none  # fmt: skip


def cmd_train_columns(args: argparse.Namespace) -> int:
    from tlcore.cli import flags
    from tlcore.runs.columns_run import create_columns_run
    from tlcore.training.config import TrainConfig

    if args.model and args.model != "tf_efficientnet_lite0" and "lite" not in args.model:
        raise ConfigError("label columns train on a photo backbone (the bundled Lite0 by default).")
    args.model = args.model or "tf_efficientnet_lite0"
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    epochs = flags.epochs(args) if args.epochs is not None else 60
    config = TrainConfig(data=str(args.data), model=args.model,
                         weights=flags.weights(args), img_size=flags.img_size(args),
                         device=args.device, seed=flags.seed(args), epochs=epochs,
                         lr=float(args.lr) if args.lr else 2e-3,
                         val_fraction=flags.bounded(args, "val_fraction"), name=args.name)  # fmt: skip
    started = time.monotonic()
    from tlcore.cli import start_and_wait

    run, data = create_columns_run(config, tasks, args.group)
    status = start_and_wait(run, data.summary().split("\n"), args)
    if status is None:  # detached
        return 0
    seconds = time.monotonic() - started
    if args.json:
        print_json({"run_dir": str(run.dir), "id": run.id, "state": status["state"],
                    "groups": data.groups, "problems": data.problems,
                    "tasks": {name: {k: v for k, v in s.items() if k != "items"}
                              for name, s in (status.get("tasks") or {}).items()},
                    "seconds": round(seconds, 2)})  # fmt: skip
    return 1 if status["state"] == "failed" else 0


def cmd_predict_columns(run: Run, args: argparse.Namespace) -> int:
    from tlcore.cli import print_answers
    from tlcore.runs.columns_run import predict_columns

    return print_answers(lambda files: predict_columns(run, files), args.paths, args.json,
                         lambda answer: "; ".join(_said(name, a) for name, a
                                                  in answer["tasks"].items()))  # fmt: skip


def _said(name: str, answer: dict[str, Any]) -> str:
    if "labels" in answer:
        tags = ", ".join(f"{t} {p:.0%}" for t, p in answer["probability"].items()) or "no tag"
        return f"{name}: {tags}"
    return f"{name}: {answer['label']} {answer['probability']:.0%}"


def cmd_evaluate_columns(run: Run, args: argparse.Namespace) -> int:
    from tlcore.runs.columns_run import evaluate_columns

    report = evaluate_columns(run)
    if args.json:
        print_json(report)
        return 0
    print(f"Evaluated {run.id} on {report['items']} validation photos.")
    for name, entry in report["tasks"].items():
        scores = ", ".join(f"{k} {v:.3f}" for k, v in entry.items()
                           if isinstance(v, float))  # fmt: skip
        print(printable(f"{name}: {scores}"))
    return 0
