"""``tlcore train / runs / status / stop / resume / lr-find``: the training engine from a shell.

``train`` starts the same detached worker the app starts and follows it with a
progress bar; Ctrl-C asks the worker to stop (a second Ctrl-C leaves it running).
Every number flag is checked here, before a run exists, so a typo costs one line
of error and exit code 2, not a failed run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from tlcore.cli import flags, print_json
from tlcore.cli.flags import number
from tlcore.data.progress import Progress, terminal_bar
from tlcore.data.scan import printable
from tlcore.errors import ConfigError, RunError, TLCoreError
from tlcore.runs.run import ACTIVE_STATES, Run, list_runs
from tlcore.training.config import (
    AUGMENTS,
    DECODED_CACHE_MODES,
    HEAD_SOLVERS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    suggested_settings,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add train, runs, status, stop, resume and lr-find."""
    p = subparsers.add_parser("train", help="train a model on a dataset (a run directory)",
                              description="Start a training run and follow it with a progress bar.")  # fmt: skip
    _add_data_model_flags(p, augment_default=None)
    p.add_argument("--data-version", default=None, metavar="N",
                   help="train on a saved dataset version (label fixes; see `tlcore versions`)")  # fmt: skip
    p.add_argument("--epochs", default=None, metavar="N",
                   help="passes over the training images (default: 5 for feature extraction, "
                   "10 when layers are fine-tuned)")  # fmt: skip
    p.add_argument("--augment-views", default="0", metavar="K",
                   help="feature extraction with augmentation: embed K augmented views of each "
                   "training photo once and keep the fast path (default 0)")  # fmt: skip
    p.add_argument("--head-solver", choices=HEAD_SOLVERS, default="lbfgs",
                   help="feature extraction: lbfgs trains the head to convergence with its L2 "
                   "chosen by cross-validation on the training photos; optimizer uses --lr, "
                   "--optimizer and the epochs (default lbfgs)")  # fmt: skip
    p.add_argument(
        "--lr",
        default=None,
        metavar="X",
        help="base learning rate, > 0 (default 0.001; 0.0001 for --freeze full)",
    )
    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adamw", help="optimizer (default adamw)"
    )
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="per-step LR schedule after warm-up (default cosine)")  # fmt: skip
    p.add_argument(
        "--warmup-epochs", default="0", metavar="E", help="linear LR warm-up length (default 0)"
    )
    p.add_argument(
        "--weight-decay", default="0.01", metavar="X", help="weight decay (default 0.01)"
    )
    p.add_argument("--label-smoothing", default="0", metavar="X", help="in [0, 1) (default 0)")
    p.add_argument(
        "--class-balanced", action="store_true", help="weight the loss by inverse class frequency"
    )
    p.add_argument("--early-stopping", default="0", metavar="N",
                   help="stop after N epochs without better val accuracy (default 0 = off)")  # fmt: skip
    p.add_argument(
        "--drop-rate", default="0", metavar="X", help="dropout before the classifier (default 0)"
    )
    p.add_argument(
        "--num-workers",
        default=None,
        metavar="N",
        help="data loading processes (default: fit the machine)",
    )
    p.add_argument("--decoded-cache", choices=DECODED_CACHE_MODES, default="auto",
                   help="keep decoded photos between epochs: auto (memory, then a disk file), "
                   "memory, disk or off (default auto)")  # fmt: skip
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model: slower start, faster steps (GPUs, long runs)")  # fmt: skip
    p.add_argument("--name", default="", help="a label for the runs table")
    p.add_argument("--tasks", default=None, metavar="A,B",
                   help="a table of labels (.csv/.tsv/.xlsx naming photos): the label columns to "
                   "learn together (default: every label column)")  # fmt: skip
    p.add_argument("--group", default=None, metavar="COLUMN",
                   help="a table of labels: the column whose groups stay on one side of the split")  # fmt: skip
    p.add_argument("--nproc", default="1", metavar="N",
                   help="train with N processes (one per GPU) launched by torchrun; batch size is "
                   "per process (default 1). Or run this command under torchrun yourself.")  # fmt: skip
    p.add_argument("--detach", action="store_true", help="start the run and return at once")
    p.add_argument("--estimate", action="store_true",
                   help="say how long this run would take on this machine; start nothing")  # fmt: skip
    flags.add_json(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("runs", help="list training runs, newest first (or prune old ones)")
    p.add_argument("--json", action="store_true", help="print {'runs': [...]} as the last line")
    p.add_argument("--owner", default=None, help="only the runs of this owner (a session id)")
    p.add_argument("--prune", action="store_true",
                   help="delete ended runs (default: failed and stopped ones); see --state")  # fmt: skip
    p.add_argument("--older-than", default=None, metavar="DAYS",
                   help="with --prune: only runs idle for more than DAYS days")  # fmt: skip
    p.add_argument("--state", default="failed,stopped", metavar="LIST",
                   help="with --prune: states to delete, e.g. failed,stopped,finished")  # fmt: skip
    p.add_argument(
        "--dry-run", action="store_true", help="with --prune: list what would be deleted"
    )
    p.set_defaults(func=cmd_runs)
    for name, func, text in (("status", cmd_status, "show a run's state and metrics"),
                             ("stop", cmd_stop, "ask a run to stop after its current step"),
                             ("resume", cmd_resume, "continue a stopped or interrupted run")):  # fmt: skip
        p = subparsers.add_parser(name, help=text, description=text)
        p.add_argument("run", metavar="RUN", help="run id (see `tlcore runs`) or run directory")
        if name != "stop":
            p.add_argument(
                "--json", action="store_true", help="print one JSON object as the last line"
            )
        if name == "resume":
            p.add_argument("--detach", action="store_true", help="resume and return at once")
        p.set_defaults(func=func)

    p = subparsers.add_parser("lr-find", help="LR range test: loss curve and a suggested learning rate",
                              description="fastai-style learning-rate range test on a copy of the model.")  # fmt: skip
    _add_data_model_flags(p, augment_default="none")
    p.add_argument(
        "--steps", default="100", metavar="N", help="number of sweep steps (default 100)"
    )
    p.add_argument(
        "--start-lr", default="1e-7", metavar="X", help="first learning rate (default 1e-7)"
    )
    p.add_argument("--end-lr", default="10", metavar="X", help="last learning rate (default 10)")
    p.add_argument("--json", action="store_true", help="print the curve and suggestion as JSON")
    p.set_defaults(func=cmd_lr_find)


def _add_data_model_flags(
    p: argparse.ArgumentParser, augment_default: str | None = "light"
) -> None:
    flags.add_data(p)
    flags.add_model(p, scratch=True)
    p.add_argument("--freeze", default="features", metavar="PRESET",
                   help="features | last-K | full | progressive[-E] (default features)")  # fmt: skip
    p.add_argument("--lr-decay", default="1", metavar="X",
                   help="per-group learning rates: each layer group below the head learns at X "
                   "times the rate of the group above it, in (0, 1] (default 1: all the same)")  # fmt: skip
    flags.add_img_size(p)
    flags.add_batch_size(p)
    default_text = augment_default or "none for feature extraction (the fast path), light otherwise"
    p.add_argument("--augment", choices=AUGMENTS, default=augment_default,
                   help=f"training augmentation (default {default_text})")  # fmt: skip
    flags.add_seed(p)
    flags.add_device(p)
    p.add_argument("--val-fraction", default="0.2", metavar="F",
                   help="share held out for validation when there is no val/ folder (default 0.2)")  # fmt: skip
    p.add_argument("--max-tokens", default="128", metavar="N",
                   help="texts only: word pieces read per text, 8 to 512 (default 128)")  # fmt: skip
    p.set_defaults(augment_default=augment_default, model=None)  # None: chosen by the data


def _fit_text_data(args: argparse.Namespace) -> None:
    """A text,label CSV or .txt folders: the bundled text encoder unless --model names one,
    and no augmentation (there are no pixels); an explicit --augment is left to be refused."""
    from tlcore.data.text_source import is_text_source
    from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL, is_text_model

    text = is_text_source(args.data)
    if args.model is None:  # --model not given: the default for the kind of data
        args.model = DEFAULT_TEXT_MODEL if text else "tf_efficientnet_lite0"
    if not text:
        return
    if is_text_model(args.model) and args.augment == getattr(args, "augment_default", None):
        args.augment = "none"


def _fill_suggested(args: argparse.Namespace) -> None:
    """Flags left out take the settings that suit the freeze plan (``suggested_settings``)."""
    from tlcore.models.freeze_plan import FreezePlan

    suggested = suggested_settings(FreezePlan.parse(args.freeze).to_dict())
    if getattr(args, "augment", None) is None:
        args.augment = suggested["augment"]
    if getattr(args, "epochs", "") is None:
        args.epochs = str(suggested["epochs"])
    if getattr(args, "lr", "") is None:
        args.lr = str(suggested["lr"])


def config_from_args(args: argparse.Namespace, **extra: Any) -> TrainConfig:
    """A validated TrainConfig from the shared flags (train and lr-find)."""
    from tlcore.models.freeze_plan import FreezePlan

    _fit_text_data(args)
    _fill_suggested(args)
    config = TrainConfig(
        data=args.data, model=args.model, weights=flags.weights(args),
        freeze=FreezePlan.parse(args.freeze).to_dict()
        | {"lr_decay": number(args, "lr_decay", float, lambda v: 0 < v <= 1, "in (0, 1]")},
        img_size=flags.img_size(args),
        augment=args.augment, device=args.device,
        batch_size=flags.batch_size(args),
        seed=flags.seed(args),
        val_fraction=flags.bounded(args, "val_fraction"),
        max_tokens=flags.bounded(args, "max_tokens"),
        **extra,
    )  # fmt: skip
    return config.validate()


def cmd_train(args: argparse.Namespace) -> int:
    from tlcore.cli.boxes import cmd_train_boxes, wants_boxes

    if wants_boxes(args):  # photos with boxes: object detection (tlcore.cli.boxes)
        return cmd_train_boxes(args, _train_in_process if under_torchrun() else None)
    from tlcore.cli.columns import cmd_train_columns, wants_columns

    if wants_columns(args):  # several label columns per photo: tlcore.cli.columns
        return cmd_train_columns(args)
    _fit_text_data(args)
    _fill_suggested(args)  # before --epochs is read below
    config = config_from_args(
        args,
        epochs=flags.epochs(args),
        lr=flags.bounded(args, "lr"),
        warmup_epochs=flags.bounded(args, "warmup_epochs"),
        weight_decay=flags.bounded(args, "weight_decay"),
        label_smoothing=flags.bounded(args, "label_smoothing"),
        early_stopping=flags.bounded(args, "early_stopping"),
        drop_rate=flags.bounded(args, "drop_rate"),
        num_workers=None if args.num_workers is None else flags.bounded(args, "num_workers"),
        optimizer=args.optimizer, schedule=args.schedule, class_balanced=args.class_balanced,
        name=args.name, decoded_cache=args.decoded_cache, compile=args.compile,
        nproc=flags.bounded(args, "nproc"),
        augment_views=flags.bounded(args, "augment_views"),
        head_solver=args.head_solver,
    )  # fmt: skip
    if args.data_version is not None:  # a dataset version: its manifest (tlcore.cli.doctor)
        from tlcore.cli.doctor import version_manifest_path

        config.manifest_path = version_manifest_path(
            config.data, flags.whole(args, "data_version", 0), config.val_fraction, config.seed
        )
    if getattr(args, "estimate", False):  # how long, measured here; nothing starts
        return print_estimate(config, args)
    if under_torchrun():
        if config.nproc > 1:
            raise ConfigError("--nproc launches torchrun itself: leave it out under torchrun.")
        from tlcore.training.distributed import launched_world_size

        config.nproc = launched_world_size()  # what trains it: resuming from the app starts as many
        return _train_in_process(args, lambda: Run.create(config.validate()), resume=False)
    started = time.monotonic()
    run = Run.start(config, progress=terminal_bar())  # stderr: reading photos, k of N
    print(f"run directory: {run.dir}", flush=True)
    return _finish(run, args, started)


def read_split(config: TrainConfig) -> Any:
    """The manifest a run of ``config`` would train on: a dataset version's, or the data
    read and split now (its bar on stderr); DataError in words when it cannot be used."""
    from tlcore.data.manifest import Manifest
    from tlcore.data.prepare import prepare_trainable

    if config.manifest_path:
        return Manifest.load(config.manifest_path)
    return prepare_trainable(config.data, "use", val_fraction=config.val_fraction,
                             seed=config.seed, progress=terminal_bar()).manifest  # fmt: skip


def print_estimate(config: TrainConfig, args: argparse.Namespace) -> int:
    """``tlcore train --estimate``: the Train page's time estimate (tlcore.training.estimate)."""
    from dataclasses import asdict

    from tlcore.training.estimate import estimate_for

    estimate = estimate_for(config, read_split(config))
    print(f"estimated time: {estimate.text} on this machine. {estimate.work}", flush=True)
    if estimate.tip:
        print(f"faster: {estimate.tip}", flush=True)
    if args.json:
        print_json({"seconds": round(estimate.seconds, 1), "text": estimate.text,
                    "fast_path": estimate.fast_path, "work": estimate.work, "tip": estimate.tip,
                    "items": estimate.items, "speed": asdict(estimate.speed)})  # fmt: skip
    return 0


def _finish(run: Run, args: argparse.Namespace, started: float, result_of: Any = None) -> int:
    """Follow the worker (unless --detach) and report the final metrics (``result_of``: a
    task's own final JSON, as in ``_train_in_process``)."""
    if args.detach:
        if args.json:
            print_json({"run_dir": str(run.dir), "id": run.id, "state": run.status()["state"]})
        return 0
    status = follow(run)
    result = (result_of or run_result)(run, status, seconds=time.monotonic() - started)
    print(f"{result['state']}: {status.get('message', '')}", flush=True)
    if result.get("val_accuracy") is not None:
        print(f"epochs {result['epochs']}  val accuracy {result['val_accuracy']:.3f}  "
              f"best {result['best_val_accuracy']:.3f}  {result['seconds']:.1f} s", flush=True)  # fmt: skip
    if args.json:
        print_json(result)
    return 1 if result["state"] == "failed" else 0


def follow(run: Run, poll_s: float = 0.25) -> dict[str, Any]:
    """A progress bar (stderr) over the run's steps until it ends; Ctrl-C asks it to stop."""
    from tqdm import tqdm

    record = run.record
    n_train = sum((record["data"].get("counts") or {}).get("train", {}).values())
    config = run.config
    total = config.epochs * max(1, math.ceil(n_train / (config.batch_size * config.nproc)))
    converged_head = config.head_solver == "lbfgs" and config.freeze.get("preset") == "features"
    if converged_head and (config.augment == "none" or config.augment_views):
        total = None  # L-BFGS iterations until it converges: a count, not a fraction
    seen_steps, seen_epochs, said = 0, 0, None
    embedding = StatusBar("embedding")  # the fast path's pass, before any step: k of N, time left
    after = StatusBar("after")  # calibrating and scoring after the last epoch, the same way
    bar = None  # the steps' bar, from the first step on (one bar on the line at a time)
    stop_asked = False
    try:
        while True:
            try:
                status = run.status()
                embedding.show(status)
                for event in run.metrics():
                    if bar is None:
                        embedding.close()
                        # a solved head's iterations take milliseconds and are read in bulk:
                        # a rate per iteration would be noise, so only their count is shown
                        solved = {"bar_format": "{desc}: {n_fmt} L-BFGS iterations{postfix}"}
                        bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True,
                                   desc=run.id, **(solved if total is None else {}))  # fmt: skip
                    if event.get("type") == "step" and event["step"] > seen_steps:
                        bar.update(event["step"] - seen_steps)
                        seen_steps = event["step"]
                        bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.4f}")
                    elif event.get("type") == "epoch" and event["epoch"] > seen_epochs:
                        seen_epochs = event["epoch"]
                        bar.write(_epoch_line(event), file=sys.stderr)
                if status["state"] not in ACTIVE_STATES:
                    if seen_epochs >= config.epochs:
                        after.show(status)  # the last step's end, kept in the final status
                    return status
                if seen_epochs >= config.epochs and status.get("message") != said:
                    said = status.get("message")  # after the last epoch: calibrating, scoring
                    (bar.write if bar is not None else print)(printable(said), file=sys.stderr)
                if seen_epochs >= config.epochs and status.get("after"):
                    if bar is not None:
                        bar.close()  # the steps are over: one bar on the line at a time
                    after.show(status)
                time.sleep(poll_s)
            except KeyboardInterrupt:
                write = bar.write if bar is not None else print
                if stop_asked:
                    write(f"left running: `tlcore status {run.id}`", file=sys.stderr)
                    raise
                stop_asked = True
                run.stop()
                write("stopping after the current step (Ctrl-C again to leave it running)",
                      file=sys.stderr)  # fmt: skip
    finally:
        embedding.close()
        after.close()
        if bar is not None:
            bar.close()


class StatusBar:
    """A count the worker keeps in the run's status (``embedding``: the fast path's pass;
    ``after``: calibrating and scoring after the last epoch), drawn on stderr."""

    def __init__(self, key: str) -> None:
        self.key, self.draw = key, terminal_bar()
        self.last: Progress | None = None
        self.closed = False

    def show(self, status: dict[str, Any]) -> None:
        progress = Progress.from_dict(status.get(self.key))
        if self.closed or progress is None or self.last == progress:
            return
        if self.last is not None and self.last.task != progress.task:
            self.close(reopen=True)  # the next step began: the one before it has ended
        self.last = progress
        self.draw(progress)

    def close(self, reopen: bool = False) -> None:
        """The step is over (the steps began, or the run ended): end its line at N of N."""
        last = self.last
        if not self.closed and last is not None and last.done < last.total:
            self.draw(Progress(last.task, last.total, last.total, last.elapsed_s))
        self.closed, self.last = not reopen, None


def _epoch_line(e: dict[str, Any]) -> str:
    return (f"epoch {e['epoch']}/{e.get('epochs', '?')}: train loss {e['train_loss']:.4f} "
            f"acc {e['train_acc']:.3f} | val loss {e['val_loss']:.4f} acc {e['val_acc']:.3f} | "
            f"{e['seconds']:.2f} s{' (fast path)' if e.get('fast_path') else ''}")  # fmt: skip


def run_result(run: Run, status: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    """The final JSON object: run_dir, state, epochs, val_accuracy, seconds and more."""
    epochs = run.epochs()
    last = epochs[-1] if epochs else {}
    vals = [e["val_acc"] for e in epochs if e.get("val_acc") is not None]
    return {
        "run_dir": str(run.dir), "id": run.id, "state": status["state"],
        "message": status.get("message", ""), "epochs": len(epochs),
        "val_accuracy": last.get("val_acc"), "best_val_accuracy": max(vals) if vals else None,
        "val_loss": last.get("val_loss"), "train_loss": last.get("train_loss"),
        "seconds": seconds if seconds is not None else sum(e.get("seconds", 0.0) for e in epochs),
        "fast_path": last.get("fast_path"),
    }  # fmt: skip


def cmd_runs(args: argparse.Namespace) -> int:
    if args.prune:
        return cmd_prune(args)
    rows = [r.summary() for r in list_runs(args.owner)]
    if not args.json:
        print(f"{'id':<44} {'state':<9} {'model':<24} {'freeze':<12} {'best acc':>8} {'epochs':>7}")
        for r in rows:
            if r["state"] == "broken":  # listed with the reason; the other runs still show
                print(printable(f"{r['id']:<44} {'broken':<9} {r['message']}"))
                continue
            acc = "-" if not isinstance(r["best_val_acc"], float) else f"{r['best_val_acc']:.3f}"
            print(printable(f"{r['id']:<44} {r['state']!s:<9} {r['model']!s:<24} "
                            f"{r['freeze']!s:<12} {acc:>8} {r['epochs_done']!s:>3}/"
                            f"{r['epochs']!s:<3}"))  # fmt: skip
        if not rows:
            print("no runs yet: start one with `tlcore train --data DIR`")
    else:
        print_json({"runs": rows})
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from tlcore.runs.prune import parse_states, prune_runs

    days = None if args.older_than is None else number(
        args, "older_than", float, lambda v: v >= 0, "a number of days >= 0")  # fmt: skip
    rows = prune_runs(parse_states(args.state), days, owner=args.owner, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for r in rows:
        print(f"{verb} {r['id']} ({r['state']}, idle {r['idle_days']:.1f} days, "
              f"{r['bytes'] / 1e6:.1f} MB)")  # fmt: skip
    total = sum(r["bytes"] for r in rows) / 1e6
    print(f"{verb} {len(rows)} run(s), {total:.1f} MB" if rows else "nothing to prune")
    uploads = uploads_disk_use(args.dry_run)
    removed = (f"{uploads['removed']} removed (left by unpacks killed halfway)" if not args.dry_run
               else "a prune removes those whose unpack is no longer running")  # fmt: skip
    print(f"uploads: {uploads['finished']} unpacked upload(s), {uploads['finished_bytes'] / 1e6:.1f}"
          f" MB; {uploads['temporary']} temporary unpack folder(s), "
          f"{uploads['temporary_bytes'] / 1e6:.1f} MB"
          + (f": {removed}" if uploads["temporary"] else ""))  # fmt: skip
    if args.json:
        print_json({"pruned": rows, "dry_run": args.dry_run, "uploads": uploads})
    return 0


def uploads_disk_use(dry_run: bool) -> dict[str, int]:
    """What the unpacked uploads take, leftovers of killed unpacks counted apart (and removed,
    unless a dry run: only folders tlcore made whose process is gone)."""
    from tlcore import settings
    from tlcore.data.archive import clean_unpack_leftovers, unpack_disk_use

    folder = settings.uploads_dir() / "extracted"
    use = unpack_disk_use(folder)
    removed = 0 if dry_run else len(clean_unpack_leftovers(folder).paths)
    return {"finished": use.finished, "finished_bytes": use.finished_bytes,
            "temporary": use.leftovers, "temporary_bytes": use.leftover_bytes,
            "removed": removed}  # fmt: skip


def cmd_status(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    status = run.status()
    result = run_result(run, status) | {"status": status, "summary": run.summary()}
    if args.json:
        print_json(result)
    else:
        print(
            f"{run.id}: {status['state']} (epoch {status.get('epoch', 0)}/{status.get('epochs', '?')})"
        )
        print(printable(str(status.get("message", ""))))
        for event in run.epochs():
            print("  " + _epoch_line(event))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    run = Run.open(args.run)
    state = run.status()["state"]
    if state not in ACTIVE_STATES:
        print(f"{run.id} is already {state}")
        return 0
    run.stop()
    print(f"stop requested for {run.id}: it stops after the current step and saves a "
          "checkpoint (at once while queued or loading)")  # fmt: skip
    return 0


def under_torchrun() -> bool:
    """This command was started by torchrun as one of several ranks (env only: no torch import)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def _train_in_process(args: argparse.Namespace, prepare: Any, resume: bool,
                      result_of: Any = None) -> int:  # fmt: skip
    """Under torchrun every rank trains here (DDP); rank 0 prepares the run and reports
    (``result_of(run, status, seconds)``: a task's own final JSON, ``run_result`` by default)."""
    import logging

    from tlcore.runs import worker
    from tlcore.training import distributed

    distributed.init(getattr(args, "device", "auto"))
    main = distributed.is_main()
    try:
        run, error = None, None
        if main:
            try:
                run = prepare()
            except TLCoreError as exc:
                error = exc
        run_dir, message = distributed.from_main((run and str(run.dir), error and str(error)))
        if message:
            raise error or RunError(message)
        run = Run(Path(run_dir))
        if main:  # the same log.txt a spawned worker writes, and the epochs on the terminal
            handlers = [logging.FileHandler(run.log_path), logging.StreamHandler(sys.stderr)]
            logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
            print(f"run directory: {run.dir}", flush=True)
        started = time.monotonic()
        code = worker.execute(run, resume, worker_cmd=" ".join(sys.argv[1:]))
    finally:
        distributed.shutdown()
    if not main or code:
        return code
    status = run.status()
    result = (result_of or run_result)(run, status, seconds=time.monotonic() - started)
    print(f"{result['state']}: {status.get('message', '')}", flush=True)
    if args.json:
        print_json(result)
    return 1 if result["state"] == "failed" else 0


def cmd_resume(args: argparse.Namespace) -> int:
    from tlcore.cli.evaluate import command_for_run

    _, result_of = command_for_run(args.run, "result")  # a task's own final JSON (boxes)
    if under_torchrun():
        return _train_in_process(args, lambda: Run.open(args.run).resume(spawn=False),
                                 resume=True, result_of=result_of)  # fmt: skip
    started = time.monotonic()
    run = Run.open(args.run).resume()
    print(f"resuming {run.dir}", flush=True)
    return _finish(run, args, started, result_of)


def cmd_lr_find(args: argparse.Namespace) -> int:
    from tlcore.training.lr_find import lr_find

    steps = number(args, "steps", int, lambda v: v >= 5, "a whole number >= 5")
    start_lr = number(args, "start_lr", float, lambda v: v > 0, "a number > 0")
    end_lr = number(args, "end_lr", float, lambda v: v > start_lr, "larger than --start-lr")
    config = config_from_args(args, epochs=1)
    result = lr_find(config, read_split(config), num_steps=steps, start_lr=start_lr, end_lr=end_lr)
    print(f"suggested lr {result.suggested_lr:.2e} (steepest {result.steepest_lr:.2e}, "
          f"min loss at {result.min_loss_lr:.2e}; {len(result.lrs)} steps"
          f"{', stopped when the loss exploded' if result.diverged else ''})", flush=True)  # fmt: skip
    if args.json:
        print_json(result.to_dict())
    return 0
