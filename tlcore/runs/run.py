"""A training run is a directory; this module is the only code that knows its layout.

The worker process writes the directory, pages and the CLI read it back, so a
browser tab, a page rerun or a Streamlit restart can neither kill nor corrupt
a run. Layout of ``runs_dir()/<run_id>/``:

- ``config.json``   the TrainConfig, data manifest path + fingerprint, versions
- ``manifest.json`` a copy of the data manifest the run trains on
- ``status.json``   state, epoch/step, a human message, pid, heartbeat (atomic)
- ``metrics.jsonl`` one event per line (append + flush; readers skip a partial last line)
- ``checkpoints/{last,best}.*``, ``log.txt``
- per checkpoint, once it is scored: ``outputs-<checkpoint>.safetensors`` (the validation
  outputs, ``tlcore.runs.outputs``), ``evaluation-``, ``trust-`` and ``unknown-<checkpoint>.*``
  (runs from before kept ``confusion/epoch_NNN.json`` too; nothing reads it)
- ``stop.request``  present while the user asks the worker to stop
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore import __version__, settings
from tlcore.data.progress import ProgressCallback
from tlcore.errors import DataError, RunError, TLCoreError
from tlcore.runs.files import load_json_object, now_iso, read_events, read_json, write_json_atomic
from tlcore.runs.run_checks import config_type_problems, refuse_links
from tlcore.training.config import TrainConfig

if TYPE_CHECKING:
    from tlcore.data.task import Task

STATES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE_STATES = ("queued", "running")
STARTUP_GRACE_S = 60.0
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # what make_run_id writes, no '..'
_CHILDREN: dict[int, subprocess.Popen] = {}  # workers this process spawned, to reap them


def make_run_id(config: TrainConfig) -> str:
    """Sortable by start time, readable at a glance: 20261123-193000-lite0-features-ab12."""
    model = re.sub(r"^(timm/)?(tf_)?(efficientnet_)?", "", config.model)
    model = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")[:20] or "model"
    preset = re.sub(r"[^A-Za-z0-9]+", "-", str(config.freeze.get("preset", "custom")))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model}-{preset}-{secrets.token_hex(2)}"


def package_versions() -> dict[str, str]:
    versions = {"tlcore": __version__, "python": sys.version.split()[0]}
    for name in ("torch", "torchvision", "timm"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


class Run:
    """A handle on one run directory; cheap to create, every read goes to disk."""

    def __init__(self, path: Path) -> None:
        self.dir = Path(path)
        self.id = self.dir.name

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"

    # -- files ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.dir / "config.json"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def stop_path(self) -> Path:
        return self.dir / "stop.request"

    @property
    def log_path(self) -> Path:
        return self.dir / "log.txt"

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    # -- creating and finding runs -------------------------------------------------------
    @classmethod
    def create(cls, config: TrainConfig, progress: ProgressCallback | None = None) -> Run:
        """Validate, prepare the data and write the run directory, without starting it
        (``progress`` hears the photos being read)."""
        config.validate()
        from tlcore.data.prepare import prepare_trainable
        from tlcore.runs import limits

        limits.check_config(config)  # the admin's caps on a shared server
        limits.check_nproc(config)
        limits.check_memory(config)  # a batch that cannot fit fails here, not in the worker
        limits.check_weights_file(config)
        from tlcore.data.manifest import Manifest
        from tlcore.data.task import task_of
        from tlcore.data.versions import version_record

        if config.manifest_path:
            manifest = Manifest.load(Path(config.manifest_path))
        else:
            prepared = prepare_trainable(config.data, "train on", val_fraction=config.val_fraction,
                                         seed=config.seed, progress=progress)  # fmt: skip
            manifest = prepared.manifest
            config.manifest_path = str(prepared.manifest_path)
        if not manifest.items_for("train"):
            raise DataError(f"cannot train on {config.data}: the training split has no images.")
        from tlcore.models.text_catalog import check_model_fits_data

        task = task_of(manifest)  # decided once, here; every wing looks it up (Run.task)
        check_model_fits_data(config.model, task.modality)
        limits.check_dataset(len(manifest.items))
        run = cls.new_folder(config)
        manifest.save(run.manifest_path)
        write_json_atomic(
            run.config_path,
            {
                "id": run.id,
                "created": now_iso(),
                "owner": config.owner,
                "task": task.to_dict(),
                "config": config.to_dict(),
                "data": {
                    "source": str(config.data),
                    "manifest_path": config.manifest_path,
                    "fingerprint": manifest.fingerprint(),
                    "classes": list(manifest.classes),
                    "counts": manifest.counts(),
                    "split_seed": manifest.seed,
                    "split_source": manifest.split_source,
                    "version": version_record(config.manifest_path),  # tlcore.data.versions
                    "val_copies": len(manifest.copies_in_validation()),  # tlcore.data.near_copies
                },
                "versions": package_versions(),
            },
        )
        run.write_status("queued", message="Waiting for the worker to start.")
        return run

    @classmethod
    def new_folder(cls, config: TrainConfig) -> Run:
        """A new, empty run folder under the runs folder, named for ``config``; RunError in
        words when it cannot be made (every task's run starts here)."""
        root = settings.runs_dir()
        run = cls(root / make_run_id(config))
        try:
            root.mkdir(parents=True, exist_ok=True)
            run.dir.mkdir()
        except OSError as exc:  # TLCORE_RUNS_DIR is a file, read-only, on a full disk...
            raise RunError(
                f"cannot create a run in the runs folder {root} (TLCORE_RUNS_DIR): "
                f"{exc.strerror or exc}. Point TLCORE_RUNS_DIR at a folder you can write to."
            ) from None
        return run

    @classmethod
    def start(cls, config: TrainConfig, progress: ProgressCallback | None = None) -> Run:
        """Create the run directory and spawn its worker; returns at once (after reading
        the photos, which ``progress`` hears)."""
        from tlcore.runs.limits import check_queue

        check_queue(config.owner, len(active_runs(config.owner)))
        run = cls.create(config, progress)
        run.spawn_worker(resume=False)
        return run

    @classmethod
    def open(cls, path_or_id: str | Path) -> Run:
        """A run by directory path or by id (a directory name under runs_dir()); a link is
        refused, so the worker never writes through one to a folder elsewhere."""
        candidates = [Path(path_or_id), settings.runs_dir() / str(path_or_id)]
        for path in candidates:
            path = Path(os.path.abspath(path))  # '..' taken away first: what is checked is opened
            if path.is_symlink() or (path / "config.json").is_file():
                refuse_links(path)
                return cls(path.resolve())
        raise RunError(f"no training run found at '{path_or_id}': see `tlcore runs` for ids.")

    @classmethod
    def from_id(cls, run_id: str) -> Run:
        """A run by id alone (from a URL or a browser): never a path, never outside runs_dir()."""
        text = str(run_id)
        if not _RUN_ID.fullmatch(text):
            raise RunError(f"{text[:80]!r} is not a run id (letters, digits, '-', '_' and '.').")
        root = settings.runs_dir().resolve()
        refuse_links(root / text)
        path = (root / text).resolve()
        if path.parent != root or not (path / "config.json").is_file():
            raise RunError(f"no training run with the id '{text}' in {root}.")
        return cls(path)

    # -- the worker ----------------------------------------------------------------------
    def spawn_worker(self, *, resume: bool) -> int:
        """A detached process (own session) so closing the app or the terminal cannot kill it."""
        from tlcore.runs import queue as run_queue

        config = self.config
        cmd = [sys.executable, "-m", "tlcore.runs.worker", str(self.dir)] + (
            ["--resume"] if resume else []
        )
        if config.nproc > 1:  # torchrun starts nproc workers (DDP); see tlcore.training.distributed
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            cmd = [*launcher, f"--nproc_per_node={config.nproc}", *cmd[1:]]
        run_queue.enqueue(self.dir, run_queue.device_key(config.device))  # submission order
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        return proc.pid

    # -- reading -------------------------------------------------------------------------
    @property
    def record(self) -> dict[str, Any]:
        try:
            record = load_json_object(self.config_path)
        except OSError as exc:
            raise RunError(
                f"{self.config_path} is missing or unreadable ({exc.strerror})."
            ) from None
        except ValueError as exc:  # bad JSON, not UTF-8, nested too deep, not an object
            raise RunError(f"{self.config_path} is damaged: {exc}.") from None
        if not isinstance(record.get("config"), dict):
            raise RunError(f"{self.config_path} holds no training settings ('config').")
        data = record.get("data")
        classes = data.get("classes") if isinstance(data, dict) else None
        if classes is not None and not (
            isinstance(classes, list) and all(isinstance(c, str) and c.strip() for c in classes)
        ):  # a blank name would print as a blank label
            raise RunError(f"{self.config_path} lists a class name that is empty or not text.")
        return record

    @property
    def config(self) -> TrainConfig:
        values = self.record["config"]
        problems = config_type_problems(values)
        if problems:  # "epochs": "ten" would show as "1/ten" and fail deep in the worker
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RunError(f"{self.config_path} has unusable settings: {problems[0]}{more}.")
        try:
            return TrainConfig.from_dict(values)
        except (TLCoreError, TypeError, ValueError) as exc:
            first = (str(exc).splitlines() or [""])[0][:200]
            raise RunError(f"{self.config_path} has unusable settings ({first}).") from None

    @property
    def task(self) -> Task:
        """What the run learns (``tlcore.data.task``), as decided when it was created; a run
        written before the task was kept gets it from its manifest."""
        from tlcore.data.task import Task, task_of

        block = self.record.get("task")
        if block is not None:
            try:
                return Task.from_dict(block)
            except TLCoreError as exc:
                raise RunError(f"{self.config_path}: {exc}") from None
        from tlcore.data.manifest import Manifest

        return task_of(Manifest.load(self.manifest_path))

    def write_status(self, state: str, **fields: Any) -> dict[str, Any]:
        """Replace status.json; fields not given are carried over from the previous status."""
        status = read_json(self.status_path) or {}
        status.update(fields, state=state, heartbeat=now_iso(), heartbeat_unix=time.time())
        status.setdefault("epochs", self.config.epochs)
        write_json_atomic(self.status_path, status)
        return status

    def status(self) -> dict[str, Any]:
        """The worker's last word, corrected when its process has died without saying so."""
        status = read_json(self.status_path)
        if status is None:
            status = (
                self._status_from_metrics()
                if self.status_path.exists()
                else {"state": "queued", "message": "No status yet."}
            )
        status.setdefault("epoch", 0)
        status.setdefault("step", 0)
        if status.get("state") in ACTIVE_STATES and not self._worker_alive(status):
            status["state"] = "failed"
            status["interrupted"] = True
            status["message"] = (
                f"Interrupted: the worker process ({status.get('pid') or 'never started'}) is gone "
                f"after epoch {status.get('epoch', 0)}. Resume to continue from the last checkpoint."
            )
        return status

    def _status_from_metrics(self) -> dict[str, Any]:
        """A damaged status.json: what metrics.jsonl and the checkpoints say happened."""
        epochs = self.epochs()
        done = epochs[-1]["epoch"] if epochs else 0
        try:
            target = int(self.config.epochs)
        except (RunError, TypeError, ValueError):
            target = None
        note = "status.json is damaged; this state is rebuilt from metrics.jsonl"
        if target and done >= target and (self.checkpoints_dir / "best.safetensors").is_file():
            return {"state": "finished", "epoch": done, "epochs": target,
                    "message": f"Finished {done} epoch{'s' * (done != 1)} ({note})."}  # fmt: skip
        return {"state": "failed", "epoch": done, "epochs": target, "interrupted": True,
                "message": f"Stopped after epoch {done} ({note}). Resume to continue "
                "from the last checkpoint."}  # fmt: skip

    def _worker_alive(self, status: dict[str, Any]) -> bool:
        pid = status.get("pid")
        if not pid:  # written by Run.start / resume before the worker said hello
            spawned = [p for p in _CHILDREN.values() if str(self.dir) in " ".join(map(str, p.args))]
            if spawned:
                return any(p.poll() is None for p in spawned)
            return time.time() - float(status.get("heartbeat_unix", 0)) < STARTUP_GRACE_S
        return pid_is_worker(int(pid), self.dir, status.get("worker_cmd"))

    def metrics(self) -> list[dict[str, Any]]:
        return read_events(self.metrics_path)

    def epochs(self) -> list[dict[str, Any]]:
        """One epoch event per epoch, in order (a later line for the same epoch wins)."""
        by_epoch = {e["epoch"]: e for e in self.metrics()
                    if e.get("type") == "epoch" and _is_count(e.get("epoch"))}  # fmt: skip
        return [by_epoch[k] for k in sorted(by_epoch)]

    def latest_confusion(self) -> dict[str, Any] | None:
        epochs = self.epochs()
        return epochs[-1].get("confusion") if epochs else None

    def summary(self) -> dict[str, Any]:
        """One row for the runs table; a run whose files are damaged is a 'broken' row saying why."""
        try:
            return self._summary()
        except (RunError, AttributeError, KeyError, TypeError, ValueError) as exc:
            return {"id": self.id, "name": "", "state": "broken", "model": None, "freeze": "",
                    "best_val_acc": None, "epochs_done": 0, "epochs": None, "created": None,
                    "owner": "", "message": f"Cannot be read: {exc}"}  # fmt: skip

    def _summary(self) -> dict[str, Any]:
        self.config  # noqa: B018 - a config of the wrong types is a broken row, not "1/ten"
        record, status, epochs = self.record, self.status(), self.epochs()
        config = record.get("config", {})
        val = [e["val_acc"] for e in epochs if e.get("val_acc") is not None]
        return {
            "id": self.id,
            "name": config.get("name", ""),
            "state": status.get("state"),
            "model": config.get("model"),
            "freeze": freeze_label(config.get("freeze") or {}),
            "best_val_acc": max(val) if val else None,
            "epochs_done": len(epochs),
            "epochs": config.get("epochs"),
            "created": record.get("created"),
            "owner": record.get("owner", ""),
            "message": status.get("message", ""),
        }

    # -- control -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the worker to stop after its current step; it saves a checkpoint first."""
        if self.status().get("state") in ACTIVE_STATES:
            self.stop_path.write_text(now_iso())

    def resume(self, spawn: bool = True) -> Run:
        """Continue a stopped, failed or interrupted run from its last checkpoint.

        ``spawn=False`` only marks it queued (``torchrun ... tlcore resume`` trains it in-process).
        """
        status = self.status()
        if status["state"] in ACTIVE_STATES:
            raise RunError(f"run {self.id} is still {status['state']}: stop it before resuming.")
        if status["state"] == "finished":
            raise RunError(f"run {self.id} has finished: start a new run to train more.")
        from tlcore.runs.limits import check_queue

        owner = self.record.get("owner", "")
        check_queue(owner, len(active_runs(owner)))  # a resumed run waits in the queue too
        self.stop_path.unlink(missing_ok=True)
        self.write_status("queued", message="Resuming: waiting for the worker.", pid=None)
        if spawn:
            self.spawn_worker(resume=True)
        return self

    def wait(self, timeout: float | None = None, poll_s: float = 0.2) -> dict[str, Any]:
        """Block until the run ends; its final status. RunError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if status["state"] not in ACTIVE_STATES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"run {self.id} still {status['state']} after {timeout:.0f} s.")
            time.sleep(poll_s)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def pid_is_worker(pid: int, run_dir: Path, worker_cmd: str | None = None) -> bool:
    """Alive, not a zombie, and (where /proc tells) still our worker, not a reused pid."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:  # our worker ended (and is reaped) ...
        _CHILDREN.pop(pid, None)  # ... so a live process with its pid is another one: ask /proc
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc") / str(pid)
    try:
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        if not cmdline.strip():  # just spawned: the kernel shows the new command line only
            return True  # once exec has set it up (a window vfork leaves open): cannot tell yet
        if worker_cmd:  # trained in-process by `torchrun ... tlcore train`
            return worker_cmd in cmdline
        return "tlcore.runs.worker" in cmdline and run_dir.name in cmdline
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust the signal check


def is_live(run_dir: Path) -> bool:
    """A run folder whose run is still queued or running (its worker alive)."""
    run = Run(run_dir)
    return run.config_path.is_file() and run.status().get("state") in ACTIVE_STATES


def freeze_label(plan: dict[str, Any]) -> str:
    """ "last-3" rather than "last-k": what the user picked (FreezePlan.label, without torch)."""
    preset = str(plan.get("preset", ""))
    if preset == "last-k":
        return f"last-{plan.get('k', 1)}"
    if preset == "progressive" and int(plan.get("every", 1)) != 1:
        return f"progressive-{plan['every']}"
    return preset


def list_runs(owner: str | None = None) -> list[Run]:
    """Every run under runs_dir(), newest first (run ids sort by start time); ``owner``'s only.
    A link is not a run (``refuse_links``): it is never listed, counted or pruned."""
    root = settings.runs_dir()
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir()
            if not p.is_symlink() and (p / "config.json").is_file()]  # fmt: skip
    if owner is not None:
        runs = [r for r in runs if (read_json(r.config_path) or {}).get("owner", "") == owner]
    return sorted(runs, key=lambda r: r.id, reverse=True)


def active_runs(owner: str | None = None) -> list[Run]:
    """Runs waiting or training (the queue a user's cap counts)."""
    return [r for r in list_runs(owner) if r.status().get("state") in ACTIVE_STATES]
