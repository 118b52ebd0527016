"""Stop, resume and SIGKILL: the epoch counter and one metrics history continue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tlcore.data.prepare import prepare_data
from tlcore.errors import RunError
from tlcore.runs.run import Run
from tlcore.training.checkpoints import load_checkpoint, save_checkpoint
from tlcore.training.config import TrainConfig
from tlcore.training.trainer import Callback, Trainer


def wait_for(predicate, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def slow_config(sample_dir, epochs: int) -> TrainConfig:
    """Augmentation on: the full model runs every step, so an epoch lasts long enough to interrupt."""
    return TrainConfig(data=str(sample_dir), epochs=epochs, img_size=64, batch_size=8,
                       augment="light")  # fmt: skip


def steps_of(run: Run) -> list[int]:
    return [e["step"] for e in run.metrics() if e["type"] == "step"]


def test_stop_then_resume_continues_the_epochs(sample_dir):
    run = Run.start(slow_config(sample_dir, epochs=4))
    wait_for(lambda: len(run.epochs()) >= 2)
    run.stop()
    status = run.wait(timeout=120)
    assert status["state"] == "stopped", status
    before = run.epochs()
    assert 2 <= len(before) < 4 and status["epoch"] == len(before)
    assert "Stopped by request" in status["message"]
    run.resume()
    final = run.wait(timeout=300)
    assert final["state"] == "finished", (final, run.log_path.read_text()[-2000:])
    after = run.epochs()
    assert [e["epoch"] for e in after] == [1, 2, 3, 4]
    assert after[: len(before)] == before  # history kept, nothing restarted
    assert steps_of(run) == list(range(1, 41))  # one history: each step once, in order
    assert "resumed from epoch" in run.log_path.read_text()


def test_sigkill_mid_epoch_then_resume_finishes(sample_dir):
    run = Run.start(slow_config(sample_dir, epochs=3))
    wait_for(lambda: any(e["type"] == "step" and e["epoch"] == 2 for e in run.metrics()))
    os.kill(run.status()["pid"], signal.SIGKILL)
    wait_for(lambda: run.status()["state"] == "failed", timeout=20)
    status = run.status()
    assert status["interrupted"] and "Resume" in status["message"]
    assert [e["epoch"] for e in run.epochs()] == [1]
    run.resume()
    final = run.wait(timeout=300)
    assert final["state"] == "finished", (final, run.log_path.read_text()[-2000:])
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3]
    assert steps_of(run) == list(range(1, 31))  # the killed epoch's steps were replaced


class StopAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, event):
        if event["step"] == self.step:
            trainer.request_stop("test stop")


def test_resume_mid_epoch_matches_an_uninterrupted_run(sample_dir, tmp_path):
    """Checkpoint at step 7 (mid epoch 2), reload into a fresh trainer: same final weights."""
    manifest = prepare_data(sample_dir, manifest_path=tmp_path / "m.json").manifest
    config = TrainConfig(data=str(sample_dir), epochs=3, img_size=64, batch_size=16,
                         augment="none", schedule="onecycle", head_solver="optimizer")  # fmt: skip
    straight = Trainer(config, manifest)
    straight.fit()
    first = Trainer(config, manifest, callbacks=[StopAtStep(7)])
    assert first.fit() == "stopped" and (first.epoch, first.batch_in_epoch) == (1, 2)
    save_checkpoint(tmp_path, "last", first.model, first.state_dict())
    second = Trainer(config, manifest)
    second.load_state_dict(load_checkpoint(tmp_path, "last", second.model))
    assert second.fit() == "finished" and second.step == straight.step == 15
    for a, b in zip(straight.model.get_classifier().parameters(),
                    second.model.get_classifier().parameters(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("state", ["running", "queued"])
def test_resume_refuses_a_live_run(sample_dir, state):
    run = Run.create(slow_config(sample_dir, epochs=1))
    # a live process whose command line is this run's worker
    cmd = [sys.executable, "-c", "import time; time.sleep(60)", "tlcore.runs.worker", str(run.dir)]
    alive = subprocess.Popen(cmd)
    try:
        run.write_status(state, pid=alive.pid)
        assert run.status()["state"] == state
        with pytest.raises(RunError, match="still"):
            run.resume()
    finally:
        alive.kill()
        alive.wait()
    assert run.status()["state"] == "failed"  # and once it is gone, the run shows as interrupted
