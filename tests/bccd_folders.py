"""Small Pascal VOC folders of real BCCD photos for the detection tests (copies: the tests
may write beside them; assets/ is never written)."""

from __future__ import annotations

import shutil
from pathlib import Path

BCCD = Path(__file__).resolve().parents[1] / "assets" / "bccd"
NAMES = [f"BloodImage_{i:05d}" for i in range(8)]


def voc_folder(folder: Path, names: list[str] = NAMES) -> Path:
    """``folder`` with ``Annotations/`` and ``JPEGImages/`` of ``names``."""
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    for name in names:
        shutil.copy(BCCD / "JPEGImages" / f"{name}.jpg", folder / "JPEGImages")
        shutil.copy(BCCD / "Annotations" / f"{name}.xml", folder / "Annotations")
    return folder
