"""``tlcore compare``: the same data and budget trained five ways, from scratch to fine-tuned.

The classroom demo of what pretrained weights are worth, from a shell: it runs
the experiment in this process (one run after another, each an ordinary run
directory) and prints a table of validation accuracy, time and trainable
parameters. Ctrl-C stops the run that is training and starts no more.
"""

from __future__ import annotations

import argparse
from typing import Any

from tlcore.cli import flags, print_json
from tlcore.training.config import AUGMENTS, TrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="train the same data five ways (scratch, feature extraction, fine-tunes)",
        description="Train one dataset with one budget as (a) from scratch, (b) feature "
        "extraction, (c) fine-tune the last groups, (d) full fine-tune, (e) progressive "
        "unfreezing, one run after another, and compare them.",
    )
    flags.add_data(p)
    flags.add_model(p, what=" for (b)-(e)")
    p.set_defaults(model=None)  # left out: the default model for the kind of data (below)
    p.add_argument("--epochs", default="5", metavar="N", help="epochs for every run (default 5)")
    flags.add_img_size(p)
    p.add_argument("--lr", default="0.001", metavar="X", help="base learning rate (default 0.001)")
    flags.add_batch_size(p)
    p.add_argument("--augment", choices=AUGMENTS, default="none",
                   help="training augmentation (default none: (b) then uses its fast path)")  # fmt: skip
    flags.add_seed(p)
    p.add_argument("--val-fraction", default="0.2", metavar="F",
                   help="share held out for validation when there is no val/ folder (default 0.2)")  # fmt: skip
    p.add_argument("--only", default="abcde", metavar="KEYS",
                   help="which of a-e to run, e.g. 'ab' (default all five)")  # fmt: skip
    p.add_argument("--tasks", default=None, metavar="A,B",
                   help="a table of labels: one shared model against a model per column")  # fmt: skip
    p.add_argument("--group", default=None, metavar="COLUMN",
                   help="a table of labels: the column whose groups stay on one side of the split")  # fmt: skip
    p.add_argument("--seeds", default="3", metavar="N",
                   help="a table of labels: training seeds behind the spread (default 3)")  # fmt: skip
    flags.add_device(p)
    flags.add_json(p)
    p.set_defaults(func=cmd_compare)


def _model_for_data(args: argparse.Namespace) -> str:
    """--model, else the bundled text encoder for texts and EfficientNet-Lite0 for photos; a
    photo model for texts is refused here, once, rather than by each of the five runs."""
    from tlcore.data.text_source import is_text_source
    from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL, check_model_fits_data

    text = is_text_source(args.data)
    model = args.model or (DEFAULT_TEXT_MODEL if text else "tf_efficientnet_lite0")
    if text:  # a zip may hold either: its runs say so once it is unpacked
        check_model_fits_data(model, "text")
    return model


def base_config(args: argparse.Namespace) -> TrainConfig:
    """The shared budget from the flags; a ConfigError naming the flag when one is wrong."""
    args.model = _model_for_data(args)
    return TrainConfig(
        data=args.data, model=args.model, weights=flags.weights(args),
        img_size=flags.img_size(args), augment=args.augment, device=args.device,
        epochs=flags.epochs(args),
        lr=flags.bounded(args, "lr"),
        batch_size=flags.batch_size(args),
        seed=flags.seed(args),
        val_fraction=flags.bounded(args, "val_fraction"),
    ).validate()  # fmt: skip


def row_line(row: dict[str, Any]) -> str:
    """``(b) Feature extraction  finished  val 0.900  11.5 s  2,562 trainable``."""
    acc = "-" if row["val_acc"] is None else f"{row['val_acc']:.3f}"
    secs = "-" if row["seconds"] is None else f"{row['seconds']:.1f} s"
    params = "-" if row["trainable_params"] is None else f"{row['trainable_params']:,}"
    fast = " (fast path)" if row.get("fast_path") else ""
    return (f"({row['key']}) {row['label']:<30} {row['state']:<9} val {acc:>5}  {secs:>8}  "
            f"{params:>11} trainable{fast}")  # fmt: skip


def cmd_compare(args: argparse.Namespace) -> int:
    from tlcore.cli.boxes import wants_boxes

    if wants_boxes(args):  # photos with boxes: three detectors (tlcore.cli.box_compare)
        from tlcore.cli.box_compare import cmd_compare_boxes

        return cmd_compare_boxes(args)
    from tlcore.cli.columns import cmd_compare_columns, wants_columns

    if wants_columns(args):  # several label columns: shared vs one model per column
        return cmd_compare_columns(args)
    from tlcore.lab.compare import Experiment

    experiment = Experiment.create(base_config(args), keys=str(args.only).strip().lower())
    print(f"experiment directory: {experiment.dir}", flush=True)
    try:
        rows = experiment.run_all(on_finish=lambda row: print(row_line(row), flush=True))
    except KeyboardInterrupt:
        experiment.stop()
        print("stopping: the run now training saves a checkpoint and stops", flush=True)
        experiment.wait_for_runs()
        rows = experiment.summary()
    status = experiment.status()
    print(f"{status['state']}: {status['done']} of {status['total']} runs done", flush=True)
    if args.json:
        fields = ("key", "label", "run_id", "state", "val_acc", "best_val_acc", "seconds",
                  "trainable_params", "fast_path", "epochs_done", "message")  # fmt: skip
        print_json({"experiment": experiment.id, "dir": str(experiment.dir),
                    "state": status["state"], "results": [{k: r[k] for k in fields} for r in rows]})  # fmt: skip
    return 1 if any(r["state"] in ("failed", "error") for r in rows) else 0
