"""``tlcore export`` as a user types it; then ``tlcore predict`` on the bundle it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_in_process import in_process
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.runs.run import Run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


def tlcore(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_vars)
    return subprocess.run(
        [sys.executable, "-m", "tlcore", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_export_onnx_prints_the_check_and_refuses_to_overwrite(run, tmp_path, capsys):
    out = tmp_path / "exports" / "ants-bees.onnx"
    done = tlcore("export", str(run.dir), "--format", "onnx", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["path"] == str(out) and out.stat().st_size == result["size_bytes"]
    assert result["check"]["passed"] and result["check"]["max_abs_diff"] < 1e-4
    assert "Exporting ONNX: 3 of 3 steps" in done.stderr  # the progress bar's last line
    again = in_process(capsys, "export", str(run.dir), "--format", "onnx", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    missing = in_process(
        capsys, "export", "no-such-run", "--format", "bundle", "--out", tmp_path / "b"
    )
    assert missing.returncode == 2 and "no training run found" in missing.stderr
    assert not (tmp_path / "b").exists()


def test_a_bundle_from_the_cli_predicts_through_the_cli(run, tmp_path, capsys):
    out = tmp_path / "bundle"
    runs = str(run.dir.parent)
    done = tlcore("export", run.id, "--format", "bundle", "--out", str(out), TLCORE_RUNS_DIR=runs)
    assert done.returncode == 0, done.stderr
    assert "Wrote bundle" in done.stdout and (out / "README.md").is_file()
    items = Manifest.load(run.manifest_path).items_for("val")
    ant = next(it.path for it in items if it.label == 0)
    shown = in_process(capsys, "predict", str(out), ant, "--json")
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout.strip().splitlines()[-1])
    assert row["label"] in ("ants", "bees") and len(row["top"]) == 2
