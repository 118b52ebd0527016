"""How good is the trained model, which classes does it mix up, and what does it look at."""

import pandas as pd
import plotly.express as px
import streamlit as st

from appkit import charts, inference, navigation
from tlcore.data.gallery import thumbnail
from tlcore.errors import TLCoreError
from tlcore.results.explain import gradcam

navigation.through_app()

st.title("Evaluate")
st.markdown(
    "How well the model does on the **validation** photos it never trained on, "
    "class by class, and where it goes wrong."
)

picked = inference.pick_run("evaluate")
if picked is None:
    st.stop()
run, checkpoint = picked

if inference.is_training(run):
    # A run in training saves a new model every epoch; scoring each one on every visit
    # would keep a shared CPU busy, so a training run is scored when the user asks.
    scored = st.session_state.get("evaluate_scored", {})
    if st.button("Score the model saved so far", key="evaluate_score_now"):
        scored[(run.id, checkpoint)] = inference.checkpoint_stamp(run, checkpoint)
        st.session_state["evaluate_scored"] = scored
    stamp = scored.get((run.id, checkpoint))
    if stamp is None:
        st.info("This run is still training. Press the button to score the model saved so far.")
        st.stop()
else:
    stamp = None
try:
    report = inference.evaluation(run, checkpoint, stamp)
except TLCoreError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"Scored {report.source}.")
a, b, c = st.columns(3)
a.metric("Accuracy", f"{report.accuracy:.1%}", help="Share of validation photos labelled right.")
b.metric(
    "Macro F1",
    f"{report.macro_f1:.3f}",
    help="F1 averaged over classes, so a small class counts as much as a big one.",
)
c.metric("Validation photos", report.n_images)

st.subheader("Per class")
st.dataframe(
    pd.DataFrame(report.per_class),
    hide_index=True,
    width="stretch",
    column_config={
        "precision": st.column_config.NumberColumn(
            format="%.3f", help="Of the photos it called this class, how many really were."
        ),
        "recall": st.column_config.NumberColumn(
            format="%.3f", help="Of the photos of this class, how many it found."
        ),
        "f1": st.column_config.NumberColumn(format="%.3f", help="Balance of the two."),
        "support": st.column_config.NumberColumn(help="Validation photos of this class."),
    },
    key="per_class",
)

st.subheader("Confusion matrix")
view = st.radio(
    "Show", ["counts", "share of each true class"], horizontal=True, key="confusion_view"
)
if view == "counts":
    matrix = report.confusion
else:
    matrix = [[round(v, 2) for v in row] for row in report.confusion_normalized]
st.plotly_chart(
    charts.confusion(report.classes, matrix, "Rows: the true class · columns: the guess"),
    key="confusion_chart",
)
if report.confused_pairs:
    st.markdown("**Most confused:** " + "; ".join(p["text"] for p in report.confused_pairs[:5]))
else:
    st.success("No validation photo was confused with another class.")

st.subheader("Hardest photos")
st.caption(
    "The photos with the highest loss: wrong and sure of it first. Check them for "
    "wrong labels too; a mislabelled photo often shows up here."
)
worst = report.worst[:8]
columns = st.columns(4)
for i, mistake in enumerate(worst):
    with columns[i % 4]:
        image = thumbnail(mistake.path)
        # Streamlit's own icon font: emoji need a colour-emoji font many Linux browsers lack
        verdict = (
            ":green[:material/check_circle:]" if mistake.correct else ":red[:material/cancel:]"
        )
        caption = (
            f"{verdict} true **{mistake.true}**, guessed **{mistake.predicted}** "
            f"({mistake.confidence:.0%}) · loss {mistake.loss:.2f}"
        )
        if image is not None:
            st.image(image, width="stretch")
        st.markdown(caption)

st.subheader("Where the model looks (Grad-CAM)")
st.caption(
    "Red marks the parts of the photo that pushed the model towards its guess. "
    "A model that looks at the background has learned a shortcut."
)
choices = {f"{m.true} → {m.predicted} · {m.path.rsplit('/', 1)[-1]}": m for m in report.worst}
label = st.selectbox("Photo", list(choices), key="cam_photo")
if label:
    chosen = choices[label]
    try:
        cam = gradcam(inference.predictor(run, checkpoint), chosen.path)
    except TLCoreError as exc:
        st.error(str(exc))
    else:
        left, right = st.columns(2)
        left.image(thumbnail(chosen.path, 320), caption=f"true class: {chosen.true}")
        right.image(
            cam.overlay,
            caption=f"guess: {cam.label} ({cam.probability:.0%}), layer {cam.layer}",
        )

st.subheader("Embedding map")
st.caption(
    "Each dot is a validation photo, placed by what the backbone sees in it (PCA to 2-D). "
    "Classes that form separate clouds are easy to tell apart."
)
before = st.toggle("Backbone before training (the original pretrained weights)", key="emb_before")
if st.button("Draw the embedding map", key="draw_embedding"):
    st.session_state["emb_requested"] = True
if st.session_state.get("emb_requested"):
    try:
        rows = inference.embedding(run, checkpoint, before)
    except TLCoreError as exc:
        st.error(str(exc))
    else:
        frame = pd.DataFrame(rows)
        frame["file"] = frame["path"].str.rsplit("/", n=1).str[-1]
        fig = px.scatter(
            frame,
            x="x",
            y="y",
            color="label",
            hover_name="file",
            hover_data={"x": False, "y": False},
        )
        fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10))
        st.plotly_chart(fig, key="embedding_chart")
