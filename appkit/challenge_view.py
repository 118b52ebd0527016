"""The class challenge on the pages: the Home notice, the student's part, the teacher's part.

Thin views over ``tlcore.runs.challenge*``: every name, title and description is the
user's text and goes through ``md`` (Markdown) or ``plot_text`` (Plotly); tables show
cells as text. Students see names and choices on the board, never run ids or the
hidden test items; the teacher (``?admin=<token>``) sees run ids and the CSV.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from appkit import data_choice, state
from appkit.text import md, plot_text
from tlcore import settings
from tlcore.errors import TLCoreError
from tlcore.runs.challenge import Challenge, ChallengeLimits, list_challenges
from tlcore.runs.challenge_board import board_csv, leaderboard
from tlcore.runs.challenge_create import create_challenge
from tlcore.runs.challenge_entry import ensure_scorer, scoring, submissions, submit
from tlcore.runs.run import list_runs

PERCENT = st.column_config.NumberColumn(format="percent")


def home_notice() -> None:
    """The open challenges, on the Home page, with a way in."""
    for challenge in list_challenges(open_only=True):
        with st.container(border=True):
            st.markdown(f"### :material/trophy: Class challenge: {md(challenge.title)}")
            if challenge.description:
                st.markdown(md(challenge.description))
            st.caption(_rules(challenge))
            left, right = st.columns(2)
            if left.button("Train on the challenge's data", key=f"home_ch_{challenge.id}"):
                use_data(challenge)
            right.page_link("pages/challenge.py", label="Submit and see the board",
                            icon=":material/leaderboard:")  # fmt: skip


def _rules(challenge: Challenge) -> str:
    counts = challenge.counts.get("data", {})
    said = [f"{sum(counts.values())} {challenge.task.items} in {len(counts)} classes to train on",
            f"ranked by {challenge.ranked_by} on hidden {challenge.task.items}"]  # fmt: skip
    said += challenge.limits.words()
    if challenge.deadline:
        said.append(f"deadline {challenge.deadline} (UTC)")
    return md(" · ".join(said))


def use_data(challenge: Challenge) -> None:
    """Make the challenge's training part the chosen dataset, then go to the Data page."""
    try:
        data_choice.choose_data("folder", challenge.data_path, f"Challenge: {challenge.title}")
    except TLCoreError as exc:
        st.error(md(exc))
        return
    st.switch_page("pages/data.py")


# -- students --------------------------------------------------------------------------------
def student_part(challenge: Challenge) -> None:
    """Display name, the challenge's data, submitting a finished run, own entries, the board."""
    owner = state.owner_id()
    if challenge.description:
        st.markdown(md(challenge.description))
    st.caption(_rules(challenge))
    name = challenge.name_of(owner)
    with st.form(f"ch_name_{challenge.id}", border=False):
        typed = st.text_input("Your display name on the board", value=name or "",
                              max_chars=40, key=f"ch_name_in_{challenge.id}")  # fmt: skip
        if st.form_submit_button("Save name"):
            try:
                name = challenge.set_name(owner, typed)
                st.success(f"You appear on the board as **{md(name)}**.")
            except TLCoreError as exc:
                st.error(md(exc))
    if st.button("Train on the challenge's data", key=f"ch_data_{challenge.id}"):
        use_data(challenge)
    reason = challenge.closed_reason()
    if reason:
        st.info(md(reason[0].upper() + reason[1:]))
    else:
        _submit_form(challenge, owner)
    mine = submissions(challenge, owner)
    if mine:
        st.markdown("#### Your submissions")
        st.dataframe(pd.DataFrame([_entry_row(s) for s in mine]), hide_index=True,
                     column_config={"test accuracy": PERCENT}, key=f"ch_mine_{challenge.id}")  # fmt: skip
    show_board(challenge, teacher=False)


def _submit_form(challenge: Challenge, owner: str) -> None:
    finished = [s for s in (r.summary() for r in list_runs(owner)) if s["state"] == "finished"]
    if not finished:
        st.info("Train a run on the challenge's data; once it has finished, submit it here.")
        return
    labels = {f"{s['id']} · {s['model']} · {s['freeze']}": s["id"] for s in finished}
    picked = st.selectbox("Your finished run", list(labels), key=f"ch_run_{challenge.id}")
    if st.button("Submit this run", type="primary", key=f"ch_submit_{challenge.id}"):
        try:
            submit(challenge, owner, labels[picked])
            st.success("Submitted: it is scored on the hidden test part in a moment.")
        except TLCoreError as exc:
            st.error(md(exc))


def _entry_row(entry: dict[str, Any]) -> dict[str, Any]:
    return {"submitted": entry.get("submitted"), "run": entry.get("run_id"),
            "state": entry.get("state"), "test accuracy": entry.get("test_accuracy"),
            "message": entry.get("message")}  # fmt: skip


# -- the board -------------------------------------------------------------------------------
def show_board(challenge: Challenge, teacher: bool) -> list[dict[str, Any]]:
    """The ranked board (refreshing while submissions wait to be scored)."""
    waiting = scoring(challenge)

    @st.fragment(run_every=3.0 if waiting else None)
    def board() -> None:
        # a scorer that died is started again; once all are scored, redraw the page (own
        # entries too) and stop polling
        if waiting and not ensure_scorer(challenge) and not scoring(challenge):
            st.rerun(scope="app")
        rows = leaderboard(challenge, teacher=teacher)
        st.markdown(f"#### Board: ranked by {md(challenge.ranked_by)}")
        if not rows:
            st.info("No scored submission yet.")
            return
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     column_config={"test_accuracy": PERCENT, "test_macro_f1": PERCENT,
                                    "val_accuracy": PERCENT, "gap": PERCENT},
                     key=f"ch_board_{challenge.id}_{teacher}")  # fmt: skip

    board()
    return leaderboard(challenge, teacher=teacher)


def board_chart(rows: list[dict[str, Any]]) -> go.Figure:
    """Test accuracy against training time, one colour per freezing plan."""
    fig = go.Figure()
    for plan in sorted({str(r.get("freezing")) for r in rows}):
        mine = [r for r in rows if str(r.get("freezing")) == plan]
        fig.add_trace(go.Scatter(
            x=[r.get("training_minutes") for r in mine], y=[r.get("test_accuracy") for r in mine],
            mode="markers", name=plot_text(plan), marker={"size": 12},
            text=[plot_text(r.get("name")) for r in mine],
            hovertemplate="%{text}: %{y:.1%} in %{x:.1f} min<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(xaxis_title="training time (minutes)", yaxis_title="test accuracy",
                      yaxis_tickformat=".0%", yaxis_range=[0, 1.02], xaxis_rangemode="tozero",
                      showlegend=True, legend_title="freezing plan", height=360,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})  # fmt: skip
    return fig


# -- the teacher -----------------------------------------------------------------------------
def teacher_part() -> None:
    """Create a challenge; for each one: the chart, the gap, the CSV, closing it."""
    with st.expander("New challenge", icon=":material/add:", expanded=not list_challenges()):
        _create_form()
    for challenge in list_challenges():
        status = "closed" if not challenge.is_open() else "open"
        with st.container(border=True):
            st.markdown(f"### {md(challenge.title)} ({status})")
            st.caption(_rules(challenge))
            rows = show_board(challenge, teacher=True)
            if rows:
                st.plotly_chart(board_chart(rows), key=f"ch_chart_{challenge.id}")
                gaps = [{"name": r["name"], "validation": r.get("val_accuracy"),
                         "test": r.get("test_accuracy"), "gap": r.get("gap")} for r in rows]  # fmt: skip
                st.markdown("**Validation vs test** (a large gap: tuned to the validation split)")
                st.dataframe(pd.DataFrame(gaps), hide_index=True, key=f"ch_gap_{challenge.id}",
                             column_config={k: PERCENT for k in ("validation", "test", "gap")})  # fmt: skip
                st.download_button("Download the board (CSV)", board_csv(challenge),
                                   file_name=f"board-{challenge.id}.csv", mime="text/csv",
                                   key=f"ch_csv_{challenge.id}")  # fmt: skip
            if challenge.is_open() and st.button(
                "Close the challenge", key=f"ch_close_{challenge.id}"
            ):
                challenge.close()
                st.rerun()


def _create_form() -> None:
    data = state.get("data")
    samples = {f"Sample: {name}": str(path) for name, path in settings.sample_datasets().items()}
    samples["Sample: reviews (sentences)"] = str(settings.text_sample_path())
    options = dict(samples)
    if data and data.get("source"):
        options = {f"The chosen data: {data.get('label')}": str(data["source"]), **samples}
    with st.form("ch_create"):
        picked = st.selectbox("Dataset", list(options), key="ch_source")
        title = st.text_input("Title", max_chars=120, key="ch_title")
        description = st.text_area("What students should do", max_chars=2000, key="ch_desc")
        fraction = st.slider("Hidden test part", 0.1, 0.4, 0.2, 0.05, key="ch_fraction")
        cols = st.columns(4)
        epochs = cols[0].number_input("Max epochs (0 = any)", 0, 1000, 0, key="ch_epochs")
        size = cols[1].number_input("Max image size (0 = any)", 0, 1024, 0, key="ch_size")
        minutes = cols[2].number_input("Max minutes (0 = any)", 0, 600, 0, key="ch_minutes")
        days = cols[3].number_input("Deadline in days (0 = none)", 0, 365, 0, key="ch_days")
        models = st.text_input("Allowed models, comma-separated (empty = any)", key="ch_models")
        if st.form_submit_button("Create the challenge", type="primary"):
            deadline = None
            if days:
                day = datetime.now(UTC).date() + timedelta(days=int(days))
                deadline = datetime.combine(day, time(23, 59), tzinfo=UTC)
            try:
                limits = ChallengeLimits(
                    models=tuple(m.strip() for m in models.split(",") if m.strip()),
                    epochs=int(epochs) or None, img_size=int(size) or None,
                    minutes=float(minutes) or None,
                )  # fmt: skip
                task = (
                    data_choice.data_task()
                    if options[picked] == str((data or {}).get("source"))
                    else None
                )
                made = create_challenge(options[picked], title=title, description=description,
                                        test_fraction=fraction, limits=limits, deadline=deadline,
                                        task=task)  # fmt: skip
                st.success(f"Created **{md(made.title)}**: students see it on the Home page.")
            except TLCoreError as exc:
                st.error(md(exc))
