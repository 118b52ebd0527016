"""The sidebar on every page: what has been chosen so far and how the run is doing.

Newcomers lose track of earlier steps; a teacher switching pages mid-run wants the
progress in view. The progress part refreshes itself while a run is active.
"""

from __future__ import annotations

import streamlit as st

from appkit import active_run, runview, state
from appkit.text import md
from tlcore.runs.run import ACTIVE_STATES, Run


def render() -> None:
    state.is_admin()  # an ?admin= link is remembered for the session before a menu click drops it
    with st.sidebar:
        st.markdown("### Your choices")
        data = state.get("data")
        st.markdown(f"**Data:** {md(data['label']) if data else '— not chosen yet'}")
        weights = state.get("weights")
        source = weights if weights in ("bundled", "hub", "scratch") else "your checkpoint"
        st.markdown(f"**Model:** `{state.get('model')}` ({source} weights)")
        st.markdown(f"**Layers:** {runview.preset_label(state.get('freeze'))}")
        run = active_run.followed()
        if run is not None:
            st.markdown("### Training run")
            _run_progress(run)


def _run_progress(run: Run) -> None:
    live = run.status().get("state") in ACTIVE_STATES

    # every 5 s: a glance from any page (the Train page's own bar refreshes every 3 s), and
    # each refresh costs the browser a redraw that the training on the same CPU pays for
    @st.fragment(run_every=5.0 if live else None)
    def progress() -> None:
        current = active_run.followed()
        if current is None:
            return
        info = runview.progress_summary(current, compact=True)
        if live and info["status"].get("state") not in ACTIVE_STATES:
            st.rerun(scope="app")  # the run ended: redraw once and stop polling

    progress()
