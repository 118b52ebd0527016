"""What the network sees: first-layer filters, feature maps by depth, the ImageNet head's guess."""

from pathlib import Path

import pandas as pd
import streamlit as st

from appkit import data_choice, navigation, state
from appkit.learn import learn
from appkit.text import md
from tlcore import settings
from tlcore.data.images import UPLOAD_TYPES, images_in
from tlcore.errors import TLCoreError
from tlcore.models.catalog import default_weights
from tlcore.models.network_view import (
    feature_depths,
    feature_maps,
    filter_grid,
    imagenet_top5,
    load_imagenet_model,
)
from tlcore.results.predict import read_for_prediction, read_upload

navigation.through_app()
view = data_choice.data_view()
if view.network_note:  # filters and feature maps are pictures of pictures
    st.title("What the network sees")
    st.info(view.network_note)
    st.stop()

MAX_CHOICES = 60

st.title("What the network sees")
st.markdown(
    "The pretrained model **before any fine-tuning**: the filters of its first layer, what its "
    "layers respond to in one of your photos, and what its original ImageNet head calls it."
)
learn("network")


@st.cache_resource(show_spinner="Loading the pretrained model…", max_entries=3)
def imagenet_model(name: str, weights: str):
    """Read-only, never trained: one copy serves every session."""
    return load_imagenet_model(name, weights)


@st.cache_data(show_spinner=False, max_entries=6)
def filters_picture(name: str, weights: str):
    return filter_grid(imagenet_model(name, weights))


def photo_choices() -> dict[str, str]:
    """Label -> path: the chosen dataset's validation photos, else the bundled sample."""
    try:
        prepared = data_choice.prepared()
    except TLCoreError:
        prepared = None
    if prepared is not None and prepared.manifest is not None:
        manifest = prepared.manifest
        items = manifest.items_for("val") or manifest.items_for("train")
        return {
            f"{manifest.classes[it.label]} · {Path(it.path).name}": str(it.path)
            for it in items[:MAX_CHOICES]
        }
    sample = settings.sample_data_dir()
    return {
        f"{p.parent.name} · {p.name}": str(p) for p in images_in([sample / "val"])[:MAX_CHOICES]
    }


model_name = state.get("model")
weights = state.get("weights")
if weights == "scratch":
    st.info(
        "You chose random weights on the Model page; this page shows the pretrained ones, "
        "which is what transfer learning reuses."
    )
    weights = default_weights(model_name)
try:
    model = imagenet_model(model_name, weights)
except TLCoreError as exc:
    st.error(md(exc))
    st.stop()
st.caption(f"Model `{model_name}` with {md(weights)} weights and its original 1,000-class head.")

# --- first-layer filters --------------------------------------------------------------------
st.subheader("First-layer filters")
compare_random = st.toggle("Show random (untrained) filters next to them", key="net_random")
columns = st.columns(2 if compare_random else 1)
try:
    columns[0].image(
        filters_picture(model_name, weights), caption="pretrained on ImageNet", width=420
    )
    if compare_random:
        columns[1].image(
            filters_picture(model_name, "scratch"), caption="random, before any training", width=420
        )
except TLCoreError as exc:
    st.warning(md(exc))

# --- the photo ------------------------------------------------------------------------------
st.subheader("Feature maps of one photo")
choices = photo_choices()
left, right = st.columns([3, 2])
picked = left.selectbox("A photo from your data", list(choices), key="net_photo")
upload = right.file_uploader("…or upload one", type=list(UPLOAD_TYPES), key="net_upload")
try:
    if upload is not None:
        image, image_name = read_upload(upload.name, upload.getvalue()), upload.name
    elif picked is not None:
        image, image_name = read_for_prediction(choices[picked]), picked
    else:
        st.info("No photo to show: choose data on the Data page or upload one.")
        st.stop()
except TLCoreError as exc:
    st.error(md(exc))
    st.stop()

try:
    depths = feature_depths(model)
except TLCoreError as exc:
    st.warning(md(exc))
    depths = []
if depths:
    depth = st.select_slider(
        "Depth (input → output)",
        options=[d["depth"] for d in depths],
        value=0,
        format_func=lambda d: f"{d + 1}: {depths[d]['stage']}",
        key="net_depth",
    )
    maps = feature_maps(model, image, int(depth))
    shown, grid = st.columns([1, 2])
    shown.image(maps.model_input, caption="what the network gets", width="stretch")
    grid.image(
        maps.grid,
        caption=f"{len(maps.shown)} most active of {maps.channels} maps at {maps.stage}: "
        f"{maps.size[0]}x{maps.size[1]} pixels each, one per {maps.reduction}x"
        f"{maps.reduction} input pixels",
        width="stretch",
    )

# --- the original head ----------------------------------------------------------------------
st.subheader("ImageNet's top 5 for this photo")
top = imagenet_top5(model, image)
st.caption(f"{md(image_name)}: the original head's guesses, before any fine-tuning.")
st.dataframe(
    pd.DataFrame(
        [
            {"rank": t["rank"], "ImageNet class": t["label"], "probability": t["probability"]}
            for t in top
        ]  # fmt: skip
    ),
    hide_index=True,
    column_config={"probability": st.column_config.ProgressColumn(min_value=0, max_value=1)},
    key="net_top5",
)
