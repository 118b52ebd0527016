"""Label photos: start from unlabelled photos and class names; the model says which to label next."""

import streamlit as st

from appkit import data_choice, label_view, navigation, state, zeroshot
from appkit.text import md, md_list
from tlcore import settings
from tlcore.data import sources
from tlcore.data.images import UPLOAD_TYPES
from tlcore.errors import TLCoreError
from tlcore.lab.label_session import NONE, SKIP, LabelSession, check_set
from tlcore.lab.labelling import BATCH_SIZE

navigation.through_app()

SIZE_CHOICES = ["model's own", 96, 128, 160, 224]
COLUMNS = 4
BATCH_CHOICES = [6, BATCH_SIZE, 24]

st.title("Label photos")
st.markdown(
    "Many photos and few labels? Give the **class names**; the model asks for the photos it "
    "is **least sure about**, spread over the collection so a batch is not twenty copies of "
    "one look, and says why it chose each. After every batch a new head is fitted on the "
    "photos' embeddings in seconds and the next suggestions change. Your photos are never "
    "moved: the labels are kept beside them and saved as a dataset version."
)

# --- the photos and the names ---------------------------------------------------------------
samples = {f"The {name} sample's training photos (labels hidden)": path / "train"
           for name, path in settings.sample_datasets().items()}  # fmt: skip
choices = [*samples, "Upload photos"]
if settings.data_root() is not None:
    choices.append("A folder on this server")
where = st.radio("Photos", choices, key="label_where", horizontal=True)
folder = samples.get(where)
if where == "Upload photos":
    files = st.file_uploader("Photos to label", type=list(UPLOAD_TYPES),
                             accept_multiple_files=True, key="label_upload")  # fmt: skip
    if files and st.button("Keep these photos", key="label_keep"):
        try:
            image_set = sources.new_image_set()
            sources.add_class_images(
                image_set, "unlabelled", ((f.name, f.getvalue()) for f in files)
            )
            st.session_state["label_uploaded"] = str(image_set)
        except TLCoreError as exc:
            st.error(md(exc))
    folder = st.session_state.get("label_uploaded")
elif where == "A folder on this server":
    typed = st.text_input(f"A folder inside {md(settings.data_root())}", key="label_folder")
    folder = None
    if typed:
        try:
            folder = sources.folder_under_data_root(typed)
        except TLCoreError as exc:
            st.error(md(exc))
left, middle, right = st.columns([3, 1, 1])
names = left.text_input("Class names, separated by commas", "ant, bee", key="label_names",
                        max_chars=4000)  # fmt: skip
size = right.selectbox("Image size", SIZE_CHOICES, key="label_size",
                       help="Smaller is faster; the model's own size is usually best.")  # fmt: skip
img_size = None if size == SIZE_CHOICES[0] else int(size)
batch_size = middle.selectbox("Photos per batch", BATCH_CHOICES, index=1, key="label_batch",
                              help="A refit after each batch: smaller batches steer sooner.")  # fmt: skip
check_folder = None
if where in samples:
    check_folder = samples[where].parent / "val"
    if not st.checkbox("Measure the model on the sample's validation photos (a labelled check "
                       "set)", value=True, key="label_check"):  # fmt: skip
        check_folder = None
if st.button("Start labelling", type="primary", key="label_start", disabled=folder is None):
    try:
        session = LabelSession.start(folder, names, state.get("model"), state.get("weights"),
                                     img_size)  # fmt: skip
        embedder = zeroshot.embedder(state.get("model"), state.get("weights"), img_size)
        check = None
        if check_folder is not None and check_folder.is_dir():
            with st.spinner("Reading the check set…"):
                check = check_set(check_folder, session.classes, embedder)
        label_view.start(session, embedder, int(batch_size), check)
    except TLCoreError as exc:
        st.error(md(exc))

page = label_view.current()
if page is None:
    st.stop()
session = LabelSession(page["dir"])
if page["unreadable"]:
    with st.expander(f"{len(page['unreadable'])} photos could not be read and are left out"):
        for why in list(page["unreadable"].values())[:50]:
            st.caption(md(why))

# --- the batch --------------------------------------------------------------------------------
answers = session.answers()
st.subheader(f"Label these photos · {len(answers.labels)} labelled of {len(page['paths'])}")
st.caption("One click per photo. **Skip** leaves it for later; **none of these** says it is "
           "none of the classes (it is never asked again). " + md_list(session.classes, " · "))  # fmt: skip
todo = label_view.unanswered(session)
undo_col, refit_col = st.columns(2)
if undo_col.button("Undo the last answer", key="label_undo", disabled=not answers.standing):
    session.undo()
    st.rerun()
if not page["batch"]:
    st.success("Nothing left to ask: every photo is labelled, skipped or a look-alike of one.")
elif not todo:
    label_view.refit(session)  # the batch is done: refit and ask for the next one
    st.rerun()
columns = st.columns(COLUMNS)
for i, item in enumerate(todo):
    with columns[i % COLUMNS]:
        st.image(item["path"], caption=md(label_view.photo_caption(item["path"])),
                 width="stretch")  # fmt: skip
        st.caption(md(item["reason"]))
        for j, name in enumerate(session.classes):
            if st.button(md(name), key=f"label_{i}_{j}_{item['path']}", width="stretch"):
                session.answer(item["path"], name)
                st.rerun()
        skip, none = st.columns(2)
        if skip.button("skip", key=f"label_skip_{i}_{item['path']}"):
            session.answer(item["path"], SKIP)
            st.rerun()
        if none.button("none of these", key=f"label_none_{i}_{item['path']}"):
            session.answer(item["path"], NONE)
            st.rerun()

# --- progress ---------------------------------------------------------------------------------
st.subheader("How good is the model so far?")
model = page.get("model") or {}
progress = session.progress()
if model.get("cv_accuracy") is not None:
    st.markdown(f"With **{model['labels']}** labels the model is right on about "
                f"**{model['cv_accuracy']:.0%}** of photos it did not learn from (cross-validation "
                "on your labels).")  # fmt: skip
if progress and progress[-1].get("check_accuracy") is not None:
    st.markdown(f"On the check set it is right on **{progress[-1]['check_accuracy']:.0%}** of "
                "the photos.")  # fmt: skip
if model.get("cv_accuracy") is None:
    st.markdown("Label at least two photos of each of two classes to see an estimate.")
replay = st.session_state.get("label_replay")
st.plotly_chart(label_view.curve(progress, replay), key="label_curve")
st.caption("Does choosing the photos matter? Replay labelling on a labelled sample with its "
           "labels hidden: the photos the model asks for against photos picked at random.")  # fmt: skip
if st.button("Replay on the sample: chosen vs random", key="label_replay_button"):
    from tlcore.lab.label_simulation import simulate

    try:
        with st.spinner("Replaying labelling on the sample…"):
            result = simulate(settings.sample_data_dir(), (12, 24, 48), seeds=2,
                              embedder=page["embedder"])  # fmt: skip
        st.session_state["label_replay"] = result.to_dict()
        st.rerun()
    except TLCoreError as exc:
        st.error(md(exc))

# --- the labels out -------------------------------------------------------------------------
st.subheader("Use the labels")
save, csv, train = st.columns(3)
if save.button("Save as a dataset version", key="label_save"):
    try:
        path = session.save_version()
        st.success(f"Saved as {md(path.name)}: {md(path)}")
    except TLCoreError as exc:
        st.error(md(exc))
csv.download_button("Download the labels (CSV)", session.export_csv(), "labels.csv", "text/csv",
                    key="label_csv", disabled=not answers.labels)  # fmt: skip
if train.button("Train on these labels", key="label_train", type="primary"):
    try:
        session.check_trainable()
        destination = session.export_folders(sources.new_image_set())
        data_choice.choose_data("folder", destination, f"Labelled: {len(answers.labels)} photos")
        st.switch_page("pages/data.py")
    except TLCoreError as exc:
        st.error(md(exc))
