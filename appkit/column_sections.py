"""The Data page's table of labels: several label columns per photo (multitask).

The clothing-attributes sample (``garment``, ``kids``, grouped by ``sender``): each label
column shown as a task with its counts, the columns to learn and the group column chosen
here, the split said in groups per side, and a run of them started on the fast path
(``tlcore.runs.columns_run``). Its scores per task come back here when it ends; the
Train, Evaluate and Predict pages do not show these runs yet (``tlcore evaluate RUN`` and
``tlcore predict RUN PHOTO`` do).
"""

from __future__ import annotations

import streamlit as st

from appkit.data_choice import sample_offer
from tlcore import settings
from tlcore.data.columns import read_columns
from tlcore.data.markdown import md
from tlcore.errors import TLCoreError

SAMPLE = settings.PROJECT_ROOT / "assets" / "clothing-attributes" / "labels.csv"
RUN_KEY = "tl_columns_run"


def columns_sample() -> None:
    """The *Try several labels per photo* button and, once pressed, the table as tasks."""
    if not sample_offer(
        "**Clothing, two labels per photo** (multitask): 551 photos, each with its garment "
        "kind and whether it is for children, taken by 129 senders (CC0).",
        "Try several labels per photo",
        "use_sample_columns",
    ):
        return
    try:
        everything = read_columns(SAMPLE, group="sender")
    except TLCoreError as exc:
        st.error(md(exc))
        return
    names = [t.name for t in everything.tasks]
    for task in everything.tasks:
        kind = f"tags separated by `{md(task.separator)}`" if task.kind == "tags" else "one of"
        counts = ", ".join(f"{md(c)} {n}" for c, n in task.counts.items())
        st.markdown(f"- **{md(task.name)}** ({kind}, {task.labelled} labelled): {counts}")
    chosen = st.multiselect("Columns to learn together", names, default=names, key="columns_tasks")
    grouped = st.checkbox(
        "Keep each sender's photos on one side of the split (their photos look alike)",
        value=True,
        key="columns_grouped",
    )
    if not chosen:
        st.info("Choose at least one column.")
        return
    try:
        data = read_columns(SAMPLE, tasks=chosen, group="sender" if grouped else None)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    for line in data.summary().split("\n")[:2]:
        st.caption(md(line))
    for problem in data.problems:
        st.warning(md(problem))
    if st.button("Train these columns (fast path, about a minute)", key="columns_train"):
        _start(chosen, grouped)
    _show_run()


def _start(tasks: list[str], grouped: bool) -> None:
    from tlcore.runs.columns_run import create_columns_run
    from tlcore.training.config import TrainConfig

    try:
        config = TrainConfig(data=str(SAMPLE), epochs=60, lr=2e-3)
        run, _ = create_columns_run(config, tasks, "sender" if grouped else None)
        run.spawn_worker(resume=False)
        st.session_state[RUN_KEY] = str(run.dir)
    except TLCoreError as exc:
        st.error(md(exc))


def _show_run() -> None:
    from tlcore.runs.run import Run

    folder = st.session_state.get(RUN_KEY)
    if not folder:
        return
    run = Run(folder)
    status = run.status()
    st.markdown(f"Run `{md(run.id)}`: **{md(status['state'])}**. {md(status.get('message', ''))}")
    if status["state"] in ("queued", "running"):
        st.button("Refresh", key="columns_refresh")
        return
    for name, scores in (status.get("tasks") or {}).items():
        said = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if isinstance(v, float))
        st.markdown(f"- **{md(name)}**: {said}")
    st.caption(
        f"Per task from a terminal: `tlcore evaluate {md(run.id)}`; "
        f"`tlcore predict {md(run.id)} photo.jpg --json`."
    )
