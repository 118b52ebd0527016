"""Many photos at once: a folder's images (or an upload's) predicted into one table and a CSV.

The Predict page's batch tab and a notebook do the same three things: predict every
image of a folder, named by its path inside the folder; judge "none of these" at the
threshold the user chose (which may move after the photos were scored, so it is
decided again from each photo's stored score, not fixed at prediction time); and show
one row per photo, the same rows that go into the CSV.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlcore.data.images import images_in
from tlcore.errors import DataError
from tlcore.results.predict import Prediction, Predictor
from tlcore.results.unknown import is_unknown_score


def predict_folder(predictor: Predictor, root: str | Path, k: int = 3) -> list[Prediction]:
    """Every image under ``root``, in sorted order, named by its path inside ``root``
    (an empty list when there is none; unreadable files get their error in words).
    DataError when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: give a folder of photos to predict.")
    paths = images_in([root])
    names = [p.relative_to(root).as_posix() for p in paths]
    return predictor.predict_files(paths, k=k, names=names)


def at_threshold(results: Sequence[Prediction], threshold: float | None) -> list[Prediction]:
    """Copies of ``results`` with "none of these" judged at ``threshold`` (the validation
    threshold each prediction was made with is replaced; None leaves them as they are)."""
    if threshold is None:
        return list(results)
    return [dataclasses.replace(r, unknown=is_unknown_score(r.unknown_score, threshold))
            for r in results]  # fmt: skip


def prediction_rows(results: Sequence[Prediction]) -> list[dict[str, Any]]:
    """One row per photo for a table: file, prediction, probability, none of these, error."""
    return [
        {"file": r.path, "prediction": r.label, "probability": r.probability,
         "none of these": r.unknown, "error": r.error or ""}
        for r in results
    ]  # fmt: skip
