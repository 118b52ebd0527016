"""The process that executes one run: ``python -m tlcore.runs.worker RUN_DIR [--resume]``.

It is spawned detached (own session, output to ``log.txt``) so nothing the UI
does can kill it. It waits for a free device slot (state ``queued``), trains,
and turns every fault into a state with a message instead of a crash: the UI
only ever reads the run directory.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import errno
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tlcore import settings
from tlcore.data.progress import Progress
from tlcore.errors import TLCoreError
from tlcore.runs import queue as run_queue
from tlcore.runs.files import append_event, keep_history_until
from tlcore.runs.finishing_progress import FinishingCallback, FinishingProgress
from tlcore.runs.run import Run, is_live
from tlcore.training import distributed, embedding_cache

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest
    from tlcore.training.config import TrainConfig
    from tlcore.training.trainer import Trainer

log = logging.getLogger("tlcore.runs.worker")
STATUS_EVERY_S = 0.5
QUEUE_POLL_S = 1.0
_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied",
}


@contextlib.contextmanager
def device_slot(run: Run, device: str) -> Iterator[bool]:
    """Hold one of ``TLCORE_MAX_CONCURRENT_RUNS`` (default 1) lock files for ``device``.

    Yields False if the user stopped the run while it waited. The kernel frees an
    flock when its process dies, so a killed worker never blocks the queue.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no queue, runs share the device
        yield True
        return
    slots = settings.max_concurrent_runs()
    paths = [run.dir.parent / f".device-{device}-{i}.lock" for i in range(slots)]
    held: IO[str] | None = None
    while held is None:
        ahead = run_queue.ahead_of(run.dir, device, is_live)  # first come, first served
        for path in [] if ahead else paths:
            f = open(path, "a+")  # noqa: SIM115 - kept open while the slot is held
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            f.truncate(0)
            f.write(run.id)
            f.flush()
            held = f
            break
        if held is None:
            if run.stop_path.exists():
                run_queue.leave(run.dir)
                yield False
                return
            holders = ", ".join(sorted({p.read_text().strip() for p in paths if p.exists()} - {""}))
            if ahead:
                holders = f"{len(ahead)} earlier run(s) ({', '.join(ahead[:3])})"
            run.write_status(
                "queued",
                pid=os.getpid(),
                message=f"Queued: waiting for {holders or 'another run'} to finish on {device}.",
            )
            time.sleep(QUEUE_POLL_S)
    run_queue.leave(run.dir)
    try:
        yield True
    finally:
        held.close()


STOPPED_BEFORE_TRAINING = "Stopped by request before training started. Resume to start it."
STOP_GRACE_S = 10.0


class StopBeforeTraining:
    """Honour ``stop.request`` while the worker loads the model and data or embeds photos.

    The trainer checks the request after each step; before the first one (loading,
    the fast path's embedding pass, a slow check) nothing did, so ``tlcore stop`` was
    ignored. A watcher thread interrupts the main thread (KeyboardInterrupt, so
    ``finally`` blocks still clean up) and, if it does not end within
    ``STOP_GRACE_S``, records the stop and ends the process.
    """

    def __init__(self, run: Run, poll_s: float = 0.2) -> None:
        self.run, self.poll_s = run, poll_s
        self.armed = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="stop-watch", daemon=True)

    def __enter__(self) -> StopBeforeTraining:
        self.armed.set()
        WATCHERS.append(self)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()
        WATCHERS.remove(self)

    def disarm(self) -> None:
        """Training has started: the trainer honours the request from here on."""
        self.armed.clear()

    def _watch(self) -> None:
        while self.armed.is_set():
            if self.run.stop_path.exists():
                _thread.interrupt_main()
                deadline = time.monotonic() + STOP_GRACE_S
                while self.armed.is_set() and time.monotonic() < deadline:
                    time.sleep(self.poll_s)
                if self.armed.is_set():  # stuck in native code: record it and end here
                    self.run.write_status("stopped", pid=os.getpid(),
                                          message=STOPPED_BEFORE_TRAINING)  # fmt: skip
                    os._exit(0)
                return
            time.sleep(self.poll_s)


WATCHERS: list[StopBeforeTraining] = []


class RunRecorder:
    """The callback that writes the run directory: events, status, checkpoints, stop requests."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.last_status = 0.0
        self.embedding: list[float] = []  # start and end of the fast path's pass (monotonic)

    def on_fit_start(self, trainer: Trainer) -> None:
        path = "fast path (cached embeddings)" if trainer.fast_path else "full model"
        why = f" ({trainer.fast_path_reason})" if trainer.fast_path_reason else ""
        if getattr(trainer, "frozen_depth", 0):
            why += f"; its first {trainer.frozen_depth} layers run once (partial fast path)"
        log.info("training on %s with the %s%s", trainer.device, path, why)
        count = len(trainer.train_set) + len(trainer.val_set)
        items = self.run.task.items
        self.status(trainer, f"Embedding the {count} {items} once (fast path)." if trainer.fast_path
                    else f"Reading the {count} {items} for epoch 1.")  # fmt: skip

    def on_embed_progress(self, trainer: Trainer, done: int, total: int) -> None:
        """The fast path's one pass over the photos, k of N, at most twice a second; the
        status keeps it as a ``Progress`` so the page and the CLI draw a bar with time left."""
        if done == 0 or done >= total:
            self.embedding = [*self.embedding[:1], time.monotonic()]
        elapsed = time.monotonic() - (self.embedding[0] if self.embedding else time.monotonic())
        task, finished = once_pass_words(trainer, total, self.run.task.items)
        embedding = Progress(task, done, total, elapsed).to_dict()
        if done >= total:
            self.status(trainer, finished, embedding=embedding)
        elif done == 0 or time.monotonic() - self.last_status > STATUS_EVERY_S:
            self.status(trainer, f"{task}: {done} of {total}.", embedding=embedding)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if len(self.embedding) == 2 and not trainer.embedding_cache_hits:
            remember_embedding_speed(trainer, self.embedding[1] - self.embedding[0])
        self.embedding = []
        for watcher in WATCHERS:  # from here the trainer honours stop.request after each step
            watcher.disarm()
        self.status(trainer, f"Training epoch {epoch} of {trainer.config.epochs}.", embedding=None)

    def on_step_end(self, trainer: Trainer, event: dict[str, Any]) -> None:
        append_event(self.run.metrics_path, event)
        if self.run.stop_path.exists():
            trainer.request_stop(f"Stopped by request at step {trainer.step}.")
        if time.monotonic() - self.last_status > STATUS_EVERY_S:
            batch, batches = trainer.batch_in_epoch, trainer.steps_per_epoch
            where = f": batch {batch} of {batches}" if 0 < batch <= batches else ""
            self.status(
                trainer, f"Training epoch {event['epoch']} of {trainer.config.epochs}{where}."
            )

    def on_epoch_end(self, trainer: Trainer, event: dict[str, Any]) -> None:
        from tlcore.training.checkpoints import save_checkpoint

        append_event(self.run.metrics_path, event)  # the epoch's confusion matrix is in the event
        save_checkpoint(self.run.checkpoints_dir, "last", trainer.model, trainer.state_dict())
        if event["is_best"]:
            save_checkpoint(self.run.checkpoints_dir, "best", trainer.model, trainer.state_dict())
        log.info(
            "epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.2f s%s",
            event["epoch"], event["epochs"], event["train_loss"], event["train_acc"],
            event["val_loss"], event["val_acc"], event["seconds"], " (best)" if event["is_best"] else "",
        )  # fmt: skip
        self.status(trainer, f"Finished epoch {event['epoch']} of {trainer.config.epochs}.")

    def status(self, trainer: Trainer, message: str, **fields: Any) -> None:
        self.last_status = time.monotonic()
        self.run.write_status("running", pid=os.getpid(), epoch=trainer.epoch, step=trainer.step,
                              epochs=trainer.config.epochs, fast_path=trainer.fast_path,
                              device=str(trainer.device), message=message, **fields)  # fmt: skip


def once_pass_words(trainer: Trainer, total: int, items: str) -> tuple[str, str]:
    """(the task, what it finished) of the pass before training: the fast path embeds the
    photos or texts; the partial one runs a text encoder's frozen bottom layers."""
    depth = trainer.frozen_depth
    if not trainer.fast_path and depth:
        return (f"Running the {items} through the frozen layers once (partial fast path)",
                f"Ran all {total} {items} through the {depth} frozen layers; now the top layers "
                "learn.")  # fmt: skip
    return (f"Embedding the {items} once (fast path)",
            f"Embedded all {total} {items}; now the new head learns.")  # fmt: skip


def remember_embedding_speed(trainer: Trainer, seconds: float) -> None:
    """A real pass over every photo is the truest speed of this machine: the Train page's
    next estimate uses it instead of its short measurement."""
    from tlcore.training.devices import device_name
    from tlcore.training.machine_speed import remember_observed_speed

    if trainer.train_views is None:  # the partial fast path's pass is not a whole-network one
        return
    images = len(trainer.train_views[0]) * len(trainer.train_views) + len(trainer.val_set)
    with contextlib.suppress(Exception):  # only an estimate: never fail a run for it
        remember_observed_speed(trainer.config.model, trainer.config.img_size,
                                device_name(trainer.device), seconds / max(images, 1))  # fmt: skip


def share_cpu_threads() -> None:
    """Runs that train at once on a shared server split the CPU cores between them."""
    import torch

    from tlcore.training.devices import cpu_threads_per_run

    threads = cpu_threads_per_run(settings.max_concurrent_runs())
    if threads is not None:
        torch.set_num_threads(threads)
    log.info("CPU threads: %d", torch.get_num_threads())


def choose_trainer(
    config: TrainConfig, manifest: Manifest, callbacks: list[Any], cache_dir: Path
) -> Trainer:
    """The ``Trainer``; a run with a target domain also scores it, or adapts to it (DANN)."""
    from tlcore.training.trainer import Trainer

    if not getattr(config, "target_data", None):
        return Trainer(config, manifest, callbacks=callbacks, cache_dir=cache_dir)
    from tlcore.training.domain_adaptation import DANNTrainer, TargetEvaluation, load_target_domain

    target = load_target_domain(config.target_data, manifest.classes)
    callbacks = [TargetEvaluation(target), *callbacks]
    if getattr(config, "domain_adaptation", "none") == "dann":
        return DANNTrainer(config, manifest, target, callbacks=callbacks, cache_dir=cache_dir)
    return Trainer(config, manifest, callbacks=callbacks, cache_dir=cache_dir)


def train_run(run: Run, resume: bool) -> str:
    """Build the trainer, continue from the last checkpoint if asked, train; the final state."""
    from tlcore.data.manifest import Manifest
    from tlcore.training.checkpoints import save_checkpoint

    config = run.config
    main = distributed.is_main()  # under torchrun only rank 0 writes the run directory
    if main:
        run.write_status("running", pid=os.getpid(), message="Loading the model and data.")
    cache_dir = embedding_cache.folder(run.dir.parent)
    share_cpu_threads()
    manifest = Manifest.load(run.manifest_path)
    recorders = [RunRecorder(run)] if main else []
    trainer = choose_trainer(config, manifest, recorders, cache_dir)
    resume_note = resume_from_intact_checkpoint(run, trainer) if resume else ""
    if resume and not main:  # the checkpoint holds the epoch's totals over all ranks: count once
        trainer.partial.update(loss_sum=0.0, correct=0, seen=0)
    if resume_note and main:
        run.write_status("running", pid=os.getpid(), message=resume_note)
    if main:
        keep_history_until(run.metrics_path, trainer.epoch, trainer.step)
    outcome = trainer.fit()
    if not main:
        return outcome
    if outcome == "stopped":
        save_checkpoint(run.checkpoints_dir, "last", trainer.model, trainer.state_dict())
    best = trainer.best
    summary = (
        f"best val accuracy {best['val_acc']:.3f} (epoch {best['epoch']})" if best["epoch"] else ""
    )
    message = (
        trainer.stop_message
        or f"Finished {trainer.epoch} epoch{'s' * (trainer.epoch != 1)}: {summary}."
    )
    if outcome == "stopped" and summary:
        message = f"{message} After {trainer.epoch} epochs: {summary}."
    if resume_note:
        message = f"{message} ({resume_note})"
    if outcome == "finished":
        finish_scoring(run, trainer)
    log.info("run %s: %s", outcome, message)
    run.write_status(outcome, pid=os.getpid(), epoch=trainer.epoch, step=trainer.step,
                     message=message, best_val_acc=best["val_acc"] if best["epoch"] else None)  # fmt: skip
    return outcome


def _columns_run(run: Run, resume: bool) -> str:
    from tlcore.runs.columns_run import train_columns_run  # heads on cached embeddings

    # fine-tuning honours stop.request itself after each step, once its epochs start
    return train_columns_run(run, resume, lambda: [w.disarm() for w in WATCHERS])


def _boxes_run(run: Run, resume: bool) -> str:
    from tlcore.runs.boxes_run import train_boxes_run  # a detector (object detection)

    return train_boxes_run(run, resume)


# tasks that do not train through the Trainer, by Task.key; every other task: train_run
RUNNERS: dict[str, Callable[[Run, bool], str]] = {
    "image-columns": _columns_run,
    "text-columns": _columns_run,
    "image-boxes": _boxes_run,
}


def finishing_status(run: Run, epoch: int, step: int) -> FinishingCallback:
    """The steps after the last epoch into the run's status, at most twice a second (and at
    each step's start and end): the step in words (``message``), its count (``after``, drawn
    as a bar like the embedding's) and the time left until finished (``finishing``)."""
    last = [0.0, -1]

    def tell(where: FinishingProgress) -> None:
        now = time.monotonic()
        new_step = where.step != last[1]
        if not new_step and where.done < where.total and now - last[0] < STATUS_EVERY_S:
            return
        last[:] = [now, where.step]
        run.write_status("running", pid=os.getpid(), epoch=epoch, step=step,
                         message=where.message(), after=where.progress().to_dict(),
                         finishing=where.to_dict())  # fmt: skip

    return tell


def finish_scoring(run: Run, trainer: Trainer) -> None:
    """Each checkpoint's validation outputs once, then calibration, "none of these" and the
    Evaluate page's score from them (tlcore.runs.finish), each step said in the run's status."""
    from tlcore.runs.finish import finish_run

    run.write_status("running", pid=os.getpid(), epoch=trainer.epoch, step=trainer.step,
                     message="Training done; finishing: calibrating the probabilities and "
                     "scoring the model.")  # fmt: skip
    try:
        finish_run(run, trainer, finishing_status(run, trainer.epoch, trainer.step))
    except Exception as exc:  # noqa: BLE001 - fitted and scored on first use instead; the run is done
        log.warning("could not calibrate and score the finished run: %s", exc, exc_info=True)


def resume_from_intact_checkpoint(run: Run, trainer: Trainer) -> str:
    """Load the newest intact checkpoint (last, else best) into ``trainer``; a note if one was not.

    A truncated ``last`` (a crash or a full disk mid-write on another system) must not
    make a run impossible to resume: it is skipped with a note saying so, and the run
    goes on from ``best``, or from the start when no checkpoint can be read.
    """
    import copy

    from tlcore.training.checkpoints import CheckpointDamaged, has_checkpoint, load_checkpoint

    pristine = copy.deepcopy(trainer.model.state_dict()), trainer.state_dict()
    damaged: list[str] = []
    for name in ("last", "best"):
        if not has_checkpoint(run.checkpoints_dir, name):
            continue
        try:
            trainer.load_state_dict(load_checkpoint(run.checkpoints_dir, name, trainer.model))
        except (CheckpointDamaged, KeyError, TypeError, ValueError) as exc:
            log.warning("checkpoint %s not used: %s", name, exc)
            damaged.append(str(exc) if isinstance(exc, CheckpointDamaged) else f"'{name}': {exc}")
            trainer.model.load_state_dict(pristine[0])
            trainer.load_state_dict(pristine[1])
            continue
        log.info(
            "resumed from epoch %d, step %d (%s checkpoint)", trainer.epoch, trainer.step, name
        )
        if not damaged:
            return ""
        return _sentence(f"{'; '.join(damaged)}: resumed from the '{name}' checkpoint "
                         f"(epoch {trainer.epoch}).")  # fmt: skip
    if damaged:
        return _sentence(f"{'; '.join(damaged)}: no intact checkpoint, so training started "
                         "again from epoch 0.")  # fmt: skip
    return ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def fault_message(exc: BaseException) -> str:
    """One line a person can act on, for any exception the training raised."""
    from tlcore.training.devices import is_out_of_memory

    if is_out_of_memory(exc):
        return (  # a resumed run keeps its settings, so a smaller batch means a new run
            "Out of memory on the GPU: start a new run with a smaller batch size or image size."
        )
    if isinstance(exc, TLCoreError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        where = f" ({exc.filename})" if exc.filename else ""
        return (
            f"Could not write to the runs folder{where}: {_DISK_ERRNOS[exc.errno]}. The previous "
            "checkpoint is kept: free some space (or make the folder writable) and resume."
        )
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"Unexpected error {type(exc).__name__}: {first} (details in log.txt)."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tlcore.runs.worker", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="the run directory to execute")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    run = Run(args.run_dir.resolve())
    try:  # under torchrun: join the other ranks first (they all start together)
        distributed.init(run.config.device)
        return execute(run, args.resume)
    finally:
        distributed.shutdown()


def execute(run: Run, resume: bool, worker_cmd: str | None = None) -> int:
    """Wait for a device, train, record the outcome; the exit code (also under torchrun).

    ``worker_cmd`` is what this process's command line holds when it is not
    ``python -m tlcore.runs.worker RUN_DIR`` (``torchrun ... tlcore train``), so that
    ``Run.status`` can tell a live worker from a dead one.
    """
    main = distributed.is_main()
    if main:
        run.write_status("queued", pid=os.getpid(), message="Worker started.",
                         worker_cmd=worker_cmd)  # fmt: skip
    log.info("worker pid %d for %s (resume=%s, rank %d of %d)", os.getpid(), run.dir, resume,
             distributed.rank(), distributed.world_size())  # fmt: skip
    try:
        from tlcore.training.devices import device_name, resolve_device

        device = device_name(resolve_device(run.config.device))
        with device_slot(run, device) if main else contextlib.nullcontext(True) as acquired:
            if not distributed.from_main(acquired):  # the other ranks wait for rank 0's turn
                if main:
                    run.write_status("stopped", pid=os.getpid(), message="Stopped while queued.")
                return 0
            alone = main and distributed.world_size() == 1
            with StopBeforeTraining(run) if alone else contextlib.nullcontext():
                RUNNERS.get(run.task.key, train_run)(run, resume)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every fault must end as a state
        if isinstance(exc, KeyboardInterrupt | SystemExit) and not isinstance(
            exc, KeyboardInterrupt
        ):
            raise
        if isinstance(exc, KeyboardInterrupt) and main and run.stop_path.exists():
            run.write_status("stopped", pid=os.getpid(), message=STOPPED_BEFORE_TRAINING)
            return 0
        traceback.print_exc(file=sys.stdout)
        message = fault_message(exc)
        log.error("run failed: %s", message)
        if not main:  # torchrun ends rank 0 next; this is the only message that explains why
            message = f"Rank {distributed.rank()}: {message}"
        try:
            run.write_status("failed", pid=os.getpid(), message=message)
        except OSError:  # a full disk: once this process is gone, status() says interrupted
            log.error("could not record the failure in %s", run.status_path)
        return 1
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
