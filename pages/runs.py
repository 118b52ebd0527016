"""Every run on this computer, to compare settings and reopen one's curves."""

import pandas as pd
import streamlit as st

from appkit import navigation, runview, state, tasks
from appkit.text import md
from tlcore.errors import TLCoreError
from tlcore.runs.run import Run, list_runs

navigation.through_app()

st.title("Runs")
st.markdown("Every training run is kept. Compare them: which model, which layers, which accuracy.")

admin = state.is_admin()
runs = list_runs(state.runs_owner())
if admin:
    st.caption("Admin view: every user's runs (the owner column is the user's session id).")
if not runs:
    st.info("No runs yet: start one on the Train page.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

rows = []
for run in runs:
    try:
        row = runview.summary_row(run)
    except TLCoreError:
        continue
    rows.append({"owner": run.summary().get("owner") or "-", **row} if admin else row)
broken = [r for r in rows if r["status"] == "broken"]
for row in broken:  # listed, with why; every other run still shows and opens
    st.warning(f"Run {md(row['run'])}: {md(row['name'])}", icon=":material/warning:")
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    width="stretch",
    column_config={
        "best val accuracy": st.column_config.ProgressColumn(
            format="percent", min_value=0.0, max_value=1.0
        ),
        "learning rate": st.column_config.NumberColumn(format="%.1e"),
    },
)

ids = [r["run"] for r in rows if r["status"] != "broken"]
if not ids:
    st.stop()
active = state.get("run_id")
picked = st.selectbox(
    "Open a run",
    ids,
    index=ids.index(active) if active in ids else 0,
    key="open_run",
)
run = Run.open(picked)
info = runview.progress_summary(run)
if picked != active and st.button("Follow this run in the sidebar and on Train", key="follow"):
    state.update(run_id=picked)
    st.rerun()
config = runview.run_config(run)
st.caption(
    f"Model `{config.get('model')}` ({config.get('weights')} weights) · "
    f"{runview.preset_label(config.get('freeze'))} · learning rate {config.get('lr')} · "
    f"batch {config.get('batch_size')} · {config.get('img_size')} px · "
    f"augmentation {config.get('augment')}"
)
if tasks.run_view(run).train_page is not None:  # boxes, label columns: their own pages' curves
    st.markdown(
        f"**{md(info['status'].get('state', ''))}**: {md(info['status'].get('message', ''))}"
    )
    st.stop()
runview.headline(info["epochs"], info["status"].get("state", ""))
runview.curves(info["steps"], info["epochs"], key="runs")
runview.confusion(info["epochs"], key="runs")
