"""A run folder and a bundle written before the task model still open, score and predict.

``tests/data/before-tasks/`` was made with tlcore at commit b138361 (timm's tiny
``test_efficientnet`` from scratch, 32 px, 2 epochs, best at epoch 1, so best and last
differ): its ``config.json`` has no ``"task"``, it keeps ``confusion/epoch_NNN.json``, its
worker fitted trust and scored the run the old way (no ``outputs-*.safetensors``).
``expected.json`` holds what that version predicted for two sample photos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from old_folders import copy_old_run, expected

import tlcore
from tlcore.data.task import PHOTO_LABEL
from tlcore.runs.outputs import stored_outputs
from tlcore.runs.run import Run, list_runs
from tlcore.runs.scoring import evaluate_run, stored_evaluation
from tlcore.runs.trust_store import stored_trust

HERE = Path(__file__).parent / "data" / "before-tasks"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def old_run(tmp_path, monkeypatch) -> Path:
    """The old run folder, its manifest pointed at this checkout's sample photos."""
    runs = tmp_path / "runs"
    run = copy_old_run(
        HERE / "run", runs, "20261207-164816-test-efficientnet-full-ea51", "/tmp/base/assets/"
    )
    for checkpoint in ("best", "last"):  # a clone does not keep file times: give back the ones
        stamp = json.loads((run / f"trust-{checkpoint}.json").read_text())["checkpoint"]
        weights = run / "checkpoints" / f"{checkpoint}.safetensors"  # the old files were kept for
        os.utime(weights, ns=(stamp["mtime_ns"], stamp["mtime_ns"]))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs))
    return run


def _expected() -> dict:
    return expected(HERE)


def test_old_run_opens_with_its_task_scores_and_trust(old_run):
    run = Run.open(old_run)
    assert "task" not in json.loads((old_run / "config.json").read_text())
    assert run.task == PHOTO_LABEL  # from its manifest
    assert [r.id for r in list_runs()] == [run.id]
    assert run.status()["state"] == "finished"
    # what the old worker kept is still read: its score and its trust
    kept = stored_evaluation(run, "best")
    assert kept is not None and kept.n_images == 40
    assert stored_trust(run, "best") is not None and stored_trust(run, "last") is not None
    # scoring it now takes one pass, kept for next time, and agrees with the old score
    assert stored_outputs(run, "best") is None
    fresh = evaluate_run(run, "best")
    assert stored_outputs(run, "best") is not None
    assert fresh.accuracy == pytest.approx(kept.accuracy)
    assert fresh.confusion == kept.confusion


def test_old_run_and_bundle_predict_as_before(old_run):
    expected = _expected()
    got = tlcore.load(old_run).predict(expected["photos"])
    assert torch.allclose(got, torch.tensor(expected["run"]), atol=1e-5)
    got = tlcore.load(HERE / "bundle.zip").predict(expected["photos"])
    assert torch.allclose(got, torch.tensor(expected["bundle"]), atol=1e-5)


def test_old_run_through_the_command_line(old_run):
    env = {"TLCORE_RUNS_DIR": str(old_run.parent), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "tlcore", "evaluate", old_run.name, "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n_images"] == 40
    photo = _expected()["photos"][1]
    out = subprocess.run(
        [sys.executable, "-m", "tlcore", "predict", old_run.name, photo, "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.splitlines()[0])
    assert row["label"] in ("ants", "bees") and isinstance(row["unknown"], bool)
