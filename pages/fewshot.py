"""Few-shot: how far a handful of photos per class goes, with no training at all."""

import plotly.graph_objects as go
import streamlit as st

from appkit import navigation, pipeline, state
from tlcore.errors import TLCoreError
from tlcore.lab.fewshot import DEFAULT_SHOTS, Embedder, classify_images, prototypes_for, shots_curve
from tlcore.results.predict import read_for_prediction, read_upload

navigation.through_app()

SHOT_CHOICES = [1, 2, 3, 5, 10, 20]
SIZE_CHOICES = ["model's own", 96, 128, 160, 224]

st.title("Few-shot")
st.markdown(
    "Only a handful of photos per class? Each class becomes the **average look** (embedding) of "
    "its photos in a pretrained model; a new photo gets the class it is most similar to. "
    "Nothing is trained, so predictions are ready in seconds."
)


@st.cache_resource(show_spinner="Loading the pretrained model…", max_entries=2)
def embedder(model: str, weights: str, img_size: int | None) -> Embedder:
    """Read-only and never trained, so one copy can serve every session."""
    return Embedder(model, weights, img_size, device="auto")


def curve_chart(curve: dict) -> go.Figure:
    """Mean accuracy with its spread over draws, against every photo and chance."""
    points = curve["points"]
    shots = [p["shots"] for p in points]
    fig = go.Figure()
    fig.add_scatter(
        x=shots,
        y=[p["mean"] for p in points],
        mode="lines+markers",
        name="prototypes from N photos per class",
        error_y={"type": "data", "array": [p["std"] for p in points], "visible": True},
    )
    total = sum(curve["train_per_class"].values())
    fig.add_hline(y=curve["all_train_acc"], line_dash="dash", line_color="#2f9e44",
                  annotation_text=f"all {total} training photos")  # fmt: skip
    fig.add_hline(y=curve["chance"], line_dash="dot", line_color="#868e96",
                  annotation_text="chance")  # fmt: skip
    fig.update_layout(
        title="Validation accuracy vs photos per class",
        xaxis={"title": "photos per class (shots)", "type": "log", "tickvals": shots},
        yaxis={"title": "accuracy", "range": [0, 1.02], "tickformat": ".0%"},
        height=360,
        margin={"l": 10, "r": 40, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


# --- the data -------------------------------------------------------------------------------
data = state.get("data")
prepared = pipeline.prepared_or_none()
if prepared is None or prepared.manifest is None:
    pipeline.point_to_data_page("Choose a dataset on the Data page first (the sample works well).")
    st.stop()
manifest = prepared.manifest
counts = manifest.counts()
st.markdown(
    f"**{data['label']}** · {len(manifest.classes)} classes · "
    f"{sum(counts.get('train', {}).values())} training and "
    f"{sum(counts.get('val', {}).values())} validation photos · model `{state.get('model')}`"
)

left, middle, right = st.columns(3)
shots = left.multiselect(
    "Photos per class to try", SHOT_CHOICES, default=list(DEFAULT_SHOTS), key="fewshot_shots"
)
repeats = middle.slider(
    "Random draws per point", 5, 100, 20, step=5, key="fewshot_repeats",
    help="Which photos you happen to pick matters a lot with 1 or 2 per class: each point is "
    "the average over this many random picks (the bar shows how much they vary).",
)  # fmt: skip
size = right.selectbox(
    "Image size", SIZE_CHOICES, key="fewshot_size",
    help="Smaller is faster; the model's own size is usually the most accurate.",
)  # fmt: skip
img_size = None if size == SIZE_CHOICES[0] else int(size)
try:
    model = embedder(state.get("model"), state.get("weights"), img_size)
except TLCoreError as exc:
    st.error(str(exc))
    st.stop()

# --- accuracy vs shots ----------------------------------------------------------------------
settings_key = (manifest.fingerprint(), tuple(sorted(shots)), repeats, state.get("model"),
                state.get("weights"), img_size)  # fmt: skip
if st.button("Measure accuracy vs photos per class", key="fewshot_measure", type="primary",
             disabled=not shots):  # fmt: skip
    try:
        with st.spinner("Embedding every photo once (cached for next time) and drawing shots…"):
            curve = shots_curve(manifest, sorted(shots), repeats, seed=int(state.get("seed")),
                                embedder=model)  # fmt: skip
        st.session_state["fewshot_curve"] = (settings_key, curve.to_dict())
    except TLCoreError as exc:
        st.error(str(exc))
stored = st.session_state.get("fewshot_curve")
if stored is not None and stored[0] == settings_key:
    curve = stored[1]
    st.plotly_chart(curve_chart(curve), key="fewshot_chart")
    rows = [
        {"photos per class": p["shots"], "accuracy (mean)": p["mean"], "spread (std)": p["std"],
         "worst draw": p["low"], "best draw": p["high"]}
        for p in curve["points"]
    ]  # fmt: skip
    st.dataframe(rows, hide_index=True, key="fewshot_table")
    for k, why in curve["skipped"].items():
        st.info(f"{k} photos per class not measured: {why}.")
    st.caption(
        f"Measured on the {curve['n_val']} validation photos; the dashed line uses every training "
        "photo as examples. Training a classifier (the Train page) usually goes further once you "
        "have a few dozen photos per class."
    )
elif stored is None:
    st.caption("Press the button to see how accuracy grows with the number of examples.")

# --- classify new photos --------------------------------------------------------------------
st.subheader("Classify photos now")
st.markdown("Prototypes are built from **every training photo** of the dataset.")
uploads = st.file_uploader(
    "Photos to classify",
    type=["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"],
    accept_multiple_files=True,
    key="fewshot_uploads",
)
known = {f"{manifest.classes[it.label]} · {it.path.rsplit('/', 1)[-1]}": it.path
         for it in manifest.items_for("val")}  # fmt: skip
example = st.selectbox("…or try a validation photo", ["—", *known], key="fewshot_example")
photos = []
for upload in (uploads or [])[:12]:
    try:
        photos.append((upload.name, read_upload(upload.name, upload.getvalue())))
    except TLCoreError as exc:
        st.error(f"{upload.name}: {exc}")
if example != "—":
    try:
        photos.append((example, read_for_prediction(known[example])))
    except TLCoreError as exc:
        st.error(str(exc))
if photos:
    try:
        with st.spinner("Building the prototypes…"):
            classifier = prototypes_for(manifest, model)
        ranked = classify_images(classifier, model, [image for _, image in photos])
    except TLCoreError as exc:
        st.error(str(exc))
        st.stop()
    for (name, image), scores in zip(photos, ranked, strict=True):
        best, score = scores[0]
        picture, text = st.columns([1, 3])
        picture.image(image, width="stretch")
        text.markdown(f"**{name}** → **{best}** (similarity score {score:.0%})")
        text.dataframe(
            [{"class": c, "score": s} for c, s in scores[:5]],
            hide_index=True,
            column_config={
                "score": st.column_config.ProgressColumn(format="percent", min_value=0.0,
                                                         max_value=1.0)
            },
        )  # fmt: skip
    st.caption(
        "Scores compare similarities between classes; they are not calibrated probabilities."
    )
