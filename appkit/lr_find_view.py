"""The Train page's learning-rate range test: started in its own process, polled, then drawn.

The test trains a throw-away model for up to a hundred steps; run inside the page it
held the server's process and died with the next click. ``tlcore.runs.lr_find_job``
runs it detached and writes its curve into a job file; this page part says in words
what is happening while it runs, why it failed if it did, and draws the curve with a
button to use the suggested learning rate. A test belongs to the session that started
it (as the result kept in the session did before), so a refresh starts afresh.
"""

from __future__ import annotations

import time

import streamlit as st

from appkit import charts, state
from appkit.text import md
from appkit.train_setup import build_config
from tlcore.errors import TLCoreError
from tlcore.runs.background import ACTIVE
from tlcore.runs.lr_find_job import DOING, found, lr_find_job, start_lr_find

_STARTED_KEY = "tl_lr_find_started"  # queued_at of the test this session started
POLL_S = 1.0


def start() -> None:
    """Start the test of the run the page would start now; its error in words if it cannot."""
    try:
        job = start_lr_find(build_config(), owner=state.owner_id())
    except TLCoreError as exc:
        st.error(md(exc))
        return
    st.session_state[_STARTED_KEY] = job["queued_at"]


def _job() -> dict | None:
    """This session's test, as its process last wrote it (None when it started none)."""
    started = st.session_state.get(_STARTED_KEY)
    if started is None:
        return None
    job = lr_find_job(state.owner_id())
    return job if job and job.get("queued_at") == started else None


@st.fragment(run_every=POLL_S)
def _waiting() -> None:
    """Said every second while the test runs; the whole page redraws once when it ends."""
    job = _job()
    if job is None or job.get("state") not in ACTIVE:
        st.rerun(scope="app")
        return
    since = job.get("started_at") or job.get("queued_at") or time.time()
    doing = DOING if job.get("state") == "running" else "Starting the learning-rate test."
    st.info(f"{doing} ({time.time() - since:.0f} s so far.) It carries on if you click "
            "elsewhere; the curve appears here when it is done.",
            icon=":material/hourglass_top:")  # fmt: skip


def section(min_lr: float, max_lr: float) -> None:
    """The running test's progress in words, its failure, or its curve and suggestion."""
    job = _job()
    if job is None:
        return
    if job.get("state") in ACTIVE:
        _waiting()
        return
    if job.get("state") == "failed":
        st.error(f"The learning-rate test failed: {md(job.get('message', ''))}")
        return
    result = found(job)
    if result is None:
        return
    lr = result.suggested_lr
    suggestion = min(max(lr, min_lr), max_lr) if lr else None
    st.plotly_chart(charts.lr_range_test(result.lrs, result.losses, suggestion),
                    key="lr_find_chart")  # fmt: skip
    if suggestion:

        def use_suggestion() -> None:
            state.refresh_widgets("train_lr")
            state.update(train={**state.get("train"), "lr": float(suggestion)})

        st.button(f"Use {suggestion:.1e}", key="use_lr", on_click=use_suggestion)
