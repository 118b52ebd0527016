"""A run folder and a bundle written before tlcore moved into wings still open and agree.

``tests/data/before-wings/`` was made with tlcore at commit bb2e259 (timm's tiny
``test_efficientnet``, 32 px, 1 epoch, so it stays small); ``expected.json`` holds what that
version predicted for two sample photos. Any change of module paths that leaks into the run
directory or bundle format (pickled class paths, renamed keys) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from old_folders import copy_old_run, expected

import tlcore
from tlcore.runs.run import Run, list_runs

HERE = Path(__file__).parent / "data" / "before-wings"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def old_run(tmp_path, monkeypatch) -> Path:
    """The old run folder, its manifest pointed at this checkout's copy of the sample photos
    (it was written where that version's checkout lay)."""
    runs = tmp_path / "runs"
    run = copy_old_run(
        HERE / "run", runs, "20261129-050813-test-efficientnet-full-3b49", "/tmp/old/assets/"
    )
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs))
    return run


def _expected() -> dict:
    return expected(HERE)


# Photos much larger than the input are decoded at a reduced scale since these answers were
# recorded (tlcore.data.images.load_rgb's min_side), as training reads them: the same
# answers to a few 1e-4 (a model that failed to load would be off by far more).
PROBABILITY_TOLERANCE = 1e-3


def test_old_run_folder_opens_lists_and_predicts_as_before(old_run):
    expected = _expected()
    run = Run.open(old_run.name)
    assert run.status()["state"] == "finished"
    assert [r.id for r in list_runs()] == [run.id]
    assert run.config.model == "test_efficientnet"
    got = tlcore.load(old_run).predict(expected["photos"])
    assert torch.allclose(got, torch.tensor(expected["run"]), atol=PROBABILITY_TOLERANCE)


def test_old_bundle_loads_and_predicts_as_before():
    expected = _expected()
    got = tlcore.load(HERE / "bundle.zip").predict(expected["photos"])
    assert torch.allclose(got, torch.tensor(expected["bundle"]), atol=PROBABILITY_TOLERANCE)


def test_old_run_through_the_command_line(old_run):
    env = {"TLCORE_RUNS_DIR": str(old_run.parent), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    expected = _expected()
    photo = expected["photos"][0]
    out = subprocess.run(
        [sys.executable, "-m", "tlcore", "predict", old_run.name, photo, "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.splitlines()[0])  # one JSON object per photo
    p_bees = expected["run"][0][1]
    # calibrated on first use (a temperature keeps the order of the classes)
    assert row["label"] == ("bees" if p_bees > 0.5 else "ants")
    assert 0.5 <= row["probability"] <= 1 and isinstance(row["unknown"], bool)
    assert (old_run / "trust-best.json").is_file()
