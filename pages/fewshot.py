"""Few-shot: how far a handful of photos per class goes, with no training at all."""

import streamlit as st

from appkit import (
    charts,
    data_choice,
    learn,
    navigation,
    photo_scores,
    state,
    tasks,
    train_setup,
    zeroshot,
)
from appkit.progress import progress_bar
from appkit.text import md, md_list
from tlcore.data.images import UPLOAD_TYPES
from tlcore.errors import TLCoreError
from tlcore.lab.fewshot import DEFAULT_SHOTS, classify_images, prototypes_for, shots_curve
from tlcore.lab.ladder import build_ladder, trained_rung
from tlcore.lab.zeroshot import names_for, readable_name
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


embedder = zeroshot.embedder  # one read-only copy shared with zero-shot and every session


# --- the data -------------------------------------------------------------------------------
data = state.get("data")
prepared = data_choice.prepared_or_stop(
    "Choose a dataset on the Data page first (the sample works well)."
)
manifest = prepared.manifest
view = tasks.view(data_choice.task_of_prepared(prepared))
if view.fewshot_section is not None:  # another ladder for this task (texts: a text encoder's)
    view.fewshot_section(prepared)
    st.stop()
counts = manifest.counts()
st.markdown(
    f"**{md(data['label'])}** · {len(manifest.classes)} classes · "
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
# the size training and the doctor use by default: the photos embedded once serve all three
trained_size = train_setup.train_settings().get("img_size")
size = right.selectbox(
    "Image size", SIZE_CHOICES, key="fewshot_size",
    index=SIZE_CHOICES.index(trained_size) if trained_size in SIZE_CHOICES[1:] else 0,
    help="Smaller is faster; the model's own size is usually the most accurate.",
)  # fmt: skip
img_size = None if size == SIZE_CHOICES[0] else int(size)
try:
    model = embedder(state.get("model"), state.get("weights"), img_size)
except TLCoreError as exc:
    st.error(md(exc))
    st.stop()

# --- rung 0: no photos at all ----------------------------------------------------------------
st.subheader("What can the model already tell apart?")
st.markdown(
    "Before any training, and without a single example photo: the pretrained model says what "
    "each validation photo looks like among ImageNet's 1,000 kinds of things, a small "
    "sentence model (all-MiniLM-L6-v2, bundled) links each of your **class names** to the "
    "ImageNet things closest in meaning, and the photo gets the name whose things it looks "
    "most like. This is **zero-shot** transfer: the words are all it gets."
)
default_names = ", ".join(readable_name(c) or c for c in manifest.classes)
names_text = st.text_input(
    "Class names, one per class folder, in this order: " + md_list(manifest.classes),
    default_names, key="zeroshot_names", max_chars=4000,
    help="Words matter: a more telling name (e.g. 'honey bee' for a folder 'b1') can help.",
)  # fmt: skip
if st.button("Measure zero-shot accuracy", key="zeroshot_measure"):
    try:
        with st.spinner("Naming every validation photo from the class names…"):
            zeroshot.accuracy(manifest, names_for(manifest, names_text), model)
    except TLCoreError as exc:
        st.error(md(exc))
zero_slot = st.container()  # filled at the end: the ladder's button measures zero-shot too
st.caption(zeroshot.honest_note())

# --- the ladder: 0, 1, 2, 5, 10 photos, all photos, a trained model -------------------------
st.subheader("The transfer-learning ladder")
settings_key = (manifest.fingerprint(), tuple(sorted(shots)), repeats, state.get("model"),
                state.get("weights"), img_size)  # fmt: skip
if st.button("Measure accuracy from 0 to 10 photos per class", key="fewshot_measure",
             type="primary", disabled=not shots):  # fmt: skip
    try:
        # embedding every photo once (cached for next time), then drawing the shots
        with progress_bar() as bar:
            curve = shots_curve(manifest, sorted(shots), repeats, seed=int(state.get("seed")),
                                embedder=model, progress=bar)  # fmt: skip
        st.session_state["fewshot_curve"] = (settings_key, curve)
    except TLCoreError as exc:
        st.error(md(exc))
    else:
        try:
            with st.spinner("Zero-shot: naming the photos from the class names…"):
                zeroshot.accuracy(manifest, names_for(manifest, names_text), model)
        except TLCoreError as exc:
            st.warning(f"No zero-shot rung: {md(exc)}")
stored = st.session_state.get("fewshot_curve")
if stored is not None and stored[0] == settings_key:
    curve = stored[1]
    zero = zeroshot.stored_result(manifest, model)
    trained = trained_rung(manifest, state.runs_owner())
    ladder = build_ladder(curve, zero, trained).to_dict()
    st.plotly_chart(charts.transfer_ladder(ladder), key="fewshot_chart")
    rows = [
        {"photos per class": p.shots, "accuracy (mean)": p.mean, "spread (std)": p.std,
         "worst draw": p.low, "best draw": p.high}
        for p in curve.points
    ]  # fmt: skip
    st.dataframe(rows, hide_index=True, key="fewshot_table")
    for k, why in curve.skipped.items():
        st.info(f"{k} photos per class not measured: {md(why)}.")
    if trained is None:
        st.info(
            "The last rung, a model trained on these photos, appears once a training run on "
            "exactly this dataset has finished (Train page)."
        )
    st.caption(
        f"All rungs are measured on the same {curve.n_val} validation photos. Zero-shot uses "
        "only the class names; 1 to 10 photos per class are averaged over random draws (the "
        "bars show how much the draws vary); 'all' uses every training photo as examples; the "
        "trained model is the best finished run on this dataset."
    )
elif stored is None:
    st.caption("Press the button to see how accuracy grows from no photos to a trained model.")
learn.learn("ladder")

zero = zeroshot.stored_result(manifest, model)
if zero is not None:
    with zero_slot:
        left, right = st.columns(2)
        left.metric("Zero-shot accuracy", f"{zero.accuracy:.1%}",
                    help=f"On the {zero.n_images} validation photos; no photo of the classes.")  # fmt: skip
        right.metric("Chance (guessing)", f"{zero.chance:.1%}")
        per_class = ", ".join(f"{md(c)} {a:.0%}" for c, a in zero.per_class.items())
        stands = "; ".join(
            f"{md(name)} → " + ", ".join(f"{md(n)} {w:.0%}" for n, w in near)
            for name, near in zero.meanings.items()
        )
        st.caption(f"Per class: {per_class}. What each name stands for among ImageNet's "
                   f"classes: {stands}.")  # fmt: skip

# --- classify new photos --------------------------------------------------------------------
st.subheader("Classify photos now")
st.markdown("Prototypes are built from **every training photo** of the dataset.")
uploads = st.file_uploader(
    "Photos to classify",
    type=list(UPLOAD_TYPES),
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
        st.error(f"{md(upload.name)}: {md(exc)}")
if example != "—":
    try:
        photos.append((example, read_for_prediction(known[example])))
    except TLCoreError as exc:
        st.error(md(exc))
if photos:
    try:
        with progress_bar() as bar:  # the training photos' embeddings, once
            classifier = prototypes_for(manifest, model, progress=bar)
        ranked = classify_images(classifier, model, [image for _, image in photos])
    except TLCoreError as exc:
        st.error(md(exc))
        st.stop()
    photo_scores.show_ranked(photos, ranked, what="similarity score")
    st.caption(
        "Scores compare similarities between classes; they are not calibrated probabilities."
    )
