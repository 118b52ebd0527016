"""Runs that train at once on a shared server split the CPU cores instead of fighting."""

from __future__ import annotations

import os

from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig
from tlcore.training.devices import cpu_threads_per_run


def cores() -> int:
    return len(os.sched_getaffinity(0))


def test_threads_are_shared_only_when_runs_train_at_once(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads_per_run(1) is None  # torch's own default
    assert cpu_threads_per_run(2) == max(1, cores() // 2)
    assert cpu_threads_per_run(10_000) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user (or torchrun) decided
    assert cpu_threads_per_run(2) is None


def test_a_worker_on_a_shared_server_uses_its_share(sample_dir, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("TLCORE_MAX_CONCURRENT_RUNS", "2")
    run = Run.start(TrainConfig(data=str(sample_dir), epochs=1, img_size=64, augment="none"))
    status = run.wait(timeout=300)
    assert status["state"] == "finished", run.log_path.read_text()[-2000:]
    assert f"CPU threads: {max(1, cores() // 2)}" in run.log_path.read_text()
