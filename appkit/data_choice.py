"""The chosen dataset: checked and split once per change, and the task it holds.

Pages ask here for "the prepared dataset" instead of calling ``prepare_data`` with the
same arguments in several places. Every tlcore error passes through unchanged so the
page can show its message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import streamlit as st

from appkit import state, tasks
from appkit.progress import progress_bar
from appkit.text import md
from tlcore import settings
from tlcore.data.prepare import PreparedData, prepare_data
from tlcore.data.task import PHOTO_LABEL, Task, task_of
from tlcore.errors import TLCoreError

T = TypeVar("T")
_PREPARED_KEY = "tl_prepared"


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
    _switch_to({"kind": kind, "source": str(source), "label": label})
    st.session_state[_PREPARED_KEY] = ((str(source), val_fraction, seed), result)
    _fit_model_to_data(tasks.view(task_of_prepared(result)))
    return result


RECENT = 6  # earlier datasets offered again on the Data page


def _switch_to(data: dict[str, str]) -> None:
    """Make ``data`` the chosen dataset: the one before joins the recent ones, and the run
    the pages follow becomes this dataset's newest (or none). A run trained on other data
    stayed on the Train page with its 12x12 matrix after the reviews were chosen."""
    before = state.get("data")
    recent = [d for d in [before, *state.get("recent_data")]
              if d and d.get("source") != data["source"]][:RECENT]  # fmt: skip
    state.update(data=data, recent_data=recent, run_id=_newest_run_on(data["source"]))


def _newest_run_on(source: str) -> str | None:
    """This user's newest run whose data is ``source`` (a folder, a CSV or a table)."""
    from tlcore.runs.run import list_runs

    try:
        wanted = Path(source).resolve()
    except OSError:
        return None
    for run in list_runs(state.runs_owner()):
        try:
            data = run.record.get("config", {}).get("data")
            if data and Path(str(data)).resolve() == wanted:
                return run.id
        except (TLCoreError, OSError, AttributeError):
            continue  # a broken run folder is the Runs page's to report
    return None


def recent() -> list[dict[str, str]]:
    """Datasets chosen before that can still be read, newest first."""
    return [d for d in state.get("recent_data") if isinstance(d, dict) and d.get("source")
            and Path(str(d["source"])).exists()]  # fmt: skip


def choose_again(data: dict[str, str]) -> None:
    """One of ``recent()`` chosen again, read like the first time (a sample, a folder)."""
    if data.get("task"):
        modality, _, target = str(data["task"]).partition("-")
        choose_task_data(Task.from_dict({"modality": modality, "target": target}),
                         data["source"], data["label"])  # fmt: skip
    else:
        choose_data(data.get("kind", "folder"), data["source"], data["label"])


def choose_task_data(task: Task, source: str | Path, label: str) -> None:
    """Make data of another shape (photos with boxes, a table of label columns) the dataset.

    Its own section has read and reported it (``tlcore.data.boxes``, ``tlcore.data.columns``);
    the pages of its task (``appkit.tasks``) take it from here. ``prepared()`` is None for it:
    the one-label-per-item steps (split, doctor) do not apply.
    """
    _switch_to({"kind": "task", "source": str(source), "label": label, "task": task.key})
    st.session_state.pop(_PREPARED_KEY, None)
    _fit_model_to_data(tasks.view(task))


def _chosen_task() -> Task | None:
    """The task of data chosen with ``choose_task_data``; None for a one-label-per-item choice."""
    data = state.get("data") or {}
    key = data.get("task")
    if not key:
        return None
    modality, _, target = str(key).partition("-")
    try:
        return Task.from_dict({"modality": modality, "target": target})
    except TLCoreError:  # a state file from another version: read the folder as it is
        return None


def _fit_model_to_data(view: tasks.TaskView) -> None:
    """Texts need a text encoder and photos a photo model: switch to the task's default
    (feature extraction) when the new data does not suit the chosen model."""
    if not view.reads_model(state.get("model")):
        state.update(model=view.default_model, weights="bundled", freeze={"preset": "features"})


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
    if not data or _chosen_task() is not None:
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


def task_of_prepared(result: PreparedData) -> Task:
    """The task of prepared data: from its split, or its report when it cannot be trained."""
    return task_of(result.manifest if result.manifest is not None else result.report)


def data_task() -> Task:
    """The task of the chosen dataset; photos before any choice or when it cannot be read
    (the Data page reports data problems, not the others)."""
    chosen = _chosen_task()
    if chosen is not None:
        return chosen
    try:
        result = prepared()
    except TLCoreError:
        return PHOTO_LABEL
    return PHOTO_LABEL if result is None else task_of_prepared(result)


def data_view() -> tasks.TaskView:
    """What the pages show for the chosen dataset's task (``appkit.tasks``)."""
    return tasks.view(data_task())


def prepared_or_stop(missing: str) -> PreparedData:
    """The chosen, trainable dataset; else the page says ``missing``, links to the Data step
    and stops."""
    prepared = prepared_or_none()
    if prepared is None or prepared.manifest is None:
        point_to_data_page(missing)
        st.stop()
    return prepared


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


def sample_offer(description: str, label: str, key: str) -> bool:
    """A sample's words and its button; True once pressed (kept for the session, so the
    sample's section stays open while its widgets rerun the page)."""
    st.markdown(description)
    if st.button(label, key=key):
        st.session_state[f"{key}_pressed"] = True
    return bool(st.session_state.get(f"{key}_pressed"))


def offered_sample(description: str, label: str, key: str, read: Callable[[], T]) -> T | None:
    """``sample_offer``, then the sample read once pressed; None before that or when it
    cannot be read (the reason shown), so the sample's section stops there."""
    if not sample_offer(description, label, key):
        return None
    try:
        return read()
    except TLCoreError as exc:
        st.error(md(exc))
        return None
