"""Step 2: pick a network that already learned to see from a million photos."""

import pandas as pd
import streamlit as st

from appkit import data_choice, navigation, state
from appkit.learn import learn
from appkit.text import md
from tlcore.data import sources
from tlcore.errors import TLCoreError
from tlcore.models.catalog import availability, catalog_entry, catalog_rows
from tlcore.models.factory import build_model
from tlcore.models.search import has_pretrained_weights, search_model_names

navigation.through_app()
view = data_choice.data_view()
if view.model_page is not None:  # another kind of model for this task (texts: text encoders)
    view.model_page()
    st.stop()

BADGES = {
    "bundled": "bundled · offline",
    "cached": "cached · offline",
    "needs internet": "needs internet",
}
BADGE_COLOURS = {"bundled": "#2b8a3e", "cached": "#1864ab", "needs internet": "#d9480f"}


@st.cache_data(ttl=60, show_spinner=False)
def catalog_table() -> pd.DataFrame:
    """Availability looks at the disk only; a minute of caching keeps reruns instant."""
    rows = catalog_rows()
    return pd.DataFrame(
        {
            "model": [r["name"] for r in rows],
            "family": [r["family"] for r in rows],
            "weights": [BADGES[r["availability"]] for r in rows],
            "parameters (M)": [r["params_m"] for r in rows],
            "ImageNet top-1 (%)": [r["top1"] for r in rows],
            "input size (px)": [r["input_size"] for r in rows],
            "note": [r["note"] for r in rows],
        }
    )


def badge_style(badge: str) -> str:
    colour = next((BADGE_COLOURS[k] for k, text in BADGES.items() if text == badge), None)
    return f"color: {colour}; font-weight: 600" if colour else ""


st.title("2 · A model that already knows how to see")
st.info(
    "**What does *pretrained* mean?** These networks were trained on ImageNet, 1.3 million "
    "photos of 1,000 kinds of things. Along the way they learned to see edges, textures, "
    "shapes and object parts. We keep that knowledge and only teach the last step: your "
    "labels. That is why a few dozen photos per label are enough.",
    icon=":material/lightbulb:",
)
learn("model")

st.subheader("The catalog")
st.caption(
    "Click a column header to sort. *Bundled* weights ship with the app and work offline; "
    "*cached* ones were downloaded before; the others need internet the first time. "
    "Bigger models are more accurate but slower."
)
table = catalog_table()
st.dataframe(
    table.style.map(badge_style, subset=["weights"]).format(
        {"parameters (M)": "{:.1f}", "ImageNet top-1 (%)": "{:.1f}"}, na_rep="—"
    ),
    hide_index=True,
    width="stretch",
    height=36 * (len(table) + 1) + 2,
)

# --- the choice ---------------------------------------------------------------------------
names = list(table["model"])
current = state.get("model")
expert = st.toggle(
    "Expert: any timm model by name",
    value=current not in names,
    key=state.widget_key("expert_model"),
)
if expert:
    query = st.text_input("Search all timm models", key="model_query", placeholder="resnet")
    matches = search_model_names(query) if query else []
    if query and not matches:
        st.warning(f"No timm model name contains '{md(query)}'.")
    options = matches or ([current] if current not in names else [])
    choice = st.selectbox("Model", options, index=0 if options else None, key="model_pick_any")
else:
    choice = st.selectbox(
        "Model",
        names,
        index=names.index(current) if current in names else 0,
        format_func=lambda n: f"{n}  ·  {BADGES[availability(n)]}",
        key="model_pick",
    )

weight_options = {
    "pretrained": "Pretrained on ImageNet (recommended)",
    "scratch": "Random weights: learn from scratch (to see why pretraining matters)",
    "file": "My own checkpoint file (.safetensors or .pth)",
}
stored = state.get("weights")
stored_kind = stored if stored == "scratch" else "pretrained"
if stored not in ("bundled", "hub", "scratch"):
    stored_kind = "file"
weights_kind = st.radio(
    "Start from",
    list(weight_options),
    format_func=weight_options.get,
    index=list(weight_options).index(stored_kind),
    key="weights_kind",
)

if choice and weights_kind == "pretrained":
    where = availability(choice)
    weights = "bundled" if where == "bundled" else "hub"
    if where == "needs internet":
        if has_pretrained_weights(choice):
            st.warning(
                f"`{choice}` weights are not on this computer yet: training will download them "
                "and fails without internet. The bundled models work offline.",
                icon=":material/cloud_download:",
            )
        else:
            st.error(f"timm has no pretrained weights for `{choice}`; pick another or scratch.")
elif weights_kind == "scratch":
    weights = "scratch"
    st.caption("Expect much lower accuracy with few photos: that is the lesson.")
else:
    weights = stored if stored_kind == "file" else None
    upload = st.file_uploader(
        "Checkpoint with the same architecture", type=["safetensors", "pth", "pt"], key="ckpt"
    )
    if upload is not None and st.button("Check and use this checkpoint", key="use_ckpt"):
        try:
            path = sources.save_upload(upload.name, upload.getvalue(), "checkpoints")
            with st.spinner("Loading the checkpoint into the model…"):
                _, report = build_model(choice, data_choice.num_classes(), str(path))
            weights = str(path)
            st.success(" ".join(report.messages) or f"Loaded {report.loaded} tensors.")
        except TLCoreError as exc:
            st.error(md(exc))
    if weights is None:
        st.info("Upload a checkpoint file, then press the button to check it.")
    else:
        st.caption(f"Using `{weights}`")

if choice and weights and (choice, weights) != (current, stored):
    changes = {"model": choice, "weights": weights}
    if choice != current and state.get("freeze").get("preset") == "custom":
        changes["freeze"] = {"preset": "features"}  # per-group choices belong to the old model
    state.update(**changes)
    st.rerun()

entry = catalog_entry(state.get("model"))
if entry is not None:
    st.markdown(
        f"**Chosen:** `{entry.name}` — {entry.params_m:.1f} M parameters, "
        f"{entry.top1:.1f}% ImageNet top-1, {entry.input_size} px input. {entry.note}"
    )
else:
    st.markdown(f"**Chosen:** `{state.get('model')}` (not in the curated catalog).")

st.page_link("pages/layers.py", label="Next: choose what to retrain →", icon=":material/layers:")
