"""Training under torchrun: 2 CPU processes (gloo) on the bundled ants/bees photos.

The same real runs as a single process, with DistributedDataParallel, a
DistributedSampler shard per rank and metrics summed over ranks; only rank 0
writes the run directory. Kept small (64 px, 1 epoch) for a 2-core machine.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlcore.runs.files import read_events
from tlcore.runs.run import Run, list_runs
from tlcore.training.config import TrainConfig

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="torchrun's gloo on POSIX")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def tree(run: Run) -> set[str]:
    """The run directory's shape: every file and folder, relative to it."""
    return {p.relative_to(run.dir).as_posix() for p in run.dir.rglob("*")}


def epoch_events(run: Run) -> list[dict]:
    return [e for e in run.metrics() if e.get("type") == "epoch"]


def test_two_gloo_processes_train_like_one_with_the_same_global_batch(
    sample_dir, tmp_path, monkeypatch
):
    common = dict(
        data=str(sample_dir),
        img_size=64,
        epochs=1,
        lr=3e-3,
        augment="none",
        device="cpu",
        head_solver="optimizer",
    )  # fmt: skip (batches, not L-BFGS)
    # separate runs folders: both train at once and neither reads the other's embedding cache
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "two"))
    two = Run.start(TrainConfig(**common, batch_size=8, nproc=2))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "one"))
    one = Run.start(TrainConfig(**common, batch_size=16))
    for run in (one, two):
        status = run.wait(timeout=240)
        assert status["state"] == "finished", run.log_path.read_text()[-3000:]

    log = two.log_path.read_text()
    assert "rank 0 of 2 (gloo)" in log and "rank 1 of 2 (gloo)" in log
    assert tree(two) == tree(one)  # same files: one metrics log, one set of checkpoints
    [e1], [e2] = epoch_events(one), epoch_events(two)  # rank 1 wrote no second epoch line
    assert e1.keys() == e2.keys()
    # 80 training photos: 5 steps of 16, or 5 steps of 8 on each of 2 ranks, same images
    assert e1["step"] == e2["step"] == 5
    steps = {
        run: [e["loss"] for e in run.metrics() if e.get("type") == "step"] for run in (one, two)
    }
    assert len(steps[two]) == 5
    # each step's logged loss is the whole global batch's, not rank 0's half of it
    assert steps[two] == pytest.approx(steps[one], rel=1e-3), steps
    assert abs(e1["val_acc"] - e2["val_acc"]) <= 0.05, (e1["val_acc"], e2["val_acc"])
    assert e2["train_loss"] == pytest.approx(e1["train_loss"], rel=0.02)
    assert sum(map(sum, e2["confusion"]["matrix"])) == 40  # every val photo counted once
    assert e2["val_loss"] < math.log(2)  # it learned: better than a coin flip's cross-entropy


def run_cli(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, "-m", "tlcore", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))  # fmt: skip


def test_tlcore_train_and_resume_work_unchanged_under_torchrun(sample_dir):
    """Full model (augmentation on, so no fast path), stopped after one step, then resumed."""
    cmd = [*TORCHRUN, "-m", "tlcore", "train", "--data", str(sample_dir), "--img-size", "64",
           "--epochs", "1", "--batch-size", "8", "--augment", "light", "--device", "cpu",
           "--lr", "0.003"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not list_runs() and time.monotonic() < deadline:
        time.sleep(0.1)
    run = list_runs()[0]
    run.stop_path.write_text("test")  # seen by rank 0 after step 1: every rank must stop there
    output = proc.communicate(timeout=240)[0]
    assert proc.returncode == 0, output[-3000:]
    status = run.status()
    assert status["state"] == "stopped", (status, output[-3000:])
    assert run.config.nproc == 2  # what trained it: resuming from the app starts two again
    assert status["step"] == 1 and not epoch_events(run)

    resumed = run_cli(["resume", run.id, "--json"])
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert run.status()["state"] == "finished"
    steps = [e["step"] for e in read_events(run.metrics_path) if e.get("type") == "step"]
    assert steps == [1, 2, 3, 4, 5]  # one history, written by rank 0 only
    [epoch] = epoch_events(run)
    assert epoch["fast_path"] is False and sum(map(sum, epoch["confusion"]["matrix"])) == 40
    assert Path(run.checkpoints_dir / "last.safetensors").is_file()
