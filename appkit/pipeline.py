"""Turn the user's stored choices into tlcore objects, once per change.

Pages ask here for "the prepared dataset", "the model to draw", "the run being
watched" instead of calling tlcore with the same arguments in several places.
Every tlcore error passes through unchanged so the page can show its message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from appkit import state
from appkit.text import md
from tlcore import settings
from tlcore.data.prepare import PreparedData, prepare_data
from tlcore.data.progress import Progress, ProgressCallback
from tlcore.data.versions import DatasetVersion, VersionStore
from tlcore.errors import RunError, TLCoreError
from tlcore.models.factory import model_skeleton
from tlcore.models.freezing import FreezePlan, layer_groups, summary_rows
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig
from tlcore.training.estimate import (
    MachineSpeed,
    RunEstimate,
    estimate_for,
    machine_speed,
    uses_fast_path,
)

_PREPARED_KEY = "tl_prepared"


@contextlib.contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """A bar with "k of N · about T left" for a tlcore step, removed when the step ends."""
    slot = st.empty()

    def show(progress: Progress) -> None:
        slot.progress(progress.fraction, text=progress.text())

    try:
        yield show
    finally:
        slot.empty()


def choose_data(kind: str, source: str | Path, label: str) -> PreparedData:
    """Check ``source`` and, only if it can be read, make it the dataset.

    A broken upload raises the tlcore error and leaves the earlier choice in place,
    so nothing already done is lost. A zip is replaced by the folder it was
    extracted to, so later pages do not unpack it again.
    """
    val_fraction, seed = float(state.get("val_fraction")), int(state.get("seed"))
    with progress_bar() as progress:
        result = prepare_data(source, val_fraction=val_fraction, seed=seed, progress=progress)
    source = result.root if Path(source).is_file() else Path(source)
    state.update(data={"kind": kind, "source": str(source), "label": label})
    st.session_state[_PREPARED_KEY] = ((str(source), val_fraction, seed), result)
    _fit_model_to_data(getattr(result.report, "modality", "image") == "text")
    return result


def _fit_model_to_data(text: bool) -> None:
    """Texts need a text encoder and photos a photo model: switch to the default of the
    other kind (feature extraction) when the new data does not suit the chosen model."""
    from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL, is_text_model

    if text != is_text_model(state.get("model")):
        model = DEFAULT_TEXT_MODEL if text else state.DEFAULT_MODEL
        state.update(model=model, weights="bundled", freeze={"preset": "features"})


def choose_sample(name: str = "ants-bees") -> None:
    """One of the bundled samples (``tlcore.settings.sample_datasets``) by name."""
    label = state.SAMPLE_LABELS.get(name, f"Sample: {name}")
    choose_data("sample", settings.sample_datasets()[name], label)


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
    with progress_bar() as progress:
        result = prepare_data(data["source"], val_fraction=key[1], seed=key[2], progress=progress)
    st.session_state[_PREPARED_KEY] = (key, result)
    return result


def prepared_or_none() -> PreparedData | None:
    """The chosen dataset, or None with the reason shown when it cannot be read."""
    try:
        return prepared()
    except TLCoreError as exc:
        st.error(md(exc))
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
    """A copy with no weights (meta device), only for drawing: shapes and counts are exact.

    Shared by all sessions, never trained or modified (cache_resource is global).
    """
    model = model_skeleton(name, n_classes)
    return model, layer_groups(model)


def freeze_plan() -> FreezePlan:
    return FreezePlan.from_dict(state.get("freeze"))


def layer_summary(plan: FreezePlan | None = None, epoch: int = 0) -> list[dict]:
    """Rows (group, layers, params, trainable, lr_mult) for the chosen model and plan."""
    model, groups = _display_model(state.get("model"), num_classes())
    return summary_rows(model, groups, plan or freeze_plan(), epoch)


def backbone_lr_mult(scale: float) -> list[float]:
    """Per-group LR multipliers: ``scale`` for every pretrained group, 1 for the new head."""
    n_groups = len(layer_summary())
    return [float(scale)] * (n_groups - 1) + [1.0]


def head_is_solved(config: TrainConfig) -> bool:
    """True when the run would solve the new head by L-BFGS (tlcore.training.head_solver):
    its learning rate is then unused and its epochs only pace the live curves."""
    return config.head_solver == "lbfgs" and uses_fast_path(config, len(layer_summary()))


def train_settings() -> dict[str, Any]:
    """Hyper-parameters: TrainConfig's defaults overlaid with what the user changed."""
    return {**_train_defaults(), **state.get("train")}


def _train_defaults() -> dict[str, Any]:
    defaults = TrainConfig()
    keys = ("epochs", "lr", "batch_size", "img_size", "augment", "label_smoothing")
    return {k: getattr(defaults, k) for k in (*keys, "early_stopping", "nproc", "augment_views")}


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
    from tlcore.models.text_catalog import is_text_model

    if is_text_model(config.model):  # no pixels to augment or resize (tlcore.models.text_models)
        config.augment, config.augment_views = "none", 0
    return config.validate()


@st.cache_data(show_spinner="Measuring how fast this machine runs the model (once a day)…",
               max_entries=16)  # fmt: skip
def _machine_speed(model: str, img_size: int | None, device: str) -> MachineSpeed:
    return machine_speed(model, img_size, device)


def run_estimate() -> RunEstimate:
    """How long the run the Train page would start takes here (ConfigError/DataError pass)."""
    return estimate_for(build_config(), prepared().manifest, measure=_machine_speed)


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


# -- dataset versions: the label fixes chosen on the Doctor page (tlcore.data.versions) ------
def version_store(result: PreparedData) -> VersionStore:
    """Every saved version of the chosen dataset's split."""
    return VersionStore.of(result.manifest, result.manifest_path)


def chosen_version(result: PreparedData) -> DatasetVersion:
    """The version the user picked for training; the original when none (or another dataset's)."""
    store = version_store(result)
    choice = state.get("data_version") or {}
    if choice.get("base") == store.base_fingerprint:
        try:
            return store.get(int(choice.get("number", 0)))
        except (TLCoreError, TypeError, ValueError):
            pass
    return store.get(0)


def training_manifest_path(result: PreparedData) -> str | None:
    """The manifest a run trains on: the chosen version's, else the dataset's own."""
    if result.manifest is not None and result.manifest.modality == "image":
        version = chosen_version(result)
        if version.number and version.manifest_path:
            return version.manifest_path
    return str(result.manifest_path) if result.manifest_path else None
