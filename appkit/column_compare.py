"""The Evaluate page's "Would separate models do better?" section for a run of label columns.

The seeds' question on the person's own table (``tlcore.lab.columns_compare``): one shared
model against a model per column and the logistic-regression reference, on the run's split
(its group column kept), with its epochs and learning rate, on the frozen backbone's cached
embeddings (seconds: a run of this table already embedded every item). Shown side by side
per task, with the finding in words. Column names are the user's: Markdown goes through
``md``; the table shows them as data.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from tlcore.data.markdown import md
from tlcore.errors import TLCoreError
from tlcore.runs.run import Run

SEEDS = 1  # the spread comes mostly from the validation items drawn again (measured)


def compare_section(run: Run) -> None:
    """The button, then the table of the three ways per task and the sentence."""
    st.divider()
    st.subheader("Would separate models do better?")
    st.caption("Trains, on the same split and budget, a model per column and a logistic "
               "regression per column on the frozen backbone's cached embeddings, and "
               "compares them with one shared model, task by task.")  # fmt: skip
    key = f"columns_compare_{run.id}"
    if st.button("Would separate models do better?", key="columns_compare"):
        try:
            with st.spinner("Training a model per column and the reference…"):
                st.session_state[key] = _compare(run)
        except TLCoreError as exc:
            st.error(md(exc))
            return
    result = st.session_state.get(key)
    if result:
        show_comparison(result)


def _compare(run: Run) -> dict[str, Any]:
    from tlcore.lab.columns_compare import compare_columns
    from tlcore.runs.files import read_json
    from tlcore.training import embedding_cache

    config = run.config
    data = read_json(run.config_path).get("data") or {}
    return compare_columns(
        data.get("source") or config.data, data.get("tasks"), data.get("group"),
        model=config.model, weights=config.weights, img_size=config.img_size or 224,
        epochs=config.epochs if _fast(config) else 60, lr=config.lr if _fast(config) else 2e-3,
        seed=config.seed, seeds=SEEDS, val_fraction=config.val_fraction, device=config.device,
        cache_dir=embedding_cache.folder(run.dir.parent),
    )  # fmt: skip


def _fast(config: Any) -> bool:
    return (config.freeze or {}).get("preset", "features") == "features"


def show_comparison(result: dict[str, Any]) -> None:
    """Per task and score: the shared model, a model per task, the reference, the gap."""
    from tlcore.lab.columns_compare import METRIC_WORDS, WAY_WORDS, WAYS

    rows = []
    for name, row in result["tasks"].items():
        for metric in row["multitask"]:
            rows.append({"task": name, "score": METRIC_WORDS.get(metric, metric),
                         **{WAY_WORDS[w]: row[w].get(metric) for w in WAYS},
                         "gap (shared - own)": row["gain"] if metric == row["metric"] else None,
                         "± spread": row["spread"] if metric == row["metric"] else None})  # fmt: skip
    st.dataframe(rows, hide_index=True)
    st.markdown(md(result["answer"]))
    took = result["seconds"]
    st.caption(f"Seconds: embeddings {took['embedding']:.1f} (cached ones read back), shared "
               f"{took['multitask']:.1f}, a model per task {took['single']:.1f}, reference "
               f"{took['logreg']:.1f}.")  # fmt: skip
