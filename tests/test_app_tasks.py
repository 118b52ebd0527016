"""The pages' task table (``appkit.tasks``): one entry per task the house knows, each
consistent with itself, and an unknown task refused in words."""

from __future__ import annotations

import pytest

from appkit import tasks
from tlcore.data.task import TASKS, Task
from tlcore.errors import ConfigError
from tlcore.training.config import TrainConfig


def test_every_task_has_a_page_entry_that_reads_its_own_default_model():
    assert set(tasks.VIEWS) == set(TASKS)
    for key, view in tasks.VIEWS.items():
        assert view.task.key == key and view.items == TASKS[key]["items"]
        assert view.reads_model(view.default_model), key  # a new dataset gets a model it suits
        # photos of any task read photo models; texts read text models (one modality apart)
        others = [v for v in tasks.VIEWS.values() if v.task.modality != view.task.modality]
        assert not any(view.reads_model(o.default_model) for o in others), key
        assert set(view.fixed_settings) <= set(TrainConfig().to_dict()), key
        if not view.pixels:  # no pixels: no augmentation to choose
            assert view.fixed_settings.get("augment") == "none", key


def test_an_unknown_task_is_refused_in_words():
    with pytest.raises(ConfigError, match="cannot show task 'audio-label'"):
        tasks.view(Task("audio", "label"))
