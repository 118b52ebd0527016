"""A few example pictures per class, so people can check their labels by eye.

A mislabelled folder is the commonest dataset mistake and the easiest to see:
the Data page shows these thumbnails next to the validation report.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageOps

from tlcore.data.images import load_rgb
from tlcore.data.manifest import Manifest
from tlcore.errors import DataError


def class_samples(
    manifest: Manifest, per_class: int = 6, split: str | None = "train", seed: int = 0
) -> dict[str, list[Path]]:
    """Up to ``per_class`` image paths per class, picked reproducibly from one split."""
    by_class: dict[str, list[Path]] = {name: [] for name in manifest.classes}
    items = manifest.items if split is None else manifest.items_for(split)
    for item in items:
        by_class[manifest.classes[item.label]].append(Path(item.path))
    rng = random.Random(seed)
    return {
        name: sorted(rng.sample(paths, min(per_class, len(paths))))
        for name, paths in by_class.items()
    }


def thumbnail(path: str | Path, size: int = 160) -> Image.Image | None:
    """A square thumbnail, or None when the file cannot be read (the report says why)."""
    try:
        image = load_rgb(path)
    except DataError:
        return None
    return ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
