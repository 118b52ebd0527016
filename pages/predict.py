"""Try the trained model on new photos: one at a time with its reasons, or a whole batch."""

from pathlib import Path

import pandas as pd
import streamlit as st

from appkit import inference, navigation, photo_scores, state, tasks, trust_view, zeroshot
from appkit.demo_view import share_offer
from appkit.text import md
from tlcore.data.images import UPLOAD_TYPES
from tlcore.data.sources import folder_under_data_root, folders_under_data_root
from tlcore.errors import TLCoreError
from tlcore.results.folder_predict import at_threshold, predict_folder, prediction_rows
from tlcore.results.predict import predict_uploads, predictions_csv

navigation.through_app()

st.title("Predict")
st.markdown("Give the model photos it has never seen and check what it says, and why.")

# --- zero-shot: class names instead of a trained model, for someone who has none yet -------
with st.expander(
    "No trained model? Name your classes and try photos (zero-shot)",
    icon=":material/text_fields:",
):
    zeroshot.try_class_names(state.get("model"), state.get("weights"), key="predict_zeroshot")

picked = inference.pick_run("predict")
if picked is None:
    st.stop()
run, checkpoint = picked
share_offer(run)  # "Share as demo": ?demo=<token> opens this run's Predict alone
if (page := tasks.run_view(run).predict_page) is not None:  # boxes, several label columns
    page(run, checkpoint)
    st.stop()
try:
    predictor = inference.predictor(run, checkpoint)
except TLCoreError as exc:
    st.error(md(exc))
    st.stop()
view = tasks.run_view(run)
top_k = st.slider(
    f"Classes to show per {view.task.item}",
    1,
    max(1, len(predictor.classes)),
    min(3, len(predictor.classes)),
)
if view.predict_section is not None:  # another kind of input (texts: a text box, a CSV)
    view.predict_section(run, checkpoint, predictor, top_k)
    st.stop()
# "none of these": the threshold set on validation, movable here to trade misses for alarms
unknown_threshold = trust_view.threshold_slider(predictor, trust_view.trust(run, checkpoint))
if unknown_threshold is None:
    trust_view.offer_fit(run, checkpoint, "predict_fit_trust")


def show_one(name: str, file_name: str, data: bytes) -> None:
    """A photo, its top classes as bars (most likely first), and where the model looked."""
    try:  # run once per photo and model, then kept: reruns do not repeat the work
        image, probabilities, cam, no_cam = inference.explained_photo(
            run, checkpoint, file_name, data
        )
    except TLCoreError as exc:
        st.error(f"{md(name)}: {md(exc)}")
        return
    ranked = sorted(zip(predictor.classes, probabilities, strict=True), key=lambda cp: -cp[1])
    top = ranked[:top_k]
    score = photo_scores.unknown_score(
        run, checkpoint, predictor, file_name, data, unknown_threshold
    )
    if score is None:
        st.markdown(photo_scores.headline(name, *top[0]))
    else:  # the headline says "Not sure", not the forced guess
        photo_scores.not_sure(name, predictor.classes, *top[0], score, unknown_threshold)
    left, middle, right = st.columns([1, 1, 1])
    left.image(image, caption="your photo", width="stretch")
    frame = pd.DataFrame({"class": [c for c, _ in top], "probability": [p for _, p in top]})
    with middle:
        st.bar_chart(
            frame,
            x="class",
            y="probability",
            horizontal=True,
            sort="-probability",
            height=60 + 40 * len(top),
        )
    if cam is None:
        right.warning(f"No heat map: {md(no_cam)}")
    else:
        right.image(
            cam.overlay,
            caption=f"where it looked (red = most), on the part it saw: {cam.view}",
            width="stretch",
        )


single, batch = st.tabs(["Photos", "Batch (zip or folder)"])

with single:
    uploads = st.file_uploader(
        "Upload one or more photos",
        type=list(UPLOAD_TYPES),
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
        show_one(name, name, data)
    if len(files) > 12:
        st.info(f"Showing the first 12 of {len(files)} photos; use the Batch tab for more.")
    if example != "—":
        try:
            show_one(example, Path(known[example]).name, Path(known[example]).read_bytes())
        except OSError as exc:
            st.error(f"{md(example)}: cannot read the photo ({md(exc.strerror)}).")

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
                with st.spinner("Predicting every image in the folder…"):
                    results = predict_folder(predictor, folder_under_data_root(folder), k=top_k)
            except TLCoreError as exc:
                st.error(md(exc))
            else:
                if not results:
                    st.warning(f"No images in {md(folder)}.")
    if results is not None:
        st.session_state["predict_results"] = results
    # "none of these" judged at the slider's threshold, in the table and the CSV alike
    results = at_threshold(st.session_state.get("predict_results") or [], unknown_threshold)
    if results:
        errors = [r for r in results if r.error]
        st.success(f"{len(results) - len(errors)} photos predicted.")
        for r in errors:
            st.error(f"{md(r.path)}: {md(r.error)}")
        table = pd.DataFrame(prediction_rows(results))
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
