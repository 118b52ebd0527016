"""The Data page's detection sample: photos with boxes (BCCD), the report in words, and a few
photos with their boxes drawn. Training a detector is the CLI's for now
(``tlcore train --data assets/bccd``; ``tlcore.runs.boxes_run``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw

from appkit.data_choice import sample_offer
from tlcore import settings
from tlcore.data.box_report import box_report, training_size
from tlcore.data.boxes import BoxedPhoto, read_boxes
from tlcore.data.markdown import md
from tlcore.errors import TLCoreError

BCCD = settings.PROJECT_ROOT / "assets" / "bccd"
COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0")


def drawn(photo: BoxedPhoto, classes: list[str]) -> Image.Image:
    """The photo with its boxes outlined, one colour per class."""
    with Image.open(photo.path) as im:
        image = im.convert("RGB")
    pen = ImageDraw.Draw(image)
    for box in photo.boxes:
        colour = COLOURS[classes.index(box.label) % len(COLOURS)]
        pen.rectangle((box.xmin, box.ymin, box.xmax, box.ymax), outline=colour, width=3)
    return image


def detection_sample() -> None:
    """The *Try the detection sample* button and, once pressed, what the sample holds."""
    if not sample_offer(
        "**Blood cells, boxes** (object detection): 364 microscope photos with boxes around "
        "red and white cells and platelets (Pascal VOC, MIT licence).",
        "Try the detection sample",
        "use_sample_boxes",
    ):
        return
    try:
        data = read_boxes(BCCD)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    for line in box_report(data, training_size(data)):
        st.markdown(md(line) if not line.startswith("  - ") else "- " + md(line[4:]))
    cols = st.columns(3)
    for col, photo in zip(cols, data.photos[:3], strict=False):
        col.image(drawn(photo, data.classes), caption=md(Path(photo.path).name))
    legend = ", ".join(f"{md(c)}: {COLOURS[i % len(COLOURS)]}" for i, c in enumerate(data.classes))
    st.caption(f"Box colours: {legend}.")
    st.info(
        "Train a detector on it from a terminal: `tlcore train --data assets/bccd --json` "
        "(about 15 minutes on 2 cores), then `tlcore predict RUN photo.jpg --json`. The "
        "Train, Evaluate and Predict pages do not show detection runs yet."
    )
