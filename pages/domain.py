"""Domain adaptation: train on your labelled photos, predict well on photos from elsewhere."""

import hashlib

import pandas as pd
import streamlit as st

from appkit import data_choice, navigation, state, train_setup
from appkit.text import md, md_list
from tlcore import settings
from tlcore.data import sources
from tlcore.data.prepare import unpack_upload
from tlcore.errors import TLCoreError
from tlcore.lab.adaptation_runs import comparison_rows, pair_summary, start_pair, trains_backbone
from tlcore.lab.domain_shift import write_shifted
from tlcore.runs.run import ACTIVE_STATES, list_runs

navigation.through_app()

TARGET_KEY = "tl_target_folder"

st.title("Domain adaptation")
st.markdown(
    "Photos from a **new camera, site or hospital** often look different from the ones a model "
    "learned on, and accuracy drops. Give the app unlabelled photos of that new place (the "
    "*target domain*): **DANN** trains the model so its features cannot tell the two places "
    "apart while still telling your classes apart."
)

# --- source data ----------------------------------------------------------------------------
data = state.get("data")
if not (view := data_choice.data_view()).domain:  # a text said "yelp.csv:140: file not found"
    st.info(
        f"Domain adaptation works on photos with one label each; the chosen dataset holds "
        f"{view.items} ({view.task.says})."
    )
    st.stop()
prepared = data_choice.prepared_or_stop(
    "Choose your labelled dataset (the source domain) on the Data page first."
)
manifest = prepared.manifest
st.markdown(f"**Source (labelled):** {md(data['label'])} · {md_list(manifest.classes)}")

# --- target photos --------------------------------------------------------------------------
st.subheader("Target-domain photos")
st.markdown(
    "Unlabelled photos are enough. If some sit in folders named like your classes "
    f"({', '.join(f'`{c}/`' for c in manifest.classes)}), they are used **only to score** the "
    "model on the new domain, never to train it."
)
upload_tab, demo_tab, *server_tab = st.tabs(
    ["Upload a zip", "Demo: a shifted copy", *(["Folder on this server"] if settings.data_root() else [])]
)  # fmt: skip
with upload_tab:
    archive = st.file_uploader("A .zip of target photos", type=["zip"], key="domain_zip")
    if archive is not None and st.button("Use these photos", key="domain_use_zip"):
        try:
            saved = sources.save_upload(archive.name, archive.getvalue(), "target-zips")
            st.session_state[TARGET_KEY] = str(unpack_upload(saved))
        except TLCoreError as exc:
            st.error(md(exc))
with demo_tab:
    st.markdown(
        "No second domain at hand? Make one: your **validation** photos with colours turned "
        "around the colour wheel, blurred and with flat contrast, as if shot by a very different "
        "camera. The model never trains on them, and their labels measure the drop."
    )
    if st.button("Make the shifted copy", key="domain_make_demo"):
        samples = [(it.path, manifest.classes[it.label]) for it in manifest.items_for("val")]
        digest = hashlib.sha256(manifest.fingerprint().encode()).hexdigest()[:12]
        dest = settings.uploads_dir() / "domain-shift" / digest
        try:
            if not dest.is_dir():
                with st.spinner("Shifting the validation photos…"):
                    write_shifted(samples, dest, split="val")
            st.session_state[TARGET_KEY] = str(dest)
        except TLCoreError as exc:
            st.error(md(exc))
if server_tab:
    with server_tab[0]:
        folder = st.selectbox("Folder", sources.folders_under_data_root(), key="domain_folder")
        if folder and st.button("Use this folder", key="domain_use_folder"):
            try:
                st.session_state[TARGET_KEY] = str(sources.folder_under_data_root(folder))
            except TLCoreError as exc:
                st.error(md(exc))

target = st.session_state.get(TARGET_KEY)
if target:
    st.success(f"Target photos: `{target}`")

# --- launch ---------------------------------------------------------------------------------
st.subheader("Compare: with and without adaptation")
settings_now = train_setup.train_settings()
left, right = st.columns(2)
epochs = left.number_input("Epochs", 1, 100, value=max(3, int(settings_now["epochs"])),
                           key="domain_epochs")  # fmt: skip
dann_weight = right.select_slider(
    "DANN weight", [0.1, 0.3, 1.0, 3.0], value=1.0, key="domain_weight",
    help="How strongly the backbone is pushed to hide which domain a photo comes from. "
    "Too strong and it forgets the classes; 1.0 is the usual start.",
)  # fmt: skip
freeze = state.get("freeze")
if not trains_backbone(freeze):
    st.caption(
        "Your layer choice trains only the classifier; adaptation must change the features, so "
        "both runs also train the **last backbone group** (the baseline too, to stay fair)."
    )
st.caption(
    "Two runs start with the same settings: a **baseline** (domain adaptation off) and **DANN**. "
    "Both are scored on the labelled target photos after every epoch; the table shows the last "
    "epoch. The baseline's target accuracy is the *without adaptation* figure."
)
if st.button("Start baseline and DANN runs", key="domain_start", type="primary",
             disabled=not target):  # fmt: skip
    try:
        config = train_setup.build_config()
        config.epochs = int(epochs)
        with st.spinner("Preparing both runs…"):
            baseline, dann = start_pair(config, target, float(dann_weight))
        st.session_state["domain_started"] = (baseline.id, dann.id)
        st.rerun()
    except TLCoreError as exc:
        st.error(md(exc))


runs = list_runs(state.runs_owner())
rows = comparison_rows(runs)
busy = any(r["state"] in ACTIVE_STATES for r in rows)


@st.fragment(run_every=2.0 if busy else None)
def comparison() -> None:
    """Re-read both runs while they train; the page stays usable."""
    current = comparison_rows(list_runs(state.runs_owner()))
    if not current:
        st.info("No adaptation runs yet: choose target photos, then start the two runs.")
        return
    summary = pair_summary(current)
    if summary is not None:
        base, dann = summary["baseline"], summary["dann"]
        a, b, c = st.columns(3)
        a.metric("Target accuracy without adaptation", f"{base['target accuracy']:.1%}")
        b.metric("Target accuracy with DANN", f"{dann['target accuracy']:.1%}",
                 delta=f"{(dann['target accuracy'] - base['target accuracy']) * 100:+.1f} points")  # fmt: skip
        c.metric("Source val accuracy (DANN / baseline)",
                 f"{dann['source val accuracy']:.1%} / {base['source val accuracy']:.1%}")  # fmt: skip
        labelled = dann["labelled target photos"] or 0
        if labelled < 100:
            st.caption(
                f"Scored on {labelled} labelled target photos: one photo is "
                f"{1 / max(1, labelled):.1%}, so small differences can be chance."
            )
    table = pd.DataFrame(current).drop(columns=["target folder"])
    st.dataframe(
        table, hide_index=True, width="stretch", key="domain_table",
        column_config={
            name: st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)
            for name in ("source val accuracy", "target accuracy", "domain classifier accuracy")
        },
    )  # fmt: skip
    st.caption(
        "Domain classifier accuracy near 50% means the features no longer reveal the domain. "
        "Target labels never choose the model: the saved best epoch follows source validation."
    )
    if busy and not any(r["state"] in ACTIVE_STATES for r in current):
        st.rerun(scope="app")


comparison()
