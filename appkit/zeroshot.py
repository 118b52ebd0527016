"""Zero-shot in the app: class names instead of photos, on the Few-shot and Predict pages.

The models here are read-only and never trained, so one copy serves every
session (``st.cache_resource``); results are cached per dataset, names and model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from appkit import photo_scores
from appkit.progress import progress_bar
from appkit.text import md
from tlcore.data.images import UPLOAD_TYPES
from tlcore.errors import TLCoreError
from tlcore.lab.fewshot import Embedder
from tlcore.lab.zeroshot import (
    ZeroShotClassifier,
    ZeroShotResult,
    classify_images,
    parse_class_names,
    zero_shot_accuracy,
)
from tlcore.results.predict import read_upload

PHOTO_TYPES = list(UPLOAD_TYPES)
MAX_PHOTOS = 12

# Measured with the bundled Lite0 at 224 px on the samples' validation photos
# (`tlcore zeroshot --data assets/ants-bees --json`, and the same on assets/clothing4).
HONEST_NOTE = (
    "Zero-shot only knows what the pretrained model learned to see (ImageNet's 1,000 kinds of "
    "things) and how close words are in meaning. It does well when your classes are, or are "
    "near, things ImageNet knows (ants vs bees: {ants} on the sample, chance 50%) and poorly "
    "on look-alikes ImageNet never separated (four kinds of clothing: {clothing}, chance 25%). "
    "Clearer names help a little: check what each name stands for. Training on your photos "
    "is what closes the gap."
)
MEASURED = {"ants": "97.5%", "clothing": "42% with the folder names, 48% with clearer ones"}


@st.cache_resource(show_spinner="Loading the pretrained model…", max_entries=2)
def embedder(model: str, weights: str, img_size: int | None) -> Embedder:
    """Read-only and never trained, so one copy can serve every session."""
    return Embedder(model, weights, img_size, device="auto")


@st.cache_resource(show_spinner="Reading the class names…", max_entries=16)
def classifier(names: tuple[str, ...]) -> ZeroShotClassifier:
    return ZeroShotClassifier.from_names(list(names))


def honest_note() -> str:
    return HONEST_NOTE.format(**MEASURED)


def _key(manifest: Any, model: Embedder) -> tuple:
    return (manifest.fingerprint(), model.model_name, model.weights,
            tuple(model.data_config.get("input_size", ())))  # fmt: skip


def accuracy(manifest: Any, names: Sequence[str], model: Embedder) -> ZeroShotResult:
    """Zero-shot accuracy on the validation photos, kept per dataset, names and model."""
    key = (*_key(manifest, model), tuple(names))
    stored = st.session_state.get("zeroshot_result")
    if stored is not None and stored[0] == key:
        return stored[1]
    with progress_bar() as bar:  # embedding the validation photos: k of N, time left
        result = zero_shot_accuracy(manifest, list(names), model, progress=bar)
    st.session_state["zeroshot_result"] = (key, result)
    return result


def stored_result(manifest: Any, model: Embedder) -> ZeroShotResult | None:
    """The last zero-shot measurement on this dataset with this model, whatever the names."""
    stored = st.session_state.get("zeroshot_result")
    if stored is None or stored[0][: len(_key(manifest, model))] != _key(manifest, model):
        return None
    return stored[1]


def try_class_names(model_name: str, weights: str, key: str = "zeroshot_try") -> None:
    """Type class names, add photos, see which name each photo gets: no photos of the classes,
    no training."""
    st.markdown(
        "Type the names of the things you want to tell apart; the pretrained model and a "
        "small sentence model (all-MiniLM-L6-v2, bundled) match each photo to the closest "
        "name. Nothing is trained and nothing is downloaded."
    )
    text = st.text_input("Class names, separated by commas", "ant, bee", key=f"{key}_names",
                         max_chars=2000)  # fmt: skip
    uploads = st.file_uploader("Photos to name", type=PHOTO_TYPES, accept_multiple_files=True,
                               key=f"{key}_uploads")  # fmt: skip
    if not uploads:
        st.caption(honest_note())
        return
    try:
        names = parse_class_names(text)
        model = embedder(model_name, weights, None)
        clf = classifier(tuple(names))
    except TLCoreError as exc:
        st.error(md(exc))
        return
    photos = []
    for upload in uploads[:MAX_PHOTOS]:
        try:
            photos.append((upload.name, read_upload(upload.name, upload.getvalue())))
        except TLCoreError as exc:
            st.error(f"{md(upload.name)}: {md(exc)}")
    if len(uploads) > MAX_PHOTOS:
        st.info(f"Showing the first {MAX_PHOTOS} photos.")
    if photos:
        try:
            with st.spinner("Naming the photos…"):
                ranked = classify_images(clf, model, [image for _, image in photos])
        except TLCoreError as exc:
            st.error(md(exc))
            return
        photo_scores.show_ranked(photos, ranked)
        st.caption("Scores rank the class names for each photo; they are not calibrated "
                   "probabilities.")  # fmt: skip
    st.caption(honest_note())
