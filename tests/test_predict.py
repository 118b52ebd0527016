"""Predictor: a trained run's model on new files, preprocessed exactly as validation was."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from trained_run_fixture import IMG_SIZE, trained_run_dir

from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config
from tlcore.data.manifest import Manifest
from tlcore.errors import RunError
from tlcore.results.predict import CSV_COLUMNS, Predictor, predict_uploads, predictions_csv
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_model, load_predictor
from tlcore.training.config import TrainConfig


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def last(run) -> Predictor:
    return load_predictor(run, "last")


def _val(run: Run) -> tuple[list[str], torch.Tensor]:
    items = Manifest.load(run.manifest_path).items_for("val")
    return [it.path for it in items], torch.tensor([it.label for it in items])


def test_predictor_reproduces_the_runs_recorded_validation_accuracy(run, last):
    paths, labels = _val(run)
    epochs = run.epochs()
    preds = last.predict(paths).argmax(1)
    accuracy = int((preds == labels).sum()) / len(labels)
    assert accuracy == pytest.approx(epochs[-1]["val_acc"], abs=1e-9)
    assert 0.75 <= accuracy <= 1.0  # the head really learned ants vs bees
    best_epoch = max(epochs, key=lambda e: (e["val_acc"], -e["val_loss"]))
    best_preds = load_predictor(run, "best").predict(paths).argmax(1)
    assert int((best_preds == labels).sum()) / len(labels) == pytest.approx(best_epoch["val_acc"])


def test_preprocessing_is_the_training_eval_transform(run, last):
    manifest = Manifest.load(run.manifest_path)
    assert last.img_size == IMG_SIZE and last.data_config["input_size"] == (3, IMG_SIZE, IMG_SIZE)
    transform = build_transform(resolve_data_config(last.model, IMG_SIZE), train=False)
    dataset = ManifestDataset(manifest, "val", transform)
    for i in (0, len(dataset) - 1):
        assert torch.equal(last.preprocess(dataset.items[i].path), dataset[i][0])


def test_probabilities_and_top_k(run, last):
    paths, _ = _val(run)
    probs = last.predict(paths[:3])
    assert probs.shape == (3, 2)
    assert torch.allclose(probs.sum(1), torch.ones(3))
    top = last.top_k(probs, k=5)  # clamped to the number of classes
    assert [len(t) for t in top] == [2, 2, 2]
    assert all(t[0][1] >= t[1][1] and {t[0][0], t[1][0]} == {"ants", "bees"} for t in top)


def test_a_corrupt_file_gets_an_error_and_the_rest_their_labels(run, last, tmp_path):
    paths, _ = _val(run)
    good = [Path(shutil.copy(p, tmp_path / f"good{i}.jpg")) for i, p in enumerate(paths[:3])]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(Path(paths[0]).read_bytes()[:300])
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    results = last.predict_files([good[0], corrupt, good[1], text, good[2]], k=2)
    assert [r.error is None for r in results] == [True, False, True, False, True]
    assert "truncated" in results[1].error.lower() and "corrupt.jpg" in results[1].error
    expected = last.top_k(last.predict(paths[:3]), 1)
    assert [results[i].label for i in (0, 2, 4)] == [e[0][0] for e in expected]
    assert results[0].probability == pytest.approx(expected[0][0][1], abs=1e-6)
    assert results[1].to_dict() == {"path": str(corrupt), "error": results[1].error}
    rows = predictions_csv(results).splitlines()
    assert rows[0] == ",".join(CSV_COLUMNS) and len(rows) == 6


def test_uploads_and_a_zip_of_photos(run, last):
    paths, _ = _val(run)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.write(paths[0], "photos/a.jpg")
        zf.write(paths[1], "photos/b.jpg")
        zf.writestr("photos/broken.png", b"\x89PNG not really")
        zf.writestr("__MACOSX/photos/._a.jpg", b"litter")
    files = [("one.jpg", Path(paths[2]).read_bytes()), ("batch.zip", buffer.getvalue())]
    results = predict_uploads(last, files, k=1)
    assert [r.path for r in results] == [
        "one.jpg",
        "batch.zip/photos/a.jpg",
        "batch.zip/photos/b.jpg",
        "batch.zip/photos/broken.png",
    ]
    assert [r.error is None for r in results] == [True, True, True, False]
    expected = [t[0][0] for t in last.top_k(last.predict([paths[2], paths[0], paths[1]]), 1)]
    assert [r.label for r in results[:3]] == expected


def test_a_bundle_folder_predicts_like_its_run(run, last, tmp_path):
    from tlcore.export.exporter import export_run

    bundle = tmp_path / "bundle"
    export_run(run, "bundle", bundle, checkpoint="last")
    paths, _ = _val(run)
    loaded = load_model(bundle)
    assert loaded.source == str(bundle)
    assert loaded.classes == last.classes
    assert torch.allclose(loaded.predict(paths[:4]), last.predict(paths[:4]), atol=1e-6)


def test_a_run_without_a_checkpoint_says_so(sample_dir):
    untrained = Run.create(TrainConfig(data=str(sample_dir), img_size=64, epochs=1))
    with pytest.raises(RunError, match="no 'best' checkpoint yet"):
        load_predictor(untrained)
    with pytest.raises(RunError, match="'best' or 'last'"):
        load_predictor(untrained, "middle")
