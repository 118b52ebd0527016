"""Drawing boxes in the browser on the Data page, for someone whose photos have none yet.

The photos are uploaded into a fresh folder (``JPEGImages/``); each is shown in the kept
``streamlit-image-annotation`` component, where boxes are drawn, moved and given a class;
every change is saved at once as Pascal VOC in ``Annotations/`` beside the photos
(``tlcore.data.voc_labels``), never in the photos. *Use these photos* makes the folder the
chosen detection data (``box_sections.choose_if_boxes``), read like any other VOC folder.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import streamlit as st
from PIL import Image

from appkit.box_sections import choose_if_boxes
from tlcore import settings
from tlcore.data.boxes import PHOTO_SUFFIXES, Box
from tlcore.data.images import UPLOAD_TYPES
from tlcore.data.markdown import md
from tlcore.data.sources import safe_name
from tlcore.data.voc_labels import PHOTOS_DIR, annotation_path, drawn_boxes, write_boxes
from tlcore.errors import TLCoreError

SET_KEY = "tl_box_label_set"
SHOWN_SIDE = 640  # the component's canvas; boxes are kept in the photo's own pixels


def _photos(folder: Path) -> list[Path]:
    photos = folder / PHOTOS_DIR
    return sorted(p for p in photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) \
        if photos.is_dir() else []  # fmt: skip


def _add(files: list[tuple[str, bytes]]) -> Path:
    """The photos saved (names made safe) in this session's labelling folder."""
    folder = Path(st.session_state.get(SET_KEY) or settings.uploads_dir() / "box-labels"
                  / uuid.uuid4().hex[:10])  # fmt: skip
    (folder / PHOTOS_DIR).mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (folder / PHOTOS_DIR / safe_name(name, "file name")).write_bytes(data)
    st.session_state[SET_KEY] = str(folder)
    return folder


def labelling_section() -> None:
    """Upload photos, type the classes, draw boxes photo by photo, then use them."""
    with st.expander("Draw boxes on your own photos (object detection)",
                     icon=":material/crop_free:"):  # fmt: skip
        uploads = st.file_uploader("Photos to draw boxes on", type=list(UPLOAD_TYPES),
                                   accept_multiple_files=True, key="label_boxes_photos")  # fmt: skip
        if st.button("Add these photos", key="label_boxes_add", disabled=not uploads):
            try:
                _add([(f.name, f.getvalue()) for f in uploads or []])
            except (TLCoreError, OSError) as exc:
                st.error(md(exc))
        folder = st.session_state.get(SET_KEY)
        if not folder:
            return
        _draw(Path(folder))


def _draw(folder: Path) -> None:
    photos = _photos(folder)
    typed = st.text_input("Classes, separated by commas", key="label_boxes_classes",
                          placeholder="cell, platelet")  # fmt: skip
    classes = list(dict.fromkeys(c.strip() for c in typed.split(",") if c.strip()))
    if not photos or not classes:
        st.info("Type the classes to draw (for example `cell, platelet`).")
        return
    index = st.selectbox("Photo", range(len(photos)), format_func=lambda i: photos[i].name,
                         key="label_boxes_photo")  # fmt: skip
    photo = photos[index]
    try:  # as the detector's training reads it (tlcore.training.detection.photo_tensor)
        with Image.open(photo) as im:
            image = im.convert("RGB")
        kept = drawn_boxes(photo)
    except (TLCoreError, OSError, Image.DecompressionBombError) as exc:
        st.error(f"{md(photo.name)}: {md(exc)}")
        return
    classes += [b.label for b in kept if b.label not in classes]  # a class typed away stays
    try:
        from streamlit_image_annotation import detection
    except ImportError:
        st.info("Drawing boxes needs the `streamlit-image-annotation` package "
                "(`pip install streamlit-image-annotation`).")  # fmt: skip
        return
    drawn = detection(image_path=image.copy(), label_list=classes,  # it shrinks its copy
                      bboxes=[[b.xmin, b.ymin, b.width, b.height] for b in kept],
                      labels=[classes.index(b.label) for b in kept], height=SHOWN_SIDE,
                      width=SHOWN_SIDE, key=f"label_boxes_{folder.name}_{index}")  # fmt: skip
    if drawn is not None:
        boxes = [Box(d["label"], d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2],
                     d["bbox"][1] + d["bbox"][3]) for d in drawn]  # fmt: skip
        if [(b.label, round(b.xmin), round(b.ymin), round(b.xmax), round(b.ymax)) for b in boxes] \
                != [(b.label, round(b.xmin), round(b.ymin), round(b.xmax), round(b.ymax))
                    for b in kept]:  # fmt: skip
            write_boxes(photo, image.width, image.height, boxes)
            kept = boxes
    labelled = sum(annotation_path(p).is_file() for p in photos)
    st.caption(f"{len(kept)} boxes on this photo; {labelled} of {len(photos)} photos labelled. "
               "The boxes are saved as Pascal VOC in `Annotations/` beside the photos, never "
               "in the photos; a photo left without boxes is kept as background.")  # fmt: skip
    if st.button("Use these photos", key="label_boxes_use", disabled=not labelled):
        try:
            if choose_if_boxes(folder, "Your photos with boxes"):
                st.rerun()
        except TLCoreError as exc:
            st.error(md(exc))
