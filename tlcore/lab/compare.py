"""The classroom demo of transfer learning's value: one dataset, one budget, five ways to train.

An experiment trains the same images with the same split, epochs, image size,
batch size and base learning rate as (a) a network from scratch, (b) feature
extraction, (c) fine-tuning the last groups, (d) a full fine-tune and (e)
progressive unfreezing. Each is an ordinary run (``Run.start``), tagged with the
experiment id in its config, so the Runs page, Evaluate and the CLI see them
like any other. A small driver starts them one after another, so the timings
compare like with like, and writes what it did to the experiment directory
``runs_dir()/experiments/<id>/``:

- ``experiment.json``  the base config and, per variant, its config, run id and timings
- ``driver.log``       the driver's output when it runs detached
- ``stop.request``     present while the user asks the experiment to stop

Only the driver writes ``experiment.json`` once it has started (atomically);
pages and the CLI read it back, like a run directory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.errors import RunError, TLCoreError
from tlcore.runs.files import now_iso, read_json, write_json_atomic
from tlcore.runs.run import ACTIVE_STATES, Run
from tlcore.training.config import TrainConfig
from tlcore.training.estimate import MachineSpeed, RunEstimate

log = logging.getLogger("tlcore.lab.compare")

EXPERIMENTS_DIR_NAME = "experiments"
LAST_GROUPS = 3  # (c): the head and the two groups below it
FINE_TUNE_LR_DECAY = 0.5  # lower groups take smaller steps when pretrained features train
POLL_S = 0.25
STARTUP_GRACE_S = 60.0
_CHILDREN: dict[int, subprocess.Popen] = {}  # drivers this process spawned, to reap them


@dataclass(frozen=True)
class Variant:
    """One way to train in the comparison: where the weights start and what trains."""

    key: str
    label: str
    pretrained: bool
    freeze: str  # FreezePlan.parse text
    lr_decay: float = 1.0
    idea: str = ""


VARIANTS: tuple[Variant, ...] = (
    Variant("a", "From scratch", False, "full",
            idea="random weights, every layer trains: no transfer at all"),
    Variant("b", "Feature extraction", True, "features",
            idea="pretrained backbone frozen, only the new head trains"),
    Variant("c", f"Fine-tune the last {LAST_GROUPS} groups", True, f"last-{LAST_GROUPS}",
            FINE_TUNE_LR_DECAY, "the task-specific top layers adapt, the general ones stay"),
    Variant("d", "Full fine-tune", True, "full", FINE_TUNE_LR_DECAY,
            "every pretrained layer adapts (lower ones with smaller steps)"),
    Variant("e", "Progressive unfreezing", True, "progressive", FINE_TUNE_LR_DECAY,
            "head first, then one more group every epoch, from the top down"),
)  # fmt: skip


def variant_by_key(key: str) -> Variant:
    for variant in VARIANTS:
        if variant.key == key:
            return variant
    raise RunError(f"unknown comparison variant {key!r}: use one of a, b, c, d, e.")


def variant_config(
    base: TrainConfig, variant: Variant, experiment_id: str, pretrained: str
) -> TrainConfig:
    """``base`` with the variant's weights and freeze plan; everything that is budget stays."""
    from tlcore.models.freezing import FreezePlan

    plan = FreezePlan.parse(variant.freeze)
    plan.lr_decay = variant.lr_decay
    return dataclasses.replace(
        base,
        weights=pretrained if variant.pretrained else "scratch",
        freeze=plan.to_dict(),
        early_stopping=0,  # the same number of epochs for everyone
        name=f"compare ({variant.key}) {variant.label}",
        experiment=experiment_id,
    ).validate()


def estimate_plan(
    base: TrainConfig,
    manifest: Manifest,
    keys: str = "abcde",
    measure: Callable[[str, int | None, str], MachineSpeed] | None = None,
) -> list[tuple[Variant, RunEstimate]]:
    """Each variant's time on this machine before anything starts: five trainings are a
    decision, and the one that fine-tunes everything costs many times the frozen one."""
    from tlcore.training.estimate import estimate_for

    pretrained = pretrained_weights(base)
    return [(variant, estimate_for(variant_config(base, variant, "estimate", pretrained),
                                   manifest, measure))
            for variant in (variant_by_key(k) for k in dict.fromkeys(keys))]  # fmt: skip


def pretrained_weights(base: TrainConfig) -> str:
    """The base run's weights, or the model's usual pretrained ones when it chose scratch."""
    if base.weights != "scratch":
        return base.weights
    from tlcore.models.catalog import default_weights

    return default_weights(base.model)


def experiments_dir() -> Path:
    return settings.runs_dir() / EXPERIMENTS_DIR_NAME


class Experiment:
    """A handle on one experiment directory; every read goes to disk."""

    def __init__(self, path: Path) -> None:
        self.dir = Path(path)
        self.id = self.dir.name

    def __repr__(self) -> str:
        return f"Experiment({str(self.dir)!r})"

    @property
    def record_path(self) -> Path:
        return self.dir / "experiment.json"

    @property
    def stop_path(self) -> Path:
        return self.dir / "stop.request"

    @property
    def log_path(self) -> Path:
        return self.dir / "driver.log"

    # -- creating and finding ------------------------------------------------------------
    @classmethod
    def create(cls, base: TrainConfig, keys: str = "abcde") -> Experiment:
        """Check the data and every variant's settings once, then write the plan (no training)."""
        from tlcore.data.prepare import prepare_trainable
        from tlcore.runs import limits

        base = dataclasses.replace(base).validate()
        chosen = [variant_by_key(k) for k in dict.fromkeys(keys)]
        if not chosen:
            raise RunError("choose at least one way to train for the comparison.")
        if not base.manifest_path:  # one split for all five: prepare it here, once
            prepared = prepare_trainable(base.data, "compare on", val_fraction=base.val_fraction,
                                         seed=base.seed)  # fmt: skip
            base.manifest_path = str(prepared.manifest_path)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        exp = cls(experiments_dir() / f"{stamp}-compare-{secrets.token_hex(2)}")
        pretrained = pretrained_weights(base)
        variants = []
        for v in chosen:
            config = variant_config(base, v, exp.id, pretrained)
            limits.check_config(config)  # an admin's caps refuse the whole plan up front
            variants.append(
                {"key": v.key, "label": v.label, "idea": v.idea, "config": config.to_dict(),
                 "run_id": None, "queued_unix": None, "running_unix": None, "ended_unix": None,
                 "seconds": 0.0, "error": None}
            )  # fmt: skip
        exp.dir.mkdir(parents=True)
        write_json_atomic(
            exp.record_path,
            {"id": exp.id, "created": now_iso(), "owner": base.owner, "base": base.to_dict(),
             "variants": variants, "driver": None, "spawned_unix": None},
        )  # fmt: skip
        return exp

    @classmethod
    def open(cls, path_or_id: str | Path) -> Experiment:
        """An experiment by directory or by id (a name under ``runs_dir()/experiments``)."""
        text = str(path_or_id)
        candidates = [Path(text)]
        if "/" not in text and text not in ("", ".", ".."):
            candidates.append(experiments_dir() / text)
        for path in candidates:
            if (path / "experiment.json").is_file():
                return cls(path.resolve())
        raise RunError(f"no comparison experiment found at '{text}': see the Compare page.")

    @property
    def record(self) -> dict[str, Any]:
        record = read_json(self.record_path)
        if record is None:
            raise RunError(f"{self.record_path} is missing or unreadable.")
        return record

    def _write(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.record_path, record)

    # -- the driver: one run after another -------------------------------------------------
    def start(self) -> Experiment:
        """Run the plan in a detached driver process (``python -m tlcore.lab.compare DIR``)."""
        if self.status()["state"] in ("running", "stopping"):
            raise RunError(f"experiment {self.id} is already running.")
        self.stop_path.unlink(missing_ok=True)
        record = self.record
        record["spawned_unix"], record["driver"] = time.time(), None
        self._write(record)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with open(self.log_path, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tlcore.lab.compare", str(self.dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        _CHILDREN[proc.pid] = proc
        return self

    def run_all(
        self, on_finish: Callable[[dict[str, Any]], object] | None = None
    ) -> list[dict[str, Any]]:
        """Train every variant not done yet, one at a time, in this process; the summary.

        A variant whose run was stopped or interrupted is resumed from its checkpoint;
        one that finished (or failed for a reason of its own) is kept as it is.
        ``on_finish(row)`` is called with each variant's summary row as it ends.
        """
        record = self.record
        record["driver"] = {"pid": os.getpid(), "start": _process_start(os.getpid())}
        self._write(record)
        for index in range(len(record["variants"])):
            if self.stop_path.exists():
                break
            if self._run_variant(index) and on_finish is not None:
                on_finish(self.summary()[index])
        record = self.record
        record["driver"]["ended"] = now_iso()
        self._write(record)
        return self.summary()

    def _run_variant(self, index: int) -> bool:
        """Start (or resume) variant ``index`` and wait for it; False when there was nothing to do."""
        record = self.record
        entry = record["variants"][index]
        run = None
        if entry["run_id"]:
            run = Run(settings.runs_dir() / entry["run_id"])
            status = run.status()
            if status["state"] == "finished" or (
                status["state"] == "failed" and not status.get("interrupted")
            ):
                return False
            if status["state"] not in ACTIVE_STATES:
                run.resume()
        elif entry["error"]:
            return False
        try:
            if run is None:
                run = Run.start(TrainConfig.from_dict(entry["config"]))
                entry["run_id"] = run.id
        except TLCoreError as exc:
            entry["error"] = str(exc)
            self._write(record)
            log.error("(%s) could not start: %s", entry["key"], exc)
            return True
        entry["queued_unix"], entry["running_unix"], entry["ended_unix"] = time.time(), None, None
        self._write(record)
        log.info("(%s) %s: run %s", entry["key"], entry["label"], run.id)
        stop_sent = False
        while True:
            status = run.status()
            if status["state"] == "running" and entry["running_unix"] is None:
                entry["running_unix"] = time.time()  # the device is ours: the clock starts
                self._write(record)
            if self.stop_path.exists() and not stop_sent:
                run.stop()
                stop_sent = True
            if status["state"] not in ACTIVE_STATES:
                break
            time.sleep(POLL_S)
        entry["ended_unix"] = time.time()
        entry["seconds"] += entry["ended_unix"] - (entry["running_unix"] or entry["queued_unix"])
        self._write(record)
        log.info("(%s) %s: %s", entry["key"], status["state"], status.get("message", ""))
        return True

    def stop(self) -> None:
        """Stop the run now training and start no more (``start`` again continues)."""
        self.stop_path.write_text(now_iso())
        for entry in self.record["variants"]:
            if entry["run_id"]:  # also when the driver is gone or is this very process
                Run(settings.runs_dir() / entry["run_id"]).stop()

    def wait_for_runs(self, timeout: float = 600.0) -> None:
        """Block until none of the experiment's runs is queued or training."""
        for entry in self.record["variants"]:
            if entry["run_id"]:
                Run(settings.runs_dir() / entry["run_id"]).wait(timeout=timeout)

    # -- reading ---------------------------------------------------------------------------
    def driver_alive(self) -> bool:
        driver = self.record.get("driver") or {}
        pid = driver.get("pid")
        if not pid or driver.get("ended"):
            return False
        child = _CHILDREN.get(int(pid))
        if child is not None and child.poll() is not None:
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        started = _process_start(int(pid))
        return started is None or started == driver.get("start")

    def status(self) -> dict[str, Any]:
        """``state``: running, stopping, finished, stopped or interrupted; ``done`` of ``total``."""
        record, rows = self.record, self.summary()
        done = sum(r["state"] in ("finished", "failed", "error") for r in rows)
        spawned = record.get("spawned_unix") or 0
        starting = not record.get("driver") and time.time() - spawned < STARTUP_GRACE_S
        if done == len(rows):
            state = "finished"
        elif self.driver_alive() or starting:  # starting: spawned, not said hello yet
            state = "stopping" if self.stop_path.exists() else "running"
        elif self.stop_path.exists():
            state = "stopped"
        else:
            state = "interrupted"
        return {"state": state, "done": done, "total": len(rows)}

    def summary(self) -> list[dict[str, Any]]:
        """One row per variant: accuracy, time, trainable parameters and the validation curve."""
        rows = []
        for entry in self.record["variants"]:
            config = entry["config"]
            row = {
                "key": entry["key"], "label": entry["label"], "idea": entry.get("idea", ""),
                "weights": config["weights"], "freeze": config["freeze"], "run_id": entry["run_id"],
                "state": "waiting", "message": entry["error"] or "", "epochs": config["epochs"],
                "epochs_done": 0, "val_acc": None, "best_val_acc": None, "seconds": None,
                "trainable_params": None, "fast_path": None, "curve": [],
            }  # fmt: skip
            if entry["error"]:
                row["state"] = "error"
            elif entry["run_id"]:
                row.update(_run_row(Run(settings.runs_dir() / entry["run_id"]), entry))
            rows.append(row)
        return rows


def _run_row(run: Run, entry: dict[str, Any]) -> dict[str, Any]:
    """What the runs directory says about one variant."""
    try:
        status, epochs = run.status(), run.epochs()
    except TLCoreError as exc:
        return {"state": "failed", "message": str(exc)}
    seconds = float(entry.get("seconds") or 0.0)
    if entry.get("running_unix") and not entry.get("ended_unix"):
        seconds += time.time() - entry["running_unix"]  # still training: the clock runs
    vals = [e["val_acc"] for e in epochs if e.get("val_acc") is not None]
    trainable = [int(e["trainable_params"]) for e in epochs if e.get("trainable_params")]
    return {
        "state": status.get("state"), "message": status.get("message", ""),
        "epochs_done": len(epochs), "val_acc": vals[-1] if vals else None,
        "best_val_acc": max(vals) if vals else None,
        "seconds": seconds if entry.get("running_unix") or entry.get("ended_unix") else None,
        "trainable_params": max(trainable) if trainable else None,
        "fast_path": epochs[-1].get("fast_path") if epochs else None,
        "curve": [{k: e.get(k) for k in ("epoch", "val_acc", "val_loss", "train_acc", "train_loss")}
                  for e in epochs],
    }  # fmt: skip


def _process_start(pid: int) -> str | None:
    """The process's start time from /proc (tells a live driver from a reused pid)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def list_experiments(owner: str | None = None) -> list[Experiment]:
    """Every experiment, newest first (ids sort by start time); only ``owner``'s when given."""
    root = experiments_dir()
    if not root.is_dir():
        return []
    found = [Experiment(p) for p in root.iterdir() if (p / "experiment.json").is_file()]
    if owner is not None:
        found = [e for e in found if (read_json(e.record_path) or {}).get("owner", "") == owner]
    return sorted(found, key=lambda e: e.id, reverse=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m tlcore.lab.compare EXPERIMENT_DIR``: the detached driver."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    if len(args) != 1:
        print("usage: python -m tlcore.lab.compare EXPERIMENT_DIR", file=sys.stderr)
        return 2
    try:
        Experiment.open(args[0]).run_all()
    except TLCoreError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
