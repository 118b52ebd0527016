"""A detector's boxes for a folder of photos as one CSV: a row per box, in the photo's pixels.

``path,label,score,xmin,ymin,xmax,ymax``; a photo where nothing was found keeps one row with
its path alone, so every photo read is in the file. Cells go through ``tlcore.data.csv_safe``
(a photo or class called ``=HYPERLINK(...)`` stays text in a spreadsheet).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tlcore.data.csv_safe import csv_text

BOX_CSV_COLUMNS = ("path", "label", "score", "xmin", "ymin", "xmax", "ymax")


def boxes_csv(answers: Iterable[dict[str, Any]]) -> str:
    """The CSV text of ``predict_boxes``-shaped answers ({path, boxes: [{label, score, ...}]})."""
    rows: list[list[Any]] = []
    for answer in answers:
        if not answer["boxes"]:
            rows.append([answer["path"], "", "", "", "", "", ""])
        for box in answer["boxes"]:
            rows.append([answer["path"], box["label"], f"{box['score']:.4f}",
                         *(f"{box[k]:.1f}" for k in ("xmin", "ymin", "xmax", "ymax"))])  # fmt: skip
    return csv_text(BOX_CSV_COLUMNS, rows)
