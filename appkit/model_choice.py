"""The chosen model and freeze plan, drawn without weights for the Layers and Train pages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from appkit import state
from appkit.data_choice import num_classes
from tlcore.models.factory import model_skeleton
from tlcore.models.freezing import FreezePlan, layer_groups, summary_rows


@st.cache_resource(show_spinner="Building the model to show its layers…", max_entries=4)
def _display_model(name: str, n_classes: int) -> Any:
    """A copy with no weights (meta device), only for drawing: shapes and counts are exact.

    Shared by all sessions, never trained or modified (cache_resource is global).
    """
    model = model_skeleton(name, n_classes)
    return model, layer_groups(model)


def freeze_plan() -> FreezePlan:
    """The chosen plan (ConfigError in words for a saved plan that no longer parses)."""
    return FreezePlan.from_dict(state.get("freeze"))


def layer_summary(plan: FreezePlan | None = None, epoch: int = 0) -> list[dict]:
    """Rows (group, layers, params, trainable, lr_mult) for the chosen model and plan."""
    model, groups = _display_model(state.get("model"), num_classes())
    return summary_rows(model, groups, plan or freeze_plan(), epoch)


def backbone_lr_mult(scale: float) -> list[float]:
    """Per-group LR multipliers: ``scale`` for every pretrained group, 1 for the new head."""
    n_groups = len(layer_summary())
    return [float(scale)] * (n_groups - 1) + [1.0]
