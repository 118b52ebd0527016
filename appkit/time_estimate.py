"""How long the run the Train page would start takes here, measured once a day per model."""

from __future__ import annotations

import streamlit as st

from appkit.data_choice import prepared
from appkit.train_setup import build_config
from tlcore.lab.compare import Variant, estimate_plan
from tlcore.training.config import TrainConfig
from tlcore.training.estimate import MachineSpeed, RunEstimate, estimate_for, machine_speed


@st.cache_data(show_spinner="Measuring how fast this machine runs the model (once a day)…",
               max_entries=16)  # fmt: skip
def _machine_speed(model: str, img_size: int | None, device: str) -> MachineSpeed:
    return machine_speed(model, img_size, device)


def run_estimate() -> RunEstimate:
    """The estimate of the run ``build_config`` describes (ConfigError/DataError pass)."""
    return estimate_for(build_config(), prepared().manifest, measure=_machine_speed)


def experiment_estimate(base: TrainConfig) -> list[tuple[Variant, RunEstimate]]:
    """Each of the Compare page's runs, estimated like the Train page's run."""
    return estimate_plan(base, prepared().manifest, measure=_machine_speed)
