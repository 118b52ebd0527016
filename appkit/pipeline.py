"""Turn the user's stored choices into tlcore objects, once per change.

Pages ask here for "the prepared dataset", "the model to draw", "the run being
watched" instead of calling tlcore with the same arguments in several places.
Every tlcore error passes through unchanged so the page can show its message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from appkit import state
from tlcore import settings
from tlcore.data.prepare import PreparedData, prepare_data
from tlcore.errors import RunError, TLCoreError
from tlcore.models.factory import create_model
from tlcore.models.freezing import FreezePlan, layer_groups, summary_rows
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

_PREPARED_KEY = "tl_prepared"


def choose_data(kind: str, source: str | Path, label: str) -> PreparedData:
    """Check ``source`` and, only if it can be read, make it the dataset.

    A broken upload raises the tlcore error and leaves the earlier choice in place,
    so nothing already done is lost. A zip is replaced by the folder it was
    extracted to, so later pages do not unpack it again.
    """
    val_fraction, seed = float(state.get("val_fraction")), int(state.get("seed"))
    result = prepare_data(source, val_fraction=val_fraction, seed=seed)
    source = result.root if Path(source).is_file() else Path(source)
    state.update(data={"kind": kind, "source": str(source), "label": label})
    st.session_state[_PREPARED_KEY] = ((str(source), val_fraction, seed), result)
    return result


def choose_sample() -> None:
    choose_data("sample", settings.sample_data_dir(), state.SAMPLE_LABEL)


def prepared() -> PreparedData | None:
    """The chosen dataset scanned, validated and split (None before any choice).

    Raises the tlcore DataError when the folder cannot be read any more (moved,
    deleted); the page shows it.
    """
    data = state.get("data")
    if not data:
        return None
    key = (data["source"], float(state.get("val_fraction")), int(state.get("seed")))
    cached = st.session_state.get(_PREPARED_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    result = prepare_data(data["source"], val_fraction=key[1], seed=key[2])
    st.session_state[_PREPARED_KEY] = (key, result)
    return result


def prepared_or_none() -> PreparedData | None:
    """The chosen dataset, or None with the reason shown when it cannot be read."""
    try:
        return prepared()
    except TLCoreError as exc:
        st.error(str(exc))
        return None


def point_to_data_page(message: str) -> None:
    """Pages that need data say what is missing and link to the Data step."""
    st.warning(message)
    st.page_link("pages/data.py", label="Go to Data", icon=":material/photo_library:")


def num_classes() -> int:
    """Classes of the chosen data, or 2 when none is chosen yet (enough to draw a model)."""
    try:
        result = prepared()
    except TLCoreError:  # the Data page reports data problems, not the others
        return 2
    if result is None or not result.report.classes:
        return 2
    return max(2, len(result.report.classes))


@st.cache_resource(show_spinner="Building the model to show its layers…", max_entries=4)
def _display_model(name: str, n_classes: int) -> Any:
    """A randomly initialised copy, only for drawing: shapes and counts equal the real one.

    Shared by all sessions, never trained or modified (cache_resource is global).
    """
    model = create_model(name, n_classes, weights="scratch")
    return model, layer_groups(model)


def freeze_plan() -> FreezePlan:
    return FreezePlan.from_dict(state.get("freeze"))


def layer_summary(plan: FreezePlan | None = None, epoch: int = 0) -> list[dict]:
    """Rows (group, layers, params, trainable, lr_mult) for the chosen model and plan."""
    model, groups = _display_model(state.get("model"), num_classes())
    return summary_rows(model, groups, plan or freeze_plan(), epoch)


def train_settings() -> dict[str, Any]:
    """Hyper-parameters: TrainConfig's defaults overlaid with what the user changed."""
    return {**_train_defaults(), **state.get("train")}


def _train_defaults() -> dict[str, Any]:
    defaults = TrainConfig()
    keys = ("epochs", "lr", "batch_size", "img_size", "augment", "label_smoothing")
    return {k: getattr(defaults, k) for k in (*keys, "early_stopping", "nproc")}


def build_config() -> TrainConfig:
    """The run's full config from every page's choices; ConfigError/DataError name the field."""
    result = prepared()
    data = state.get("data")
    if result is None or data is None:
        raise RunError("Choose a dataset on the Data page first.")
    config = TrainConfig(
        data=data["source"],
        manifest_path=str(result.manifest_path) if result.manifest_path else None,
        val_fraction=float(state.get("val_fraction")),
        seed=int(state.get("seed")),
        model=state.get("model"),
        weights=state.get("weights"),
        freeze=freeze_plan().to_dict(),
        owner=state.owner_id(),
        **train_settings(),
    )
    return config.validate()


def active_run() -> Run | None:
    """The run this browser is following (from the URL or the state file), if it exists."""
    run_id = state.get("run_id")
    if not run_id:
        return None
    try:
        run = Run.from_id(run_id)  # the id may come from the URL: never a path
        owner = state.runs_owner()
        if owner is not None and run.record.get("owner", "") != owner:
            raise RunError(f"run {run_id} belongs to another user.")
        return run
    except RunError:
        state.update(run_id=None)
        return None
