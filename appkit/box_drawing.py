"""Photos with their boxes drawn, and the detection data report shown in words: what the
Data page's box sections and the detection pages (``appkit.box_pages``) both show."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw

from tlcore.data.box_report import box_report, training_size
from tlcore.data.boxes import BoxData, BoxedPhoto
from tlcore.data.markdown import md

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0")


def drawn(photo: BoxedPhoto, classes: list[str]) -> Image.Image:
    """The photo with its true boxes outlined, one colour per class."""
    with Image.open(photo.path) as im:
        return draw_boxes(im, [(b.label, b.xmin, b.ymin, b.xmax, b.ymax, None) for b in photo.boxes],
                          classes)  # fmt: skip


def draw_boxes(image: Image.Image, boxes: list[tuple], classes: list[str]) -> Image.Image:
    """A copy of ``image`` with ``boxes`` (label, xmin, ymin, xmax, ymax, score or None)
    outlined in their class's colour, the class and score written above each scored box."""
    image = image.convert("RGB")
    pen = ImageDraw.Draw(image)
    for label, xmin, ymin, xmax, ymax, score in boxes:
        index = classes.index(label) if label in classes else len(classes)
        colour = COLOURS[index % len(COLOURS)]
        pen.rectangle((xmin, ymin, xmax, ymax), outline=colour, width=3)
        if score is not None:
            pen.text((xmin + 3, max(0, ymin - 12)), f"{label[:24]} {score:.2f}", fill=colour)
    return image


def legend(classes: list[str]) -> str:
    """Which colour is which class (Markdown, names escaped)."""
    return ", ".join(f"{md(c)}: {COLOURS[i % len(COLOURS)]}" for i, c in enumerate(classes))


def show_boxes_data(data: BoxData) -> None:
    """The report in words and three photos with their boxes."""
    for line in box_report(data, training_size(data)):
        st.markdown(md(line) if not line.startswith("  - ") else "- " + md(line[4:]))
    cols = st.columns(3)
    for col, photo in zip(cols, data.photos[:3], strict=False):
        col.image(drawn(photo, data.classes), caption=md(Path(photo.path).name))
    st.caption(f"Box colours: {legend(data.classes)}.")
