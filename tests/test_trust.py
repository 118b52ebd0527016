"""Trust: calibrated probabilities, "none of these", and where they travel.

All on the shared real run (ants/bees, Lite0 features, 128 px): its worker fitted the
temperature and the unknown detector when the run finished. The unknown photos are
real photos of something else: the coffee cup and the clothing4 sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from trained_run_fixture import trained_run_dir

from tlcore.data.images import images_in
from tlcore.data.manifest import Manifest
from tlcore.results.calibration import expected_calibration_error, fit_temperature
from tlcore.results.confusion_cells import photos_in_cell
from tlcore.results.predict import Predictor
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_predictor, stored_evaluation
from tlcore.runs.trust_store import stored_trust

ROOT = Path(__file__).resolve().parents[1]
COFFEE = ROOT / "tests" / "data" / "coffee.jpg"
CLOTHING = ROOT / "assets" / "clothing4"


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def best(run) -> Predictor:
    return load_predictor(run, "best")


def _val(run: Run) -> tuple[list[str], torch.Tensor]:
    items = Manifest.load(run.manifest_path).items_for("val")
    return [it.path for it in items], torch.tensor([it.label for it in items])


def _outside() -> list[str]:
    """The coffee cup and every 10th clothing photo: none of them an ant or a bee."""
    return [str(COFFEE), *[str(p) for p in images_in([CLOTHING / "val"])[::10]]]


def test_the_worker_fits_a_temperature_that_every_probability_uses(run, best):
    trust = stored_trust(run, "best")
    assert trust is not None and (run.dir / "trust-best.json").is_file()
    cal = trust.calibration
    assert best.temperature == cal.temperature and cal.temperature != pytest.approx(1.0, abs=0.01)
    paths, labels = _val(run)
    logits = best.logits(paths)
    assert torch.allclose(
        best.predict(paths[:4]), (logits[:4] / cal.temperature).softmax(1), atol=1e-5
    )
    # T minimises the validation loss: lower than the raw model's, and fitted again identically
    raw = torch.nn.functional.cross_entropy(logits, labels)
    scaled = torch.nn.functional.cross_entropy(logits / cal.temperature, labels)
    assert scaled < raw and cal.nll_before == pytest.approx(float(raw), rel=1e-4)
    assert fit_temperature(logits, labels) == pytest.approx(cal.temperature, rel=1e-3)
    assert cal.ece_before == pytest.approx(
        expected_calibration_error(logits.softmax(1), labels), abs=1e-6
    )
    assert cal.ece_after < cal.ece_before and len(cal.bins_after) == 10
    # the score the worker kept for the Evaluate page came after the fit: calibrated too
    report = stored_evaluation(run, "best")
    assert report is not None and report.loss == pytest.approx(float(scaled), rel=1e-4)


def test_photos_of_other_things_are_none_of_these_and_own_photos_are_not(run, best):
    paths, _ = _val(run)
    known = best.predict_files(paths)
    unknown = best.predict_files(_outside())
    assert sum(p.unknown for p in known) / len(known) <= 0.1  # ~95 % accepted by construction
    assert unknown[0].unknown, unknown[0]  # the coffee cup
    assert sum(p.unknown for p in unknown) / len(unknown) >= 0.8
    assert all(0 <= p.unknown_score <= 2 for p in known + unknown)
    # a higher threshold calls fewer photos unknown; the measured AUROC was kept
    lenient = best.predict_files(_outside(), unknown_threshold=2.0)
    assert not any(p.unknown for p in lenient)
    ref = stored_trust(run, "best").reference
    assert ref["photos"] == 40 and "clothing4" in ref["source"] and ref["auroc"] >= 0.9


def test_cli_predict_json_says_unknown_and_takes_a_threshold(run, capsys):
    from tlcore.cli import main

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(  # as a user runs it in a shell
        [sys.executable, "-m", "tlcore", "predict", str(run.dir), str(COFFEE), "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(row) >= {"path", "label", "probability", "unknown", "unknown_score"}
    assert row["unknown"] is True and row["label"] in ("ants", "bees")
    assert row["unknown_score"] > stored_trust(run, "best").detector.threshold
    capsys.readouterr()
    assert main(["predict", str(run.dir), str(COFFEE), "--json", "--unknown-threshold", "1.9"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["unknown"] is False
    assert main(["predict", str(run.dir), str(COFFEE), "--unknown-threshold", "-1"]) == 2
    assert "--unknown-threshold" in capsys.readouterr().err


def test_onnx_export_gives_the_same_unknown_decision_as_pytorch_on_real_photos(run, best, tmp_path):
    import onnx
    import onnxruntime as ort

    from tlcore.export.exporter import export_run

    out = tmp_path / "model.onnx"
    result = export_run(run, "onnx", out)
    assert result.check["passed"] and result.check["same_unknown"] is True
    assert result.check["images"] == 12  # 8 of the run's photos + 4 of none of its classes
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["tlcore.json"])
    threshold = meta["trust"]["unknown"]["threshold"]
    assert meta["trust"]["calibration"]["temperature"] == pytest.approx(best.temperature)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities", "unknown_score"]
    photos = [*_val(run)[0][::4], *_outside()]
    batch = torch.stack([best.preprocess(p) for p in photos]).numpy()
    _, probabilities, scores = session.run(None, {"image": batch})
    expected = best.predict_files(photos)
    assert [bool(s > threshold) for s in scores] == [p.unknown for p in expected]
    assert any(p.unknown for p in expected) and not all(p.unknown for p in expected)
    expected_p = np.array(
        [[dict(p.top)[c] for c in best.classes] for p in best.predict_files(photos, k=2)]
    )
    assert np.abs(probabilities - expected_p).max() < 1e-4


def test_bundle_card_and_train_py_carry_the_trust(run, best, tmp_path):
    from tlcore.export.exporter import export_run

    out = tmp_path / "bundle.zip"
    export_run(run, "bundle", out)
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("tlcore.json"))
        card = zf.read("README.md").decode()
        assert "unknown.safetensors" in zf.namelist()
    assert meta["trust"]["unknown"]["method"] == "knn"
    assert "calibration error" in card and "AUROC" in card
    loaded = Predictor.from_bundle(out)
    assert loaded.temperature == pytest.approx(best.temperature)
    photos = [_val(run)[0][0], str(COFFEE)]
    got, want = loaded.predict_files(photos), best.predict_files(photos)
    assert [p.unknown for p in got] == [p.unknown for p in want] == [False, True]
    assert got[1].unknown_score == pytest.approx(want[1].unknown_score, abs=1e-5)
    script = export_run(run, "script", tmp_path / "reproduce")
    text = (Path(script.path) / "train.py").read_text()
    assert f"RUN_TEMPERATURE = {best.temperature!r}" in text and "def fit_temperature" in text


def test_a_confusion_cell_holds_exactly_its_photos(run, best):
    paths, labels = _val(run)
    probs = best.predict(paths)
    report = stored_evaluation(run, "best")
    classes = report.classes
    for t, true in enumerate(classes):
        for p, predicted in enumerate(classes):
            cell = photos_in_cell(probs, labels.tolist(), classes, paths, true, predicted)
            assert len(cell) == report.confusion[t][p]
            assert all(c.true == true and c.predicted == predicted for c in cell)
            assert [c.probability for c in cell] == sorted(
                (c.probability for c in cell), reverse=True
            )
