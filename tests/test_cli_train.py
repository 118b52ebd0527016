"""The training CLI end to end, through a real subprocess as a user would run it.
(each kind of answer once; its variations through ``cli_in_process``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_in_process import in_process

from tlcore.runs.run import Run


def tlcore(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tlcore", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ | {"HF_HUB_OFFLINE": "1"})  # fmt: skip


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_train_end_to_end_then_runs_status_stop_resume(sample_dir, capsys):
    done = tlcore("train", "--data", str(sample_dir), "--epochs", "2", "--img-size", "96",
                  "--augment", "none", "--seed", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = last_json(done.stdout)
    assert result["state"] == "finished" and result["epochs"] == 2
    assert 0.5 < result["val_accuracy"] <= 1.0 and result["seconds"] > 0
    assert result["fast_path"] is True
    assert f"run directory: {result['run_dir']}" in done.stdout
    assert "epoch 2/2" in done.stderr  # the progress output
    # the one pass over the photos before any step: its own bar, with the count to the end
    assert "Embedding the photos once (fast path): 120 of 120" in done.stderr
    # after the last epoch no photo of the run is read again (the embeddings serve the
    # calibration and the score); the outside photos that measure "none of these" are
    assert re.search(r'Measuring "none of these" on (\d+) outside photos: \1 of \1\n', done.stderr)
    assert "Scoring the val" not in done.stderr
    run = Run.open(result["run_dir"])
    assert run.config.seed == 1 and run.config.img_size == 96

    listed = last_json(tlcore("runs", "--json").stdout)["runs"]
    assert [r["id"] for r in listed] == [run.id] and listed[0]["state"] == "finished"
    assert run.id in in_process(capsys, "runs").stdout
    status = tlcore("status", run.id, "--json")
    assert (
        status.returncode == 0
        and last_json(status.stdout)["val_accuracy"] == result["val_accuracy"]
    )
    assert "already finished" in in_process(capsys, "stop", run.id).stdout
    refused = in_process(capsys, "resume", run.id)
    assert refused.returncode == 2 and refused.stderr.strip().startswith("error:")


def test_detach_returns_at_once_and_the_run_finishes(sample_dir):
    started = tlcore("train", "--data", str(sample_dir), "--epochs", "1", "--img-size", "64",
                     "--augment", "light", "--decoded-cache", "disk", "--detach", "--json")  # fmt: skip
    assert started.returncode == 0, started.stderr
    result = last_json(started.stdout)
    assert result["state"] in ("queued", "running")
    run = Run.open(result["id"])
    assert run.wait(timeout=300)["state"] == "finished", run.log_path.read_text()[-2000:]
    assert run.config.decoded_cache == "disk" and run.config.compile is False


@pytest.mark.parametrize(
    ("flag", "value", "process"),
    [
        ("--lr", "0", tlcore),
        ("--lr", "-0.1", in_process),
        ("--lr", "fast", in_process),
        ("--batch-size", "0", in_process),
        ("--epochs", "0", in_process),
        ("--img-size", "big", in_process),
        ("--img-size", "8", in_process),
        ("--val-fraction", "1.5", in_process),
    ],
)
def test_bad_hyper_parameter_is_one_line_naming_the_flag(sample_dir, flag, value, process, capsys):
    args = ("train", "--data", str(sample_dir), flag, value)
    bad = process(*args) if process is tlcore else process(capsys, *args)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and lines[0].startswith("error:")
    assert not any(Path(os.environ["TLCORE_RUNS_DIR"]).glob("*"))  # nothing was started


def test_bad_data_path_is_one_line_and_exit_2(tmp_path, capsys):
    bad = in_process(capsys, "train", "--data", str(tmp_path / "nope"), "--epochs", "1")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0]
    assert not any(Path(os.environ["TLCORE_RUNS_DIR"]).glob("*"))  # nothing was started


def test_help_documents_every_flag(capsys):
    text = tlcore("train", "--help").stdout
    for flag in ("--data", "--model", "--weights", "--freeze", "--epochs", "--lr", "--img-size",
                 "--batch-size", "--augment", "--seed", "--val-fraction", "--label-smoothing",
                 "--early-stopping", "--optimizer", "--schedule", "--json", "--detach"):  # fmt: skip
        assert flag in text
    for command in ("runs", "status", "stop", "resume", "lr-find"):
        assert in_process(capsys, command, "--help").returncode == 0
