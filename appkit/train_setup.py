"""The run the Train page would start: every page's choices as one checked ``TrainConfig``."""

from __future__ import annotations

from typing import Any

from appkit import state
from appkit.data_choice import data_view, prepared
from appkit.data_versions import training_manifest_path
from appkit.model_choice import freeze_plan, layer_summary
from tlcore.errors import RunError
from tlcore.training.config import TrainConfig
from tlcore.training.estimate import uses_fast_path

_SETTING_KEYS = ("epochs", "lr", "batch_size", "img_size", "augment", "label_smoothing",
                 "early_stopping", "nproc", "augment_views")  # fmt: skip


def train_settings() -> dict[str, Any]:
    """Hyper-parameters: TrainConfig's defaults overlaid with what the user changed."""
    defaults = TrainConfig()
    return {**{k: getattr(defaults, k) for k in _SETTING_KEYS}, **state.get("train")}


def build_config() -> TrainConfig:
    """The run's full config from every page's choices; ConfigError/DataError name the field."""
    result = prepared()
    data = state.get("data")
    if result is None or data is None:
        raise RunError("Choose a dataset on the Data page first.")
    config = TrainConfig(
        data=data["source"],
        manifest_path=training_manifest_path(result),
        val_fraction=float(state.get("val_fraction")),
        seed=int(state.get("seed")),
        model=state.get("model"),
        weights=state.get("weights"),
        freeze=freeze_plan().to_dict(),
        owner=state.owner_id(),
        **train_settings(),
    )
    for name, value in data_view().fixed_settings.items():  # e.g. no augmentation for texts
        setattr(config, name, value)
    return config.validate()


def head_is_solved(config: TrainConfig) -> bool:
    """True when the run would solve the new head by L-BFGS (tlcore.training.head_solver):
    its learning rate is then unused and its epochs only pace the live curves."""
    return config.head_solver == "lbfgs" and uses_fast_path(config, len(layer_summary()))
