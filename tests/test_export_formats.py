"""ONNX and TorchScript exports of a real run match PyTorch on real photos, at any batch size."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.export import graph_export
from tlcore.export.exporter import check_images, export_run
from tlcore.results.predict import Predictor
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_predictor


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def predictor(run) -> Predictor:
    return load_predictor(run, "best")


@pytest.fixture(scope="module")
def photos(run) -> list[str]:
    """Training photos: not the validation ones the export check itself used."""
    return [it.path for it in Manifest.load(run.manifest_path).items_for("train")][-7:]


def test_onnx_export_is_checked_and_matches_pytorch_in_onnxruntime(
    run, predictor, photos, tmp_path
):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "model.onnx"
    result = export_run(run, "onnx", out)
    check = result.check
    # 8 of the run's photos + 4 of none of its classes, to compare the "none of these" decision
    assert check["passed"] and check["images"] == 12 and check["batch_sizes"] == [1, 12]
    assert check["max_abs_diff"] < 1e-4 and check["same_top_class"] and check["same_unknown"]
    assert "matches PyTorch on 12 real photos" in result.text()
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["tlcore.json"])["classes"] == ["ants", "bees"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    batch = torch.stack([predictor.preprocess(p) for p in photos])  # 7: neither 1, 2 nor 8
    logits, calibrated, _ = session.run(None, {"image": batch.numpy()})
    got = torch.from_numpy(np.asarray(calibrated))
    assert torch.allclose(got, (torch.from_numpy(logits) / predictor.temperature).softmax(1))
    expected = predictor.predict(photos)
    assert (got - expected).abs().max() < 1e-4
    assert torch.equal(got.argmax(1), expected.argmax(1))


def test_torchscript_export_reloads_with_torch_jit_and_matches(run, predictor, photos, tmp_path):
    out = tmp_path / "model.pt"
    result = export_run(run, "torchscript", out, checkpoint="last")
    assert result.check["passed"] and result.check["max_abs_diff"] < 1e-4
    extra = {"tlcore.json": ""}
    with warnings.catch_warnings():  # torch 2.14 marks torch.jit as deprecated
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["tlcore.json"])["checkpoint"] == "last"
    last = load_predictor(run, "last")
    batch = torch.stack([last.preprocess(p) for p in photos])
    with torch.no_grad():
        got = scripted(batch)[1]  # (logits, calibrated probabilities, unknown score)
    assert (got - last.predict(photos)).abs().max() < 1e-4


def test_the_check_fails_when_the_exported_model_differs(run, predictor):
    images = check_images(run, predictor, limit=4)
    other = load_predictor(run, "best").model
    with torch.no_grad():
        other.get_classifier().bias.add_(torch.tensor([2.0, -2.0]))
    check = graph_export.compare("onnx", "test", other, predictor.model, images)
    assert not check.passed and check.max_abs_diff > 0.1
    assert "does NOT match" in check.text()


def test_a_run_whose_photos_are_gone_cannot_be_checked(run, tmp_path, monkeypatch):
    from tlcore.errors import DataError

    manifest = Manifest.load(run.manifest_path)
    for item in manifest.items:
        item.path = str(tmp_path / "gone" / Path(item.path).name)
    monkeypatch.setattr(Manifest, "load", classmethod(lambda cls, path: manifest))
    with pytest.raises(DataError, match="can be read any more"):
        export_run(run, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
