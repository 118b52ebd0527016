"""Step 1: choose the pictures, see what is wrong with them, and how they will be split."""

import streamlit as st

from appkit import (
    box_labelling,
    box_sections,
    charts,
    column_sections,
    data_choice,
    navigation,
    state,
    tasks,
    text_sources,
)
from appkit.learn import learn
from appkit.text import md, md_list
from tlcore import settings
from tlcore.data import gallery, sources
from tlcore.data.images import IMAGE_EXTENSIONS
from tlcore.errors import TLCoreError

navigation.through_app()


@st.cache_data(max_entries=512, show_spinner=False)
def thumbnail(path: str, mtime: float):
    """Thumbnails are cached by file and modification time: reruns stay quick."""
    return gallery.thumbnail(path, 160)


def short_name(name: str, limit: int = 16) -> str:
    """A file name cut to one line under a thumbnail, keeping its end (the full name on hover)."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 7]}…{name[-6:]}"


st.title("1 · Your data")
st.markdown(
    "Give the app your labelled photos: **one folder per label** (for example `cats/` and "
    "`dogs/`), zipped, or upload the images label by label. Labelled sentences come as a CSV "
    "(the **Texts** tab)."
)
learn("data")

# --- where the pictures come from -----------------------------------------------------------
tab_names = ["Sample", "Upload a zip", "Upload images per label"]
if settings.data_root() is not None:
    tab_names.append("Folder on this server")
tab_names.append("Texts: upload a CSV")  # labelled sentences (appkit.text_sources)
earlier = data_choice.recent()
if earlier:
    tab_names.append(f"Used before ({len(earlier)})")
tabs = st.tabs(tab_names)

with tabs[0]:
    left, right = st.columns(2)
    with left:
        st.markdown(
            "**Ants vs bees**: 120 photos of two labels, already split into `train/` and "
            "`val/` folders."
        )
        use_ants_bees = st.button("Use the sample", key="use_sample", type="primary")
    with right:
        st.markdown(
            "**Clothing, four look-alikes**: 220 photos of longsleeve, outwear, shirt and "
            "shorts, already split. Harder: the labels look alike."
        )
        use_clothing = st.button("Use the clothing sample", key="use_sample_clothing")
    text_sources.sample_button()
    box_sections.detection_sample()  # photos with boxes (object detection)
    box_labelling.labelling_section()  # boxes drawn in the browser on the user's photos
    column_sections.columns_sample()  # several label columns per photo (multitask)
    column_sections.tags_sample()  # tags per photo (multi-label)
    if use_ants_bees or use_clothing:
        try:
            with st.spinner("Reading every image…"):
                data_choice.choose_sample("clothing4" if use_clothing else "ants-bees")
            st.rerun()  # the sidebar shows the new choice
        except TLCoreError as exc:
            st.error(md(exc))

with tabs[1]:
    zip_file = st.file_uploader(
        "A .zip with one folder per label, or with train/ and val/ folders holding them",
        type=["zip"],
        key="zip_upload",
    )
    # the limit is set on purpose in .streamlit/config.toml (server.maxUploadSize)
    upload_mb = int(st.get_option("server.maxUploadSize"))
    st.caption(
        f"Uploads up to {upload_mb:,} MB. A bigger set is better read in place: the person "
        "who runs the app can start it with `TLCORE_DATA_ROOT` set to a folder on the server, "
        "and every dataset folder under it appears in a tab here, with nothing uploaded."
    )
    if zip_file is not None and st.button("Use this zip", key="use_zip", type="primary"):
        try:
            saved = sources.save_upload(zip_file.name, zip_file.getvalue(), "zips")
            with st.spinner("Unpacking and reading every image…"):
                label = f"Zip: {zip_file.name}"  # boxes first: a boxes CSV also names photos
                if not (box_sections.choose_if_boxes(saved, label)
                        or column_sections.choose_uploaded_table(saved, label)):  # fmt: skip
                    data_choice.choose_data("zip", saved, label)
            st.rerun()  # the sidebar shows the new choice
        except TLCoreError as exc:
            st.error(md(exc))

with tabs[2]:
    st.markdown("Type a label, drop its images, press **Add**. Repeat for every label.")
    class_name = st.text_input("Label for this batch", key="batch_label", placeholder="cats")
    batch = st.file_uploader(
        "Images of this label",
        type=sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS),
        accept_multiple_files=True,
        key=state.widget_key("batch_images"),
    )
    if "tl_batch_added" in st.session_state:
        st.success(md(st.session_state.pop("tl_batch_added")))
    if st.button("Add these images", key="add_batch", disabled=not batch):
        image_set = st.session_state.get("tl_image_set")
        try:
            if image_set is None:
                image_set = str(sources.new_image_set())
                st.session_state["tl_image_set"] = image_set
            saved, skipped = sources.add_class_images(
                image_set, class_name, [(f.name, f.getvalue()) for f in batch]
            )
            counts = sources.image_set_classes(image_set)
            label = f"Your images: {sum(counts.values())} in {len(counts)} labels"
            with st.spinner("Reading every image…"):
                data_choice.choose_data("images", image_set, label)
            message = f"Added {len(saved)} images as '{class_name.strip()}'."
            if skipped:
                message += " Skipped (not images): " + ", ".join(skipped)
            st.session_state["tl_batch_added"] = message
            state.refresh_widgets("batch_images")  # an empty drop zone for the next label
            st.rerun()
        except TLCoreError as exc:
            st.error(md(exc))
    if st.session_state.get("tl_image_set"):
        counts = sources.image_set_classes(st.session_state["tl_image_set"])
        st.caption("So far: " + ", ".join(f"{md(k)} ({v})" for k, v in counts.items()))

if settings.data_root() is not None:
    with tabs[3]:
        st.markdown(f"A folder inside `{settings.data_root()}` (nothing outside it can be read).")
        folders = sources.folders_under_data_root()
        picked = st.selectbox("Folder", folders, index=None, key="root_folder")
        typed = st.text_input("…or type a path relative to it", key="root_typed")
        if st.button("Use this folder", key="use_folder", disabled=not (picked or typed)):
            try:
                folder = sources.folder_under_data_root(typed or picked)
                with st.spinner("Reading every image…"):
                    label = f"Folder: {typed or picked}"
                    if not (box_sections.choose_if_boxes(folder, label)
                            or column_sections.choose_uploaded_table(folder, label)):  # fmt: skip
                        data_choice.choose_data("folder", folder, label)
                st.rerun()  # the sidebar shows the new choice
            except TLCoreError as exc:
                st.error(md(exc))

with tabs[tab_names.index("Texts: upload a CSV")]:
    text_sources.csv_upload_tab()

if earlier:  # chosen again without uploading again; the newest first
    with tabs[-1]:
        st.caption("Datasets you chose before, still where they were. Choosing one again also "
                   "follows its newest training run.")  # fmt: skip
        for i, earlier_data in enumerate(earlier):
            left, right = st.columns([4, 1])
            left.markdown(f"**{md(earlier_data.get('label', ''))}**")
            left.caption(md(earlier_data["source"]))
            if right.button("Use again", key=f"use_recent_{i}"):
                try:
                    with st.spinner("Reading every item…"):
                        data_choice.choose_again(earlier_data)
                    st.rerun()
                except TLCoreError as exc:
                    st.error(md(exc))

# --- what the app found -------------------------------------------------------------------
data = state.get("data")
if not data:
    st.info("Choose one of the options above to see what the app finds in your pictures.")
    st.stop()

st.divider()
st.subheader(f"Checking: {md(data['label'])}")
try:
    with st.spinner("Reading every image…"):
        prepared = data_choice.prepared()
except TLCoreError as exc:
    st.error(md(exc))
    st.stop()
if prepared is None:  # data of another shape (boxes, label columns): its task's own report
    if (section := data_choice.data_view().data_section) is not None:
        section()
    st.page_link("pages/train.py", label="Next: train →", icon=":material/model_training:")
    st.stop()
report = prepared.report
view = tasks.view(data_choice.task_of_prepared(prepared))  # what differs for photos and texts

if report.trainable:
    st.success(
        f"Ready to train: {len(report.classes)} labels ({md_list(report.classes)}), "
        f"{sum(sum(c.values()) for c in report.counts.values())} usable {view.files}."
    )
else:
    st.error(f"Not ready to train: {md(report.reason)}")

for problem in report.problems:
    show = {"error": st.error, "warning": st.warning}.get(problem.severity, st.info)
    icon = {"error": ":material/error:", "warning": ":material/warning:"}.get(
        problem.severity, ":material/info:"
    )
    files = [view.where(f) for f in problem.files[:8]]  # texts: "reviews.csv, line 336"
    more = f" … and {len(problem.files) - len(files)} more" if len(problem.files) > 8 else ""
    listing = ("  \n" + md_list(files) + more) if files else ""
    show(f"**{problem.severity.upper()}:** {md(problem.message)}{listing}", icon=icon)

# --- how the pictures will be split -------------------------------------------------------
items = view.items  # "photos" or "texts"
st.subheader(f"Training and validation {items}")
st.markdown(
    f"The model learns from the *training* {items}; the *validation* {items} are kept "
    f"aside to measure honestly how well it does on {items} it never saw."
)
manifest = prepared.manifest
given_split = manifest is not None and manifest.split_source == "folders"
if given_split:
    st.markdown("Your data already has a `val/` folder, so it is used as the validation set.")
else:
    left, right = st.columns(2)
    fraction = left.slider(
        f"Share of {items} kept for validation",
        0.05,
        0.5,
        value=float(state.get("val_fraction")),
        step=0.05,
        key=state.widget_key("val_fraction"),
        help=f"20% is a good default. With very few {items}, keep at least a few per label.",
    )
    seed = right.number_input(
        "Shuffle seed",
        0,
        10_000,
        value=int(state.get("seed")),
        key=state.widget_key("seed"),
        help="The same seed always gives the same split, so runs are comparable.",
    )
    if fraction != state.get("val_fraction") or seed != state.get("seed"):
        state.update(val_fraction=float(fraction), seed=int(seed))
        st.rerun()

split_counts = report.split_counts or report.counts
st.plotly_chart(charts.class_counts(split_counts, items), key="class_counts")
if report.split_counts:  # how many photos of each label the model learns from and is tested on
    st.dataframe(
        [
            {
                "label": name,
                f"training {items}": report.split_counts.get("train", {}).get(name, 0),
                f"validation {items}": report.split_counts.get("val", {}).get(name, 0),
            }
            for name in report.classes
        ],
        hide_index=True,
        key="split_table",
    )

# --- a look at the pictures ---------------------------------------------------------------
if manifest is not None and view.examples is not None:
    view.examples(prepared)
elif manifest is not None:
    st.subheader("Examples per label")
    st.caption("Check that each row really shows its label: mislabelled photos teach mistakes.")
    for name, paths in gallery.class_samples(manifest, per_class=8).items():
        st.markdown(f"**{md(name)}**")
        columns = st.columns(8)
        for column, path in zip(columns, paths, strict=False):
            thumb = thumbnail(str(path), path.stat().st_mtime)
            if thumb is not None:
                column.image(thumb, width="stretch")
                column.caption(md(short_name(path.name)), help=md(path.name), wrap=False)

if report.trainable:
    if manifest is not None and view.doctor:  # wrong labels and copies, found from embeddings
        st.page_link("pages/doctor.py", icon=":material/stethoscope:",
                     label="Doctor: find wrong labels, near-duplicates and odd photos")  # fmt: skip
    st.page_link("pages/model.py", label="Next: choose a model →", icon=":material/psychology:")
