"""Every task the house knows has its entry in each wing's table, and an unknown one is refused
in words (``tlcore.data.task``; docs/architecture.md, "Adding a task")."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from tlcore.data.task import TASKS, Task
from tlcore.errors import ConfigError

DATA = Path(__file__).parent / "data" / "before-wings"
ROOT = Path(__file__).resolve().parents[1]


# -- export (tlcore.export.tasks) ---------------------------------------------------------------
def test_every_task_has_an_export_entry_whose_formats_the_exporter_knows():
    from tlcore.export.exporter import FORMATS
    from tlcore.export.tasks import EXPORT_TASKS, export_task

    assert set(EXPORT_TASKS) == set(TASKS)
    for key in TASKS:
        modality, target = key.split("-")
        entry = export_task(Task(modality, target))
        assert entry.formats and set(entry.formats) <= set(FORMATS), key
        assert entry.refused or set(entry.formats) == set(FORMATS), key  # a refusal says why
        # a task that builds its own graph (a detector: one photo of a fixed size) says its own
        assert entry.build is not None or entry.input_axes[0] == "batch", key


def test_an_unknown_task_is_refused_in_words_by_export_and_the_ladder():
    from tlcore.export.tasks import export_task, model_task
    from tlcore.lab.task_ladders import LADDERS, ladder_for

    assert set(LADDERS) == set(TASKS)
    audio = Task("audio", "label")
    with pytest.raises(ConfigError, match="'audio-label'.*image-label, text-columns, text-label"):
        export_task(audio)
    with pytest.raises(ConfigError, match="'audio-label'.*image-label, text-columns, text-label"):
        ladder_for(audio)
    with pytest.raises(ConfigError, match="audio-label"):  # a bundle of a newer version
        export_task(model_task({"modality": "audio"}))


def test_an_old_bundle_and_an_old_run_export_as_photos(tmp_path, monkeypatch):
    """Written before tasks existed: no "modality" in tlcore.json, no "task" in config.json."""
    from tlcore.export.exporter import check_images
    from tlcore.export.tasks import export_task, model_task
    from tlcore.runs.run import Run
    from tlcore.runs.scoring import load_predictor

    with zipfile.ZipFile(DATA / "bundle.zip") as zf:
        meta = json.loads(zf.read("tlcore.json"))
    assert "modality" not in meta and model_task(meta).key == "image-label"
    assert export_task(model_task(meta)).input_name == "image"

    runs = tmp_path / "runs"
    folder = shutil.copytree(DATA / "run", runs / "old-run")
    manifest = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(manifest.replace("/tmp/old/assets/", f"{ROOT}/assets/"))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs))
    run = Run(folder)
    assert "task" not in json.loads((folder / "config.json").read_text())
    predictor = load_predictor(run)
    assert model_task(predictor).key == "image-label"
    images = check_images(run, predictor, limit=3)  # the run's own validation photos
    assert images.dtype.is_floating_point and tuple(images.shape) == (3, 3, 32, 32)


# -- lab (tlcore.lab.ladder) ----------------------------------------------------------------------
def test_the_ladder_of_labelled_texts_is_measured_with_the_sentence_encoder(tmp_path):
    from text_run_fixture import review_rows, write_csv

    from tlcore.lab.task_ladders import measure_ladder

    data = write_csv(tmp_path / "reviews-48.csv", review_rows())
    ladder = measure_ladder(data, shots=(1,), repeats=3)  # the data says texts: no photo read
    assert [r.kind for r in ladder.rungs] == ["zero-shot", "one-shot", "all photos"]
    assert ladder.rungs[0].detail == "names: negative, positive"
    assert ladder.classes == ["negative", "positive"] and ladder.n_val == 10


# -- data, training, results (the lower wings' tables) -----------------------------------------
def test_every_task_has_a_training_and_a_results_entry():
    from tlcore.results.tasks import RESULTS_TASKS, results_task
    from tlcore.training.tasks import TRAINING_TASKS, training_task

    assert set(TRAINING_TASKS) == set(TASKS) == set(RESULTS_TASKS)
    audio = Task("audio", "label")
    with pytest.raises(ConfigError, match="audio-label"):
        training_task(audio)
    with pytest.raises(ConfigError, match="audio-label"):
        results_task(audio)


def test_the_task_is_decided_from_the_data_kept_in_the_run_and_refused_when_unknown(
    tmp_path, monkeypatch
):
    """A photo folder and a sentences CSV become their tasks when the run is created; a
    config.json naming a task this version does not know is refused in words."""
    from tlcore.data.task import PHOTO_LABEL, TEXT_LABEL
    from tlcore.errors import RunError
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    photos = Run.create(TrainConfig(data=str(ROOT / "assets" / "ants-bees"), epochs=1))
    texts = Run.create(TrainConfig(data=str(ROOT / "assets" / "reviews-amazon" / "reviews.csv"),
                                   model="all-MiniLM-L6-v2", augment="none", epochs=1))  # fmt: skip
    assert photos.task == PHOTO_LABEL and photos.task.items == "photos"
    assert texts.task == TEXT_LABEL and texts.task.items == "texts"
    record = json.loads(texts.config_path.read_text())
    assert record["task"] == {"modality": "text", "target": "label"}
    record["task"] = {"modality": "audio", "target": "label"}
    texts.config_path.write_text(json.dumps(record))
    with pytest.raises(RunError, match="'audio-label' is not one this version knows"):
        _ = texts.task
    assert Task.from_dict({"modality": "image"}) == PHOTO_LABEL
    with pytest.raises(ConfigError, match="must be an object"):
        Task.from_dict("image")
    shutil.rmtree(tmp_path / "runs")
