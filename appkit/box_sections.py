"""The Data page's photos with boxes: the detection sample (BCCD) or an upload with boxes, the
report in words, a few photos with their boxes drawn, and *Use this sample* / a noticed upload
making them the chosen data (``data_choice.choose_task_data``); the Train page of such data is
``appkit.box_pages``, the Evaluate and Predict pages of its runs ``appkit.box_results``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from appkit.box_drawing import show_boxes_data
from appkit.data_choice import choose_task_data, offered_sample
from tlcore import settings
from tlcore.data.boxes import box_format, read_boxes
from tlcore.data.task import PHOTO_BOXES

BCCD = settings.PROJECT_ROOT / "assets" / "bccd"


def choose_if_boxes(source: str | Path, label: str) -> bool:
    """An upload or folder holding boxes (VOC, COCO, YOLO, CSV) becomes the chosen detection
    data; False when it holds none (the one-label-per-photo reading goes on). A zip is
    unpacked safely first (``tlcore.data.prepare.unpack_upload``); DataError in words."""
    from tlcore.data.prepare import unpack_upload

    folder = unpack_upload(source) if Path(source).is_file() else Path(source)
    if box_format(folder) is None:
        return False
    read_boxes(folder)  # refuses in words when no box can be used
    choose_task_data(PHOTO_BOXES, folder, label)
    return True


def detection_sample() -> None:
    """The *Try the detection sample* button and, once pressed, what the sample holds."""
    data = offered_sample(
        "**Blood cells, boxes** (object detection): 364 microscope photos with boxes around "
        "red and white cells and platelets (Pascal VOC, MIT licence).",
        "Try the detection sample",
        "use_sample_boxes",
        lambda: read_boxes(BCCD),
    )
    if data is None:
        return
    show_boxes_data(data)
    if st.button("Use this sample", key="use_sample_boxes_data", type="primary"):
        choose_task_data(PHOTO_BOXES, BCCD, "Sample: blood cells with boxes")
        st.rerun()  # the sidebar and the Train page show the new choice
    st.caption("Then train a detector on the **Train** page (or from a terminal: "
               "`tlcore train --data assets/bccd --json`).")  # fmt: skip
