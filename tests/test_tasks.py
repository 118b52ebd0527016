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
        assert entry.input_axes[0] == "batch", key


def test_an_unknown_task_is_refused_in_words_by_export_and_the_ladder():
    from tlcore.export.tasks import export_task, model_task
    from tlcore.lab.ladder import LADDERS, ladder_for

    assert set(LADDERS) == set(TASKS)
    audio = Task("audio", "label")
    with pytest.raises(ConfigError, match="'audio-label'.*image-label, text-label"):
        export_task(audio)
    with pytest.raises(ConfigError, match="'audio-label'.*image-label, text-label"):
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
