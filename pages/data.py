"""Step 1: choose the pictures, see what is wrong with them, and how they will be split."""

import streamlit as st

from appkit import charts, navigation, pipeline, state
from appkit.learn import learn
from tlcore import settings
from tlcore.data import gallery, sources
from tlcore.data.images import IMAGE_EXTENSIONS
from tlcore.errors import TLCoreError

navigation.through_app()


@st.cache_data(max_entries=512, show_spinner=False)
def thumbnail(path: str, mtime: float):
    """Thumbnails are cached by file and modification time: reruns stay quick."""
    return gallery.thumbnail(path, 160)


st.title("1 · Your pictures")
st.markdown(
    "Give the app your labelled photos: **one folder per label** (for example `cats/` and "
    "`dogs/`), zipped, or upload the images label by label."
)
learn("data")

# --- where the pictures come from -----------------------------------------------------------
tab_names = ["Sample", "Upload a zip", "Upload images per label"]
if settings.data_root() is not None:
    tab_names.append("Folder on this server")
tabs = st.tabs(tab_names)

with tabs[0]:
    st.markdown("120 photos of ants and bees, already split into `train/` and `val/` folders.")
    if st.button("Use the sample", key="use_sample", type="primary"):
        try:
            with st.spinner("Reading every image…"):
                pipeline.choose_sample()
            st.rerun()  # the sidebar shows the new choice
        except TLCoreError as exc:
            st.error(str(exc))

with tabs[1]:
    zip_file = st.file_uploader(
        "A .zip with one folder per label, or with train/ and val/ folders holding them",
        type=["zip"],
        key="zip_upload",
    )
    if zip_file is not None and st.button("Use this zip", key="use_zip", type="primary"):
        try:
            saved = sources.save_upload(zip_file.name, zip_file.getvalue(), "zips")
            with st.spinner("Unpacking and reading every image…"):
                pipeline.choose_data("zip", saved, f"Zip: {zip_file.name}")
            st.rerun()  # the sidebar shows the new choice
        except TLCoreError as exc:
            st.error(str(exc))

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
        st.success(st.session_state.pop("tl_batch_added"))
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
                pipeline.choose_data("images", image_set, label)
            message = f"Added {len(saved)} images as '{class_name.strip()}'."
            if skipped:
                message += " Skipped (not images): " + ", ".join(skipped)
            st.session_state["tl_batch_added"] = message
            state.refresh_widgets("batch_images")  # an empty drop zone for the next label
            st.rerun()
        except TLCoreError as exc:
            st.error(str(exc))
    if st.session_state.get("tl_image_set"):
        counts = sources.image_set_classes(st.session_state["tl_image_set"])
        st.caption("So far: " + ", ".join(f"{k} ({v})" for k, v in counts.items()))

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
                    pipeline.choose_data("folder", folder, f"Folder: {typed or picked}")
                st.rerun()  # the sidebar shows the new choice
            except TLCoreError as exc:
                st.error(str(exc))

# --- what the app found -------------------------------------------------------------------
data = state.get("data")
if not data:
    st.info("Choose one of the options above to see what the app finds in your pictures.")
    st.stop()

st.divider()
st.subheader(f"Checking: {data['label']}")
try:
    with st.spinner("Reading every image…"):
        prepared = pipeline.prepared()
except TLCoreError as exc:
    st.error(str(exc))
    st.stop()
report = prepared.report

if report.trainable:
    st.success(
        f"Ready to train: {len(report.classes)} labels ({', '.join(report.classes)}), "
        f"{sum(sum(c.values()) for c in report.counts.values())} usable images."
    )
else:
    st.error(f"Not ready to train: {report.reason}")

for problem in report.problems:
    show = {"error": st.error, "warning": st.warning}.get(problem.severity, st.info)
    icon = {"error": ":material/error:", "warning": ":material/warning:"}.get(
        problem.severity, ":material/info:"
    )
    files = problem.files[:8]
    more = f" … and {len(problem.files) - len(files)} more" if len(problem.files) > 8 else ""
    listing = ("  \n" + ", ".join(f"`{f}`" for f in files) + more) if files else ""
    show(f"**{problem.severity.upper()}:** {problem.message}{listing}", icon=icon)

# --- how the pictures will be split -------------------------------------------------------
st.subheader("Training and validation pictures")
st.markdown(
    "The model learns from the *training* pictures; the *validation* pictures are kept "
    "aside to measure honestly how well it does on pictures it never saw."
)
manifest = prepared.manifest
given_split = manifest is not None and manifest.split_source == "folders"
if given_split:
    st.markdown("Your data already has a `val/` folder, so it is used as the validation set.")
else:
    left, right = st.columns(2)
    fraction = left.slider(
        "Share of pictures kept for validation",
        0.05,
        0.5,
        value=float(state.get("val_fraction")),
        step=0.05,
        key=state.widget_key("val_fraction"),
        help="20% is a good default. With very few pictures, keep at least a few per label.",
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

st.plotly_chart(charts.class_counts(report.counts), key="class_counts")

# --- a look at the pictures ---------------------------------------------------------------
if manifest is not None:
    st.subheader("Examples per label")
    st.caption("Check that each row really shows its label: mislabelled photos teach mistakes.")
    for name, paths in gallery.class_samples(manifest, per_class=8).items():
        st.markdown(f"**{name}**")
        columns = st.columns(8)
        for column, path in zip(columns, paths, strict=False):
            thumb = thumbnail(str(path), path.stat().st_mtime)
            if thumb is not None:
                column.image(thumb, caption=path.name, width="stretch")

if report.trainable:
    st.page_link("pages/model.py", label="Next: choose a model →", icon=":material/psychology:")
