"""Drawing boxes in the browser on the Data page, for someone whose photos have none yet.

The photos are uploaded into a fresh folder (``JPEGImages/``); each is shown in the kept
``streamlit-image-annotation`` component, where boxes are drawn, moved and given a class;
*Complete* in the tool saves them at once as Pascal VOC in ``Annotations/`` beside the photos
(``tlcore.data.voc_labels``), never in the photos. *Use these photos* makes the folder the
chosen detection data (``box_sections.choose_if_boxes``), read like any other VOC folder.

Three things the component leaves to us: it sends boxes only when *Complete* is pressed (the
caption says so); it shows a shrunk copy, so we shrink it ourselves and scale each axis back
to the photo's own pixels; and a photo turned by its EXIF orientation is saved upright on
upload, so the boxes drawn on what the person sees are the boxes on the file every reader
(training, the report) opens.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps

from appkit.box_sections import choose_if_boxes
from tlcore import settings
from tlcore.data.boxes import PHOTO_SUFFIXES, Box
from tlcore.data.markdown import md
from tlcore.data.sources import safe_name
from tlcore.data.voc_labels import PHOTOS_DIR, annotation_path, drawn_boxes, write_boxes
from tlcore.errors import DataError, TLCoreError

SET_KEY = "tl_box_label_set"
SHOWN_SIDE = 640  # the longest side shown in the tool; boxes are kept in the photo's own pixels
STRAY_SIDE = 5.5  # shown pixels: the tool's smallest box, left by a click without a drag
_EXIF_ORIENTATION = 0x0112


def _photos(folder: Path) -> list[Path]:
    photos = folder / PHOTOS_DIR
    return sorted(p for p in photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) \
        if photos.is_dir() else []  # fmt: skip


def _free_name(photos: Path, name: str) -> str:
    """``name`` made safe, renamed (``cell-2.png``) when its stem is taken: two photos with
    one stem would share one ``Annotations/<stem>.xml``, and a second upload of a name must
    not take over the boxes drawn on the first."""
    name = safe_name(name, "file name")
    stem, suffix = Path(name).stem, Path(name).suffix
    taken = {p.stem.lower() for p in photos.iterdir()}
    n = 1
    while (stem if n == 1 else f"{stem}-{n}").lower() in taken:
        n += 1
    return name if n == 1 else f"{stem}-{n}{suffix}"


def _upright(name: str, data: bytes) -> bytes:
    """The photo's bytes, turned upright when its EXIF says it is shown turned (a phone's
    portrait photo); otherwise the bytes as they came."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.getexif().get(_EXIF_ORIENTATION, 1) in (None, 1):
                return data
            turned = ImageOps.exif_transpose(im)
            out = io.BytesIO()
            turned.save(out, format=im.format, quality=95)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: not a readable photo ({exc}).") from None


def _add(files: list[tuple[str, bytes]]) -> Path:
    """The photos saved (names made safe and unique, turned upright; one already there is
    not copied again) in this session's labelling folder."""
    folder = Path(st.session_state.get(SET_KEY) or settings.uploads_dir() / "box-labels"
                  / uuid.uuid4().hex[:10])  # fmt: skip
    photos = folder / PHOTOS_DIR
    photos.mkdir(parents=True, exist_ok=True)
    there = {hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.iterdir()}
    for name, data in files:
        if Path(name).suffix.lower() not in PHOTO_SUFFIXES:
            raise DataError(f"{name}: boxes can be drawn on {', '.join(PHOTO_SUFFIXES)} photos; "
                            "convert it first.")  # fmt: skip
        data = _upright(name, data)
        if hashlib.sha256(data).hexdigest() in there:
            continue  # *Add* pressed twice: the photo is there already, with its boxes
        (photos / _free_name(photos, name)).write_bytes(data)
        there.add(hashlib.sha256(data).hexdigest())
    st.session_state[SET_KEY] = str(folder)
    return folder


def labelling_section() -> None:
    """Upload photos, type the classes, draw boxes photo by photo, then use them."""
    with st.expander("Draw boxes on your own photos (object detection)",
                     icon=":material/crop_free:"):  # fmt: skip
        uploads = st.file_uploader("Photos to draw boxes on",
                                   type=[s.removeprefix(".") for s in PHOTO_SUFFIXES],
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
    names = [p.name for p in photos]  # by name: an upload added later does not shift them
    name = st.selectbox("Photo", names, key="label_boxes_photo")
    photo = photos[names.index(name)] if name in names else photos[0]
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
    shown = image.copy()
    shown.thumbnail((SHOWN_SIDE, SHOWN_SIDE))  # shrunk here: the tool's own scale is width-only
    sx, sy = image.width / shown.width, image.height / shown.height
    st.caption("Pick a **Class**, drag on the photo to draw a box; click a box to move, resize "
               "or re-class it (**Mode** *Del*, then a click, deletes one); a click without a drag "
               "adds nothing. Press **Complete** to save this photo's boxes.")  # fmt: skip
    drawn = detection(image_path=shown, label_list=classes,
                      bboxes=[[b.xmin / sx, b.ymin / sy, b.width / sx, b.height / sy]
                              for b in kept],
                      labels=[classes.index(b.label) for b in kept], height=SHOWN_SIDE,
                      width=SHOWN_SIDE, key=f"label_boxes_{folder.name}_{photo.name}")  # fmt: skip
    if drawn is not None:
        boxes = [Box(d["label"], d["bbox"][0] * sx, d["bbox"][1] * sy,
                     (d["bbox"][0] + d["bbox"][2]) * sx, (d["bbox"][1] + d["bbox"][3]) * sy)
                 for d in drawn if not _stray_click(d["bbox"])]  # fmt: skip
        if _rounded(boxes) != _rounded(kept):
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


def _stray_click(bbox: list[float]) -> bool:
    """The tool turns a click on the photo (nothing selected, no drag) into a box of its
    smallest size, 5 x 5 shown pixels: a click, not an object anyone drew."""
    return bbox[2] <= STRAY_SIDE and bbox[3] <= STRAY_SIDE


def _rounded(boxes: list[Box]) -> list[tuple[str, int, int, int, int]]:
    return [(b.label, round(b.xmin), round(b.ymin), round(b.xmax), round(b.ymax)) for b in boxes]
