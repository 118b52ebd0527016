"""Faults while training: a full disk, GPU out of memory, two users at once.

The worker is run in this process (``tlcore.runs.worker.main``) where a fault has to be
simulated by patching, and as a real detached process everywhere else. A SIGKILLed
worker and a NaN loss are covered in tests/test_resume.py and tests/test_train.py.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from apptest_helpers import go, open_app, texts
from torch import nn

from tlcore import settings
from tlcore.models.factory import create_model
from tlcore.runs import worker
from tlcore.runs.run import ACTIVE_STATES, Run, list_runs
from tlcore.training import checkpoints
from tlcore.training.checkpoints import load_checkpoint, save_checkpoint
from tlcore.training.trainer import Trainer

from .conftest import quick_config


def steps_of(run: Run) -> list[int]:
    return [e["step"] for e in run.metrics() if e["type"] == "step"]


def test_disk_full_while_checkpointing_fails_the_run_and_keeps_the_last_checkpoint(
    tiny_data, monkeypatch
):
    run = Run.create(quick_config(tiny_data, epochs=3))
    real_save, calls = checkpoints.save_file, []

    def full_disk(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) > 2:  # epoch 1 wrote "last" and "best"; epoch 2 finds the disk full
            Path(filename).write_bytes(b"half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoints, "save_file", full_disk)
    assert worker.main([str(run.dir)]) == 1
    status = run.status()
    assert status["state"] == "failed"
    assert "disk is full" in status["message"] and "resume" in status["message"]
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == [
        "best.safetensors", "best.state.pt", "last.safetensors", "last.state.pt",
    ]  # fmt: skip
    model = create_model("tf_efficientnet_lite0", 2, "scratch")
    assert load_checkpoint(run.checkpoints_dir, "last", model)["epoch"] == 1  # intact, consistent

    monkeypatch.setattr(checkpoints, "save_file", real_save)  # space freed: resume finishes it
    assert worker.main([str(run.dir), "--resume"]) == 0
    assert run.status()["state"] == "finished"
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3]
    assert steps_of(run) == list(range(1, len(steps_of(run)) + 1))  # one history, no repeats


def test_read_only_folder_while_checkpointing_keeps_the_previous_pair(tmp_path, monkeypatch):
    model = nn.Linear(4, 2)
    save_checkpoint(tmp_path, "last", model, {"step": 3, "epoch": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def read_only(obj, path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(checkpoints.torch, "save", read_only)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError) as caught:
        save_checkpoint(tmp_path, "last", model, {"step": 6, "epoch": 2})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp files either
    assert load_checkpoint(tmp_path, "last", nn.Linear(4, 2))["step"] == 3
    message = worker.fault_message(caught.value)
    assert "read-only" in message and "previous checkpoint is kept" in message


def test_gpu_out_of_memory_fails_the_run_with_what_to_change(tiny_data, monkeypatch):
    run = Run.create(quick_config(tiny_data, epochs=1, augment="light"))  # full model: forward runs

    def out_of_memory(self, inputs):
        raise torch.cuda.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)"
        )

    monkeypatch.setattr(Trainer, "forward", out_of_memory)
    assert worker.main([str(run.dir)]) == 1
    status = run.status()
    assert status["state"] == "failed"
    assert "Out of memory" in status["message"] and "smaller batch size" in status["message"]
    assert run.epochs() == []


def watch(runs: list[Run], timeout: float = 240) -> list[str]:
    """Poll until every run ended; never two running at once; the queue messages seen."""
    deadline, queued = time.monotonic() + timeout, []
    while True:
        states = [r.status() for r in runs]
        assert [s["state"] for s in states].count("running") <= 1, states
        queued += [s["message"] for s in states if s["state"] == "queued"]
        if all(s["state"] not in ACTIVE_STATES for s in states):
            return queued
        assert time.monotonic() < deadline, states
        time.sleep(0.05)


def test_two_runs_started_at_the_same_moment_one_queues_both_finish(tiny_data):
    gate = threading.Barrier(2)

    def start(name: str) -> Run:
        gate.wait()
        return Run.start(quick_config(tiny_data, epochs=1, name=name))

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(start, ["first", "second"]))
    assert runs[0].id != runs[1].id and len(list_runs()) == 2
    queued = watch(runs)
    assert any(m.startswith("Queued: waiting for") for m in queued), queued
    assert [r.status()["state"] for r in runs] == ["finished", "finished"]
    assert sorted(r.summary()["name"] for r in runs) == ["first", "second"]


def test_two_browser_sessions_each_keep_their_own_run(tiny_data):
    runs_dir = settings.runs_dir()
    runs_dir.mkdir(parents=True)
    (runs_dir / "app-state.json").write_text(json.dumps({
        "data": {"kind": "folder", "source": str(tiny_data), "label": "Folder: pets"},
        "train": {"epochs": 1, "img_size": 64, "augment": "none"},
    }))  # fmt: skip
    alice, bob = go(open_app(), "train"), go(open_app(), "train")
    alice.button(key="start").click().run()
    bob.button(key="start").click().run()
    assert not alice.exception and not bob.exception
    ids = {r.id for r in list_runs()}
    a_id = alice.session_state["tl_selections"]["run_id"]
    b_id = bob.session_state["tl_selections"]["run_id"]
    assert len(ids) == 2 and {a_id, b_id} == ids  # one run each, none shared
    watch([Run.from_id(a_id), Run.from_id(b_id)])
    for session, mine, theirs in ((alice, a_id, b_id), (bob, b_id, a_id)):
        session.run()
        page = texts(session.markdown)
        assert mine in page and theirs not in page
        assert mine in texts(session.sidebar.markdown)
        assert "finished" in page
