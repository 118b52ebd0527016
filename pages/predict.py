"""Try the trained model on new photos: one at a time with its reasons, or a whole batch."""

import pandas as pd
import streamlit as st

from appkit import inference, navigation
from tlcore.data.images import images_in
from tlcore.data.sources import folder_under_data_root, folders_under_data_root
from tlcore.errors import TLCoreError
from tlcore.results.explain import gradcam
from tlcore.results.predict import (
    predict_uploads,
    predictions_csv,
    read_for_prediction,
    read_upload,
)

navigation.through_app()

st.title("Predict")
st.markdown("Give the model photos it has never seen and check what it says, and why.")

picked = inference.pick_run("predict")
if picked is None:
    st.stop()
run, checkpoint = picked
try:
    predictor = inference.predictor(run, checkpoint)
except TLCoreError as exc:
    st.error(str(exc))
    st.stop()
top_k = st.slider(
    "Classes to show per photo", 1, max(1, len(predictor.classes)), min(3, len(predictor.classes))
)


def show_one(name: str, image) -> None:
    """A photo, its top classes as bars, and the Grad-CAM overlay for the top class."""
    probabilities = predictor.predict([image])
    top = predictor.top_k(probabilities, top_k)[0]
    st.markdown(f"**{name}** → **{top[0][0]}** ({top[0][1]:.1%})")
    left, middle, right = st.columns([1, 1, 1])
    left.image(image, caption="your photo", width="stretch")
    frame = pd.DataFrame({"class": [c for c, _ in top], "probability": [p for _, p in top]})
    with middle:
        st.bar_chart(frame, x="class", y="probability", horizontal=True, height=220)
    try:
        cam = gradcam(predictor, image)
    except TLCoreError as exc:
        right.warning(f"No heat map: {exc}")
    else:
        right.image(cam.overlay, caption="where it looked (red = most)", width="stretch")


single, batch = st.tabs(["Photos", "Batch (zip or folder)"])

with single:
    uploads = st.file_uploader(
        "Upload one or more photos",
        type=["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"],
        accept_multiple_files=True,
        key="predict_uploads",
    )
    with st.expander("Take a photo with the camera"):
        shot = st.camera_input("Camera", key="predict_camera")
    known = {
        f"{label} · {path.rsplit('/', 1)[-1]}": path
        for path, label in inference.validation_images(run)
    }
    example = st.selectbox(
        "…or try a photo from the validation set", ["—", *known], key="predict_example"
    )
    files = [(f.name, f.getvalue()) for f in uploads or []]
    if shot is not None:
        files.append(("camera.jpg", shot.getvalue()))
    for name, data in files[:12]:
        try:
            image = read_upload(name, data)
        except TLCoreError as exc:
            st.error(f"{name}: {exc}")
            continue
        show_one(name, image)
    if len(files) > 12:
        st.info(f"Showing the first 12 of {len(files)} photos; use the Batch tab for more.")
    if example != "—":
        try:
            show_one(example, read_for_prediction(known[example]))
        except TLCoreError as exc:
            st.error(str(exc))

with batch:
    st.markdown("Every image in a zip, or in a folder on the server, goes into one table.")
    results = None
    archive = st.file_uploader("Upload a zip of photos", type=["zip"], key="predict_zip")
    if archive is not None and st.button("Predict the zip", key="predict_zip_go"):
        with st.spinner("Predicting…"):
            results = predict_uploads(predictor, [(archive.name, archive.getvalue())], k=top_k)
    folders = folders_under_data_root()
    if folders:
        folder = st.selectbox("…or a folder on the server", folders, key="predict_folder")
        if st.button("Predict the folder", key="predict_folder_go"):
            try:
                root = folder_under_data_root(folder)
                paths = images_in([root])
                names = [p.relative_to(root).as_posix() for p in paths]
                with st.spinner(f"Predicting {len(paths)} images…"):
                    results = predictor.predict_files(paths, k=top_k, names=names)
            except TLCoreError as exc:
                st.error(str(exc))
            else:
                if not paths:
                    st.warning(f"No images in {folder}.")
    if results is not None:
        st.session_state["predict_results"] = results
    results = st.session_state.get("predict_results")
    if results:
        errors = [r for r in results if r.error]
        st.success(f"{len(results) - len(errors)} photos predicted.")
        for r in errors:
            st.error(f"{r.path}: {r.error}")
        table = pd.DataFrame(
            [
                {
                    "file": r.path,
                    "prediction": r.label,
                    "probability": r.probability,
                    "error": r.error or "",
                }
                for r in results
            ]
        )
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "probability": st.column_config.ProgressColumn(
                    format="percent", min_value=0.0, max_value=1.0
                )
            },
            key="predict_table",
        )
        st.download_button(
            "Download as CSV",
            predictions_csv(results),
            file_name=f"predictions-{run.id}.csv",
            mime="text/csv",
            key="predict_csv",
        )
