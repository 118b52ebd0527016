"""``tlcore evaluate`` and ``tlcore predict`` end to end, as a user runs them in a shell."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_in_process import in_process
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.results.predict import CSV_COLUMNS
from tlcore.runs.run import Run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


def tlcore(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tlcore", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_evaluate_prints_the_per_class_report(run, capsys):
    done = tlcore("evaluate", str(run.dir), "--checkpoint", "last", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["accuracy"] == pytest.approx(run.epochs()[-1]["val_acc"])
    assert [r["class"] for r in report["per_class"]] == ["ants", "bees"]
    assert report["confusion"] == run.latest_confusion()["matrix"]
    done = in_process(capsys, "evaluate", str(run.dir))
    assert done.returncode == 0, done.stderr
    assert "precision" in done.stdout and "macro avg" in done.stdout and "ants" in done.stdout
    missing = in_process(capsys, "evaluate", "no-such-run")
    assert missing.returncode == 2 and "no training run found" in missing.stderr


def test_predict_gives_a_corrupt_file_an_error_and_the_rest_labels(run, tmp_path, capsys):
    items = Manifest.load(run.manifest_path).items_for("val")
    photos = tmp_path / "photos"
    photos.mkdir()
    ant = next(it for it in items if it.label == 0)
    bee = next(it for it in items if it.label == 1)
    shutil.copy(ant.path, photos / "a.jpg")
    shutil.copy(bee.path, photos / "b.jpg")
    (photos / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    out = tmp_path / "out" / "predictions.csv"
    done = tlcore("predict", str(run.dir), str(photos), "--top-k", "2", "--csv", str(out), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["a.jpg", "b.jpg", "c.jpg"]
    assert "error" in rows[2] and "c.jpg" in rows[2]["error"] and "label" not in rows[2]
    for row in rows[:2]:
        assert row["label"] in ("ants", "bees") and 0.5 <= row["probability"] <= 1.0
        assert [t["label"] for t in row["top"]][0] == row["label"] and len(row["top"]) == 2
    with out.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == CSV_COLUMNS and len(table) == 3
    assert [t["label"] for t in table] == [rows[0]["label"], rows[1]["label"], ""]
    assert table[2]["error"] and not table[0]["error"]
    assert float(table[0]["probability"]) == pytest.approx(rows[0]["probability"], abs=1e-5)
    plain = in_process(capsys, "predict", str(run.dir), str(photos / "a.jpg"), "--top-k", "0")
    assert plain.returncode == 2 and "--top-k" in plain.stderr
