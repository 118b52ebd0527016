"""A folder of photos into one table and a CSV (``tlcore.results.folder_predict``), with a real
trained run: names inside the folder, an unreadable file's error in words, and "none of these"
judged again at whatever threshold the user moves the slider to."""

from __future__ import annotations

import csv
import io
import shutil

import pytest
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.errors import DataError
from tlcore.results.folder_predict import at_threshold, predict_folder, prediction_rows
from tlcore.results.predict import predictions_csv
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_predictor


@pytest.fixture(scope="module")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


def test_a_folder_becomes_rows_and_a_csv_judged_at_the_chosen_threshold(run, tmp_path):
    items = Manifest.load(run.manifest_path).items_for("val")
    (tmp_path / "new" / "more").mkdir(parents=True)
    for i, item in enumerate(items[:3]):
        shutil.copy(item.path, tmp_path / "new" / ("more" if i == 2 else "") / f"p{i}.jpg")
    (tmp_path / "new" / "broken.jpg").write_bytes(b"not a photo")
    predictor = load_predictor(run, "best")
    assert predictor.unknown is not None  # the run fitted its "none of these" check
    results = predict_folder(predictor, tmp_path / "new", k=2)
    assert [r.path for r in results] == ["broken.jpg", "more/p2.jpg", "p0.jpg", "p1.jpg"]
    assert results[0].error and all(r.label in ("ants", "bees") for r in results[1:])
    everything_odd = at_threshold(results, 0.0)  # every photo is farther than 0
    assert [r.unknown for r in everything_odd] == [None, True, True, True]
    nothing_odd = at_threshold(results, 10.0)  # no photo is that far (the maximum is 2)
    assert [r.unknown for r in nothing_odd] == [None, False, False, False]
    assert results[1].unknown is not None  # the originals keep their own verdict
    rows = prediction_rows(everything_odd)
    assert list(rows[1]) == ["file", "prediction", "probability", "none of these", "error"]
    assert rows[0]["error"] and rows[1]["none of these"] is True
    table = list(csv.DictReader(io.StringIO(predictions_csv(nothing_odd))))
    assert [r["unknown"] for r in table] == ["", "false", "false", "false"]
    (tmp_path / "empty").mkdir()
    assert predict_folder(predictor, tmp_path / "empty") == []
    with pytest.raises(DataError, match="is not a folder"):
        predict_folder(predictor, tmp_path / "new" / "p0.jpg")
