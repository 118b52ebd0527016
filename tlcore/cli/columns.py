"""``tlcore train/predict/evaluate`` for a table of several label columns per photo or sentence.

``tlcore train --data labels.csv [--tasks garment,kids] [--group sender]`` reads the table
(``tlcore.data.columns``), writes a run directory whose task is "image-columns" (or
"text-columns" for sentences, on the bundled MiniLM) and starts the same detached worker as
any run (``tlcore.runs.columns_run`` trains one head per task on the cached embeddings, or
fine-tunes the shared backbone with them under `--freeze last-K|full`);
``predict`` (photos, or sentences typed as arguments) and ``evaluate`` answer per task.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from tlcore.cli import print_json
from tlcore.data.scan import printable
from tlcore.errors import ConfigError
from tlcore.runs.run import Run


def wants_columns(args: argparse.Namespace) -> bool:
    """--tasks or --group given, a .csv/.tsv/.xlsx whose rows name photos, or one of
    sentences with several label columns."""
    if getattr(args, "tasks", None) or getattr(args, "group", None):
        return True
    from tlcore.data.columns import is_sentence_table, names_photos

    return names_photos(args.data) or is_sentence_table(args.data)


def cmd_train_columns(args: argparse.Namespace) -> int:
    from tlcore.cli import flags
    from tlcore.models.freeze_plan import FreezePlan
    from tlcore.models.text_catalog import is_text_model
    from tlcore.runs.columns_run import create_columns_run
    from tlcore.training.config import TrainConfig, suggested_settings

    if args.model and "lite" not in args.model and not is_text_model(args.model):
        raise ConfigError("label columns train on the bundled Lite0 for photos or the bundled "
                          "MiniLM for sentences.")  # fmt: skip
    args.model = args.model or "tf_efficientnet_lite0"
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    freeze = FreezePlan.parse(getattr(args, "freeze", None) or "features")
    if freeze.preset == "features":  # heads on the cached embeddings: many cheap epochs
        epochs, lr, augment = 60, 2e-3, "none"
    else:  # the backbone learns: the settings that suit the plan, as for one label
        suggested = suggested_settings(freeze.to_dict())
        epochs, lr, augment = suggested["epochs"], suggested["lr"], suggested["augment"]
    freeze.lr_decay = flags.number(args, "lr_decay", float, lambda v: 0 < v <= 1, "in (0, 1]")
    config = TrainConfig(data=str(args.data), model=args.model,
                         weights=flags.weights(args), img_size=flags.img_size(args),
                         device=args.device, seed=flags.seed(args),
                         epochs=flags.epochs(args) if args.epochs is not None else epochs,
                         lr=float(args.lr) if args.lr else lr, freeze=freeze.to_dict(),
                         augment=args.augment or augment, batch_size=flags.batch_size(args),
                         val_fraction=flags.bounded(args, "val_fraction"), name=args.name)  # fmt: skip
    config.validate()
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


def cmd_predict_text_columns(run: Run, args: argparse.Namespace) -> int:
    """``tlcore predict RUN "a sentence" ...``: every task's answer per sentence."""
    from tlcore.data.scan import printable
    from tlcore.runs.columns_run import predict_columns

    for answer in predict_columns(run, list(args.paths)):
        answer["text"] = answer.pop("path")
        if args.json:
            print_json(answer)
        else:
            said = "; ".join(_said(name, a) for name, a in answer["tasks"].items())
            print(printable(f"{answer['text']}: {said}"))
    return 0


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
    print(f"Evaluated {run.id} on {report['items']} validation {run.task.items}.")
    for name, entry in report["tasks"].items():
        scores = ", ".join(f"{k} {v:.3f}" for k, v in entry.items()
                           if isinstance(v, float))  # fmt: skip
        print(printable(f"{name}: {scores}"))
    return 0


def cmd_compare_columns(args: argparse.Namespace) -> int:
    """``tlcore compare --data labels.csv [--tasks a,b] [--group g]``: one shared model against
    a model per column and the logistic-regression reference, per task, and the finding in
    words (``tlcore.lab.columns_compare``). compare's defaults for photo labels (5 epochs,
    lr 0.001) mean the heads' own (60 epochs, lr 0.002) here."""
    from tlcore.cli import flags
    from tlcore.lab.columns_compare import METRIC_WORDS, WAYS, compare_columns

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    epochs = 60 if str(args.epochs) == "5" else flags.epochs(args)
    lr = 2e-3 if str(args.lr) == "0.001" else flags.bounded(args, "lr")
    seeds = flags.number(args, "seeds", int, lambda v: 1 <= v <= 20, "from 1 to 20")
    args.model = args.model or "tf_efficientnet_lite0"
    result = compare_columns(args.data, tasks, args.group or None, model=args.model,
                             weights=flags.weights(args), img_size=flags.img_size(args) or 224,
                             epochs=epochs, lr=lr, seed=flags.seed(args), seeds=seeds,
                             val_fraction=flags.bounded(args, "val_fraction"), device=args.device,
                             progress=None if args.json else print)  # fmt: skip
    if args.json:
        print_json({**result, "task": f"{result['modality']}-columns"})
        return 0
    for name, row in result["tasks"].items():
        metric = row["metric"]
        said = "  ".join(f"{way} {row[way].get(metric):.3f}" for way in WAYS
                         if row[way].get(metric) is not None)  # fmt: skip
        gap = "" if row["gain"] is None else f"  gain {row['gain']:+.3f} ± {row['spread']:.3f}"
        print(printable(f"{name} ({METRIC_WORDS[metric]}): {said}{gap}"))
    print(printable(result["answer"]))
    return 0
