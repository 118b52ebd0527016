"""Bundles of a real trained run: load without the run, in a fresh process; the card tells the truth."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from trained_run_fixture import IMG_SIZE, trained_run_dir

import tlcore
from tlcore.data.manifest import Manifest
from tlcore.errors import ConfigError, ModelError
from tlcore.export.exporter import export_run
from tlcore.results.bundle_format import BUNDLE_META, WEIGHTS_FILE, read_bundle
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_model, load_predictor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def bundle_zip(run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "ants-bees.zip"
    result = export_run(run, "bundle", out)
    assert result.path == str(out) and result.size_bytes == out.stat().st_size
    return out


def val_paths(run: Run) -> list[str]:
    return [it.path for it in Manifest.load(run.manifest_path).items_for("val")]


def test_a_zip_bundle_predicts_exactly_like_its_run(run, bundle_zip):
    with zipfile.ZipFile(bundle_zip) as zf:
        names = set(zf.namelist())
    assert {WEIGHTS_FILE, BUNDLE_META, "README.md", "confusion_matrix.png"} <= names
    paths = val_paths(run)[:6]
    loaded = tlcore.load(bundle_zip)
    assert loaded.source == str(bundle_zip) and loaded.classes == ["ants", "bees"]
    assert loaded.data_config["input_size"] == (3, IMG_SIZE, IMG_SIZE)
    expected = load_predictor(run, "best").predict(paths)
    assert torch.equal(loaded.predict(paths), expected)


def test_a_fresh_process_loads_the_bundle_without_the_run_and_the_card_snippet_works(
    run, bundle_zip, tmp_path
):
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(folder)
    paths = val_paths(run)[-5:]
    card = (folder / "README.md").read_text()
    snippet = re.findall(r"```python\n(.*?)```", card, flags=re.S)[1]  # the timm-only one
    code = (
        "import json, sys, tlcore\n"
        "p = tlcore.load(sys.argv[1])\n"
        "print(json.dumps(p.predict(sys.argv[2:]).tolist()))\n"
        + snippet.replace('"photo.jpg"', "sys.argv[2]")
    )
    empty_runs = tmp_path / "no-runs-here"
    env = dict(os.environ, TLCORE_RUNS_DIR=str(empty_runs), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder), *paths],
        capture_output=True, text=True, cwd=folder, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    probs = torch.tensor(json.loads(lines[0]))
    expected = load_predictor(run, "best").predict(paths)
    assert torch.allclose(probs, expected, atol=1e-6)
    assert torch.equal(probs.argmax(1), expected.argmax(1))
    assert lines[-1] == ["ants", "bees"][int(expected[0].argmax())]  # plain timm agrees
    assert not empty_runs.exists()  # nothing looked for (or created) a run


def test_the_model_card_names_the_data_classes_and_measured_metrics(run, bundle_zip):
    with zipfile.ZipFile(bundle_zip) as zf:
        meta = json.loads(zf.read(BUNDLE_META))
        card = zf.read("README.md").decode()
        png = zf.read("confusion_matrix.png")
    best = max(run.epochs(), key=lambda e: (e["val_acc"], -e["val_loss"]))
    metrics = meta["metrics"]
    assert metrics["accuracy"] == pytest.approx(best["val_acc"])
    assert metrics["epoch"] == best["epoch"] and metrics["images"] == 40
    assert metrics["confusion"] == best["confusion"]["matrix"]
    assert meta["classes"] == ["ants", "bees"] and meta["architecture"] == run.config.model
    assert meta["preprocessing"]["input_size"] == [3, IMG_SIZE, IMG_SIZE]
    assert meta["training"]["lr"] == run.config.lr and meta["run_id"] == run.id
    assert meta["data"]["counts"] == run.record["data"]["counts"]
    assert "**ants-bees**" in card and "in output order): ants, bees" in card
    assert f"Accuracy: **{best['val_acc']:.1%}**" in card
    assert f"{metrics['macro_f1']:.3f}" in card and "| ants | 40 | 20 |" in card
    assert "Intended use and limitations" in card and "tlcore.load(" in card
    image = Image.open(__import__("io").BytesIO(png))
    assert image.format == "PNG" and min(image.size) >= 200


def test_broken_bundles_and_existing_destinations_are_refused_in_words(run, bundle_zip, tmp_path):
    not_a_bundle = tmp_path / "photos.zip"
    with zipfile.ZipFile(not_a_bundle, "w") as zf:
        zf.writestr("a.jpg", b"123")
    with pytest.raises(ModelError, match="without tlcore.json"):
        read_bundle(not_a_bundle)
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / BUNDLE_META).write_text(json.dumps({"format": "tlcore-bundle", "classes": []}))
    with pytest.raises(ModelError, match="architecture must be a timm model name"):
        tlcore.load(folder)
    with zipfile.ZipFile(bundle_zip) as zf:
        zf.extractall(tmp_path / "damaged")
    weights = tmp_path / "damaged" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ModelError, match="cannot be read as a tlcore bundle"):
        load_model(tmp_path / "damaged")
    before = bundle_zip.stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already exists"):
        export_run(run, "bundle", bundle_zip)
    assert bundle_zip.stat().st_mtime_ns == before  # the old export is untouched
    with pytest.raises(ConfigError, match="unknown export format"):
        export_run(run, "tflite", tmp_path / "m.tflite")
    assert not list(bundle_zip.parent.glob(".*.tmp"))  # no staging folder left behind


def test_force_replaces_a_folder_export_whole(run, tmp_path):
    out = tmp_path / "handout"
    export_run(run, "script", out)
    (out / "stale.txt").write_text("from an older export")
    with pytest.raises(ConfigError, match="tlcore did not write"):  # not only tlcore's files
        export_run(run, "script", out, overwrite=True)
    (out / "stale.txt").unlink()
    (out / "train.py").write_text((out / "train.py").read_text() + "# edited\n")
    export_run(run, "script", out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [
        ".tlcore-export.json",  # the marker that lets --force recognise tlcore's own export
        "initial_weights.pt",
        "split.json",
        "train.py",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout"]  # no staging left
