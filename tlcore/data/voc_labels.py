"""Boxes a person draws in the browser, kept as Pascal VOC beside the photos (never in them).

One ``Annotations/<photo stem>.xml`` per labelled photo, the layout ``tlcore.data.boxes``
reads back (``JPEGImages/`` beside it). The XML is built with the standard library's
ElementTree, so a class name such as ``<b>&`` is escaped as text, and written atomically so
a reader never sees half a file.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from tlcore.data.boxes import Box, read_voc_file

PHOTOS_DIR, ANNOTATIONS_DIR = "JPEGImages", "Annotations"


def annotation_path(photo: str | Path) -> Path:
    """Where the boxes of ``photo`` (inside ``JPEGImages/``) are kept."""
    photo = Path(photo)
    return photo.parent.parent / ANNOTATIONS_DIR / f"{photo.stem}.xml"


def voc_xml(filename: str, width: int, height: int, boxes: Sequence[Box]) -> bytes:
    """One photo's boxes as a Pascal VOC annotation."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = PHOTOS_DIR
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for name, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, name).text = str(int(value))
    for box in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = box.label
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for name in ("xmin", "ymin", "xmax", "ymax"):
            ET.SubElement(bndbox, name).text = f"{getattr(box, name):.1f}"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_boxes(photo: str | Path, width: int, height: int, boxes: Sequence[Box]) -> Path:
    """Keep the boxes drawn on ``photo`` in ``Annotations/`` beside its folder; the photo is
    only read, never written."""
    path = annotation_path(photo)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(voc_xml(Path(photo).name, width, height, boxes))
    os.replace(tmp, path)
    return path


def drawn_boxes(photo: str | Path) -> list[Box]:
    """The boxes kept for ``photo`` so far (none yet: an empty list)."""
    path = annotation_path(photo)
    return read_voc_file(path)[1] if path.is_file() else []
