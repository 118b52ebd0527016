"""Compare experiment: the same photos and budget trained five ways, curves overlaid, one table."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from appkit import data_choice, navigation, state, time_estimate, train_setup
from appkit.learn import learn
from appkit.text import md, md_list
from tlcore.errors import TLCoreError
from tlcore.lab.compare import VARIANTS, Experiment, list_experiments
from tlcore.training.estimate import duration_text

navigation.through_app()

COLOURS = {"a": "#868e96", "b": "#1c7ed6", "c": "#f59f00", "d": "#e8590c", "e": "#2f9e44"}
IMAGE_SIZES = [64, 96, 128, 160, 192, 224, 256]
ACTIVE = ("running", "stopping")

st.title("Compare experiment")
st.markdown(
    "One click trains **your photos with the same budget** (photos, split, epochs, image size, "
    "batch size, learning rate) five ways, one run after another:"
)
st.markdown("\n".join(f"- **({v.key}) {v.label}**: {v.idea}" for v in VARIANTS))
learn("compare")


def curves_figure(rows: list[dict], key: str, title: str, percent: bool) -> go.Figure:
    """One validation curve per variant, on shared axes."""
    fig = go.Figure()
    for row in rows:
        points = [p for p in row["curve"] if p.get(key) is not None]
        fig.add_scatter(
            x=[p["epoch"] for p in points],
            y=[p[key] for p in points],
            mode="lines+markers",
            name=f"({row['key']}) {row['label']}",
            line=dict(color=COLOURS.get(row["key"]), dash="dot" if row["key"] == "a" else None),
        )
    fig.update_xaxes(title="epoch", dtick=1)
    if percent:
        fig.update_yaxes(title="validation accuracy", range=[0, 1.02], tickformat=".0%")
    else:
        fig.update_yaxes(title="validation loss")
    fig.update_layout(
        title=title,
        height=340,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0),
    )
    return fig


def summary_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "way to train": f"({r['key']}) {r['label']}",
                "status": r["state"],
                "validation accuracy": r["val_acc"],
                "best validation accuracy": r["best_val_acc"],
                "time (s)": None if r["seconds"] is None else round(r["seconds"], 1),
                "trainable parameters": r["trainable_params"],
                "epochs": f"{r['epochs_done']}/{r['epochs']}",
                "run": r["run_id"] or "",
            }
            for r in rows
        ]
    )


# --- the budget -----------------------------------------------------------------------------
prepared = data_choice.prepared_or_none()
ready = prepared is not None and prepared.report.trainable
if not ready:
    data_choice.point_to_data_page(
        "Choose a dataset that is ready to train on the Data page first."
    )
else:
    st.markdown(
        f"**{md(state.get('data')['label'])}** ({md_list(prepared.report.classes)}) · model "
        f"`{state.get('model')}`"
    )

settings_now = train_setup.train_settings()
left, middle, right = st.columns(3)
epochs = left.number_input(
    "Epochs (every run)",
    1,
    50,
    value=int(settings_now["epochs"]),
    key="compare_epochs",
    help="The same number of epochs for all five, and no early stopping.",
)
img_size = middle.select_slider(
    "Image size (pixels)",
    sorted({*IMAGE_SIZES, int(settings_now["img_size"])}),
    value=int(settings_now["img_size"]),
    key="compare_img_size",
    help="Smaller is faster: 128 px trains all five in a few minutes on a laptop.",
)
right.caption(
    f"Learning rate {float(settings_now['lr']):g} and batch size {settings_now['batch_size']} "
    "from the Train page. Augmentation is off, so every run sees the same pixels and "
    "(b) computes each photo's features only once."
)


def experiment_base():
    """The Train page's settings with this page's budget: the same for all five runs."""
    base = train_setup.build_config()
    base.epochs, base.img_size, base.augment = int(epochs), int(img_size), "none"
    base.warmup_epochs = min(base.warmup_epochs, base.epochs - 1)
    return base


if ready:  # what the five trainings will cost here, before anything starts
    try:
        planned = time_estimate.experiment_estimate(experiment_base())
    except TLCoreError as exc:
        st.error(md(exc))
    else:
        total = sum(estimate.seconds for _, estimate in planned)
        st.success(
            f"Estimated time on this machine: about {duration_text(total)} for the five "
            "runs, one after the other: "
            + "; ".join(f"({v.key}) {md(v.label.lower())}: {e.text}" for v, e in planned)
            + "."
        )

if st.button("Run the comparison", key="compare_start", type="primary", disabled=not ready):
    try:
        with st.spinner("Preparing five runs…"):
            experiment = Experiment.create(experiment_base()).start()
        st.session_state["compare_pick"] = experiment.id  # show the new one
        st.rerun()
    except TLCoreError as exc:
        st.error(md(exc))

# --- the experiment being watched -----------------------------------------------------------
experiments = list_experiments(state.runs_owner())
if not experiments:
    st.caption("Press the button: the five curves and the summary table appear here.")
    st.stop()
ids = [e.id for e in experiments]
if st.session_state.get("compare_pick") not in ids:
    st.session_state.pop("compare_pick", None)  # deleted meanwhile: fall back to the newest
chosen_id = st.selectbox("Experiment (newest first)", ids, key="compare_pick")
experiment = experiments[ids.index(chosen_id)]
live = experiment.status()["state"] in ACTIVE


@st.fragment(run_every=2.0 if live else None)
def live_experiment() -> None:
    """Re-read the experiment and its runs every 2 s while it trains; the page stays usable."""
    try:
        status, rows = experiment.status(), experiment.summary()
    except TLCoreError as exc:
        st.error(md(exc))
        return
    done, total = status["done"], status["total"]
    st.progress(done / max(total, 1), text=f"{status['state']} · {done} of {total} runs done")
    if status["state"] in ACTIVE and st.button("Stop", key="compare_stop"):
        experiment.stop()
        st.toast("Stopping after the current step…")
    if status["state"] in ("stopped", "interrupted") and st.button(
        "Continue", key="compare_continue"
    ):
        try:
            experiment.start()
            st.rerun(scope="app")
        except TLCoreError as exc:
            st.error(md(exc))
    for row in rows:
        if row["state"] in ("failed", "error") and row["message"]:
            st.error(f"({row['key']}) {md(row['label'])}: {md(row['message'])}")
    acc, loss = st.columns(2)
    acc.plotly_chart(curves_figure(rows, "val_acc", "Validation accuracy", True), key="compare_acc")
    loss.plotly_chart(curves_figure(rows, "val_loss", "Validation loss", False), key="compare_loss")
    st.dataframe(
        summary_table(rows),
        hide_index=True,
        column_config={
            "validation accuracy": st.column_config.NumberColumn(format="percent"),
            "best validation accuracy": st.column_config.NumberColumn(format="percent"),
            "trainable parameters": st.column_config.NumberColumn(format="localized"),
        },
        key="compare_table",
    )
    if live and status["state"] not in ACTIVE:
        st.rerun(scope="app")  # it ended: stop polling and redraw once


live_experiment()
