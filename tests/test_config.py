"""TrainConfig: defaults are valid, every bad field is named, dicts round-trip."""

from __future__ import annotations

import pytest

from tlcore.errors import ConfigError
from tlcore.training.config import TrainConfig


def test_defaults_are_valid_and_round_trip():
    config = TrainConfig(data="some/folder", seed=3, freeze={"preset": "last-k", "k": 2})
    assert config.validate() is config
    again = TrainConfig.from_dict(config.to_dict() | {"added_by_a_newer_version": 1})
    assert again == config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", 2.5),
        ("lr", 0),
        ("lr", -1e-3),
        ("lr", float("nan")),
        ("batch_size", 0),
        ("img_size", 8),
        ("img_size", "big"),
        ("val_fraction", 1.0),
        ("optimizer", "adam"),
        ("schedule", "step"),
        ("augment", "heavy"),
        ("label_smoothing", 1.0),
        ("early_stopping", -1),
        ("warmup_epochs", 5),
        ("device", "tpu"),
        ("weight_decay", -0.1),
    ],
)
def test_bad_field_is_named(field, value):
    config = TrainConfig(data="some/folder", **{field: value})
    with pytest.raises(ConfigError, match=field):
        config.validate()


def test_missing_data_is_rejected():
    with pytest.raises(ConfigError, match="data"):
        TrainConfig().validate()


def test_freeze_takes_the_cli_spelling_or_a_plan_and_refuses_a_typo():
    from tlcore.models.freezing import FreezePlan

    assert TrainConfig(freeze="last-2").freeze == {**FreezePlan.parse("last-2").to_dict()}
    assert TrainConfig(freeze="last-2").freeze["k"] == 2
    assert TrainConfig(freeze=FreezePlan.parse("progressive-2")).freeze["every"] == 2
    assert TrainConfig.from_dict(TrainConfig(freeze="full").to_dict()).freeze["preset"] == "full"
    with pytest.raises(ConfigError, match="Unknown freeze preset 'last_two'"):
        TrainConfig(freeze="last_two")
