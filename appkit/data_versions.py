"""Dataset versions on the pages: the label fixes chosen on the Doctor page (tlcore.data.versions).

The Doctor page saves versions, the Train and Doctor pages show which one runs train
on, and a run's config names that version's manifest.
"""

from __future__ import annotations

import streamlit as st

from appkit import state, tasks
from appkit.data_choice import task_of_prepared
from appkit.text import md
from tlcore.data.prepare import PreparedData
from tlcore.data.versions import DatasetVersion, VersionStore
from tlcore.errors import TLCoreError


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
        except TLCoreError as exc:  # a version file changed on disk since it was chosen
            st.warning(f"The chosen dataset version cannot be used: {md(exc)} The original "
                       "photos and labels are used instead.")  # fmt: skip
        except (TypeError, ValueError):
            pass
    return store.get(0)


def has_versions(result: PreparedData) -> bool:
    """Whether this dataset's task has doctor-made versions at all (photos do, texts not)."""
    return result.manifest is not None and tasks.view(task_of_prepared(result)).doctor


def training_manifest_path(result: PreparedData) -> str | None:
    """The manifest a run trains on: the chosen version's, else the dataset's own."""
    if has_versions(result):
        version = chosen_version(result)
        if version.number and version.manifest_path:
            return version.manifest_path
    return str(result.manifest_path) if result.manifest_path else None
