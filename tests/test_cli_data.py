"""``tlcore inspect`` as a user runs it: a real subprocess, real exit codes (each kind of
answer once; its variations through ``cli_in_process``)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
from cli_in_process import in_process
from PIL import Image


def tlcore(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "tlcore", "inspect", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_inspect_sample_exits_0(sample_dir, tmp_path):
    result = tlcore(sample_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Trainable: yes" in result.stdout
    assert "ants" in result.stdout and "40" in result.stdout


def test_inspect_json_last_line_is_the_report(sample_dir, tmp_path):
    result = tlcore(sample_dir, "--json", "--manifest", tmp_path / "m.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["trainable"] is True and data["reason"] is None
    assert data["classes"] == ["ants", "bees"]
    assert data["split_counts"] == {
        "train": {"ants": 40, "bees": 40},
        "val": {"ants": 20, "bees": 20},
    }
    assert data["manifest_path"] == str(tmp_path / "m.json")
    assert (tmp_path / "m.json").is_file()


def test_inspect_one_class_exits_2_with_one_line_reason(tmp_path, capsys, monkeypatch):
    (tmp_path / "d" / "cats").mkdir(parents=True)
    for i in range(3):
        arr = np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / "d" / "cats" / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    result = in_process(capsys, "inspect", tmp_path / "d", "--json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "one class" in lines[0]
    assert json.loads(result.stdout.strip().splitlines()[-1])["trainable"] is False


def test_inspect_unsafe_zip_and_missing_path_exit_2(tmp_path, capsys, monkeypatch):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../evil.txt", "pwned")
    result = tlcore(tmp_path / "evil.zip", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert not (tmp_path.parent / "evil.txt").exists()
    monkeypatch.chdir(tmp_path)
    result = in_process(capsys, "inspect", tmp_path / "missing")
    assert result.returncode == 2 and "does not exist" in result.stderr
