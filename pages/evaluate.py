"""How good is the trained model, which classes does it mix up, and what does it look at."""

from pathlib import Path

import pandas as pd
import streamlit as st

from appkit import charts, inference, navigation, tasks, trust_view
from appkit.text import md, plot_text
from tlcore.data.gallery import thumbnail
from tlcore.data.images import load_rgb
from tlcore.errors import ModelError, TLCoreError
from tlcore.results.explain import outline_view

navigation.through_app()

st.title("Evaluate")
st.markdown(
    "How well the model does on the **validation** photos or texts it never trained on, "
    "class by class, and where it goes wrong."
)

picked = inference.pick_run("evaluate")
if picked is None:
    st.stop()
run, checkpoint = picked
if (page := tasks.run_view(run).evaluate_page) is not None:  # boxes, several label columns
    page(run, checkpoint)
    st.stop()

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
    st.error(md(exc))
    st.stop()

st.caption(f"Scored {md(report.source)}.")
items = tasks.run_view(run).items  # "photos" or "texts"
a, b, c = st.columns(3)
a.metric("Accuracy", f"{report.accuracy:.1%}", help=f"Share of validation {items} labelled right.")
b.metric(
    "Average of the per-class scores",
    f"{report.macro_f1:.3f}",
    help="**Macro F1**: each class's F1 score (the balance of precision and recall, 1 is "
    "perfect), averaged over the classes, so a small class counts as much as a big one.",
)
c.metric(
    f"Validation {items}",
    report.n_images,
    help=f"{items.capitalize()} kept aside, never trained on.",
)

st.subheader("Per class")
st.dataframe(
    pd.DataFrame(report.per_class),
    hide_index=True,
    width="stretch",
    column_config={
        "precision": st.column_config.NumberColumn(
            "right when it says so",
            format="%.3f",
            help=f"**Precision**: of the {items} it called this class, the share that really were.",
        ),
        "recall": st.column_config.NumberColumn(
            "found",
            format="%.3f",
            help=f"**Recall**: of the {items} of this class, the share it found.",
        ),
        "f1": st.column_config.NumberColumn(
            "score",
            format="%.3f",
            help="**F1**: the balance of the two (their harmonic mean); 1 is perfect.",
        ),
        "support": st.column_config.NumberColumn(
            f"validation {items}", help=f"**Support**: validation {items} of this class."
        ),
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
    st.markdown("**Most confused:** " + "; ".join(md(p["text"]) for p in report.confused_pairs[:5]))
else:
    st.success("No validation photo was confused with another class.")
view = tasks.run_view(run)
if view.doctor:  # the data doctor finds wrong labels among the mistakes
    st.page_link("pages/doctor.py", icon=":material/stethoscope:",
                 label="Some mistakes may be wrong labels: let the Doctor check the data")  # fmt: skip

if view.evaluate_sections is not None:  # another kind of item (texts: the hardest sentences)
    view.evaluate_sections(run, checkpoint, report, inference.predictor(run, checkpoint))
    st.stop()

# --- the photos behind a cell, and whether the percentages can be believed ------------------
trust_view.confusion_cell_section(run, checkpoint, report)
trust_view.calibration_section(run, checkpoint)

st.subheader("Hardest photos")
st.caption(
    "The photos the model got most wrong: wrong and sure of it first (the highest *loss*, "
    "−log of the probability it gave the true class). Check them for wrong labels too; a "
    "mislabelled photo often shows up here."
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
            f"{verdict} true **{md(mistake.true)}**, guessed **{md(mistake.predicted)}** "
            f"({mistake.confidence:.0%}) · gave the true class {mistake.true_probability:.0%}"
        )
        if image is not None:
            st.image(image, width="stretch")
        st.markdown(caption)

st.subheader("Where the model looks (Grad-CAM)")
st.caption(
    "Red marks the parts of the photo that pushed the model towards its guess. "
    "A model that looks at the background has learned a shortcut. The model sees a square "
    "taken from the middle of each photo (outlined on the left); the heat map covers "
    "exactly that square."
)
choices = {f"{m.true} → {m.predicted} · {m.path.rsplit('/', 1)[-1]}": m for m in report.worst}
label = st.selectbox("Photo", list(choices), key="cam_photo")
if label:
    chosen = choices[label]
    try:  # kept per photo and model: reruns of this page do not run Grad-CAM again
        photo = Path(chosen.path)
        _, _, cam, no_cam = inference.explained_photo(
            run, checkpoint, photo.name, photo.read_bytes()
        )
        if cam is None:
            raise ModelError(no_cam)
    except OSError as exc:
        st.error(f"Cannot read {md(chosen.path)}: {md(exc.strerror)}.")
    except TLCoreError as exc:
        st.error(md(exc))
    else:
        left, right = st.columns(2)
        left.image(
            outline_view(load_rgb(chosen.path), cam.box),
            caption=f"the whole photo (true class: {md(chosen.true)}), the part the model saw outlined",
        )
        right.image(
            cam.overlay,
            caption=f"what the model saw ({cam.view}): it guessed {md(cam.label)} "
            f"({cam.probability:.0%})",
        )
        right.caption(
            "Red: where it looked most; blue: least.",
            help=f"Grad-CAM on layer `{cam.layer}`, the network's last map of features.",
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
        st.error(md(exc))
    else:
        frame = pd.DataFrame(rows)
        frame["file"] = frame["path"].str.rsplit("/", n=1).str[-1].map(plot_text)
        frame["label"] = frame["label"].map(plot_text)  # legend and hover read Plotly's HTML
        st.plotly_chart(charts.embedding_map(frame), key="embedding_chart")
