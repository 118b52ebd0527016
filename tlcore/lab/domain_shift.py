"""A constructed domain shift: the same photos as if taken by a very different camera.

Domain adaptation is easiest to understand (and to test) when the only thing
that changes between the data you train on and the data you predict on is the
"look": same classes, same kind of scenes, but other colours, softer focus,
flatter contrast. ``make_shifted_copy`` writes such a copy of a dataset's class
folders, with a fixed recipe and a seed, so a teaching demo or a test always
gets the same target domain.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from tlcore.data.images import load_rgb
from tlcore.data.scan import scan_folder
from tlcore.errors import ConfigError, DataError

MAX_SIDE = 320  # the copies are for training at small sizes; keep them light


@dataclass(frozen=True)
class ShiftRecipe:
    """How far the target domain is from the source; ``jitter`` varies it per photo."""

    hue_shift: float = 0.5  # fraction of the colour wheel (0.5: red <-> cyan, yellow <-> blue)
    blur_radius: float = 4.0  # Gaussian blur in pixels at MAX_SIDE
    contrast: float = 0.5  # 1 = unchanged
    saturation: float = 1.4
    brightness: float = 1.1
    jitter: float = 0.1  # +- relative random change of each factor per photo

    def validate(self) -> ShiftRecipe:
        if not 0.0 <= self.hue_shift <= 1.0:
            raise ConfigError(f"hue_shift must be in [0, 1] (got {self.hue_shift}).")
        if not 0.0 <= self.blur_radius <= 20.0:
            raise ConfigError(f"blur_radius must be in [0, 20] pixels (got {self.blur_radius}).")
        for name in ("contrast", "saturation", "brightness"):
            if not 0.0 < getattr(self, name) <= 5.0:
                raise ConfigError(f"{name} must be in (0, 5] (got {getattr(self, name)}).")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"jitter must be in [0, 1) (got {self.jitter}).")
        return self


def shift_image(image: Image.Image, recipe: ShiftRecipe, rng: random.Random) -> Image.Image:
    """One photo moved into the target domain: hue rotated, colour and contrast changed, blurred."""

    def jittered(value: float) -> float:
        return value * (1.0 + rng.uniform(-recipe.jitter, recipe.jitter))

    image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if recipe.hue_shift:
        hsv = np.asarray(image.convert("HSV")).copy()
        turn = round(255 * (jittered(recipe.hue_shift) % 1.0))
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + turn) % 256
        image = Image.fromarray(hsv, "HSV").convert("RGB")
    image = ImageEnhance.Color(image).enhance(jittered(recipe.saturation))
    image = ImageEnhance.Contrast(image).enhance(jittered(recipe.contrast))
    image = ImageEnhance.Brightness(image).enhance(jittered(recipe.brightness))
    if recipe.blur_radius:
        image = image.filter(ImageFilter.GaussianBlur(jittered(recipe.blur_radius)))
    return image


@dataclass
class ShiftedSet:
    """Where the shifted copy was written and what it holds."""

    folder: Path
    counts: dict[str, int]
    recipe: dict
    split: str | None

    @property
    def n_images(self) -> int:
        return sum(self.counts.values())


def make_shifted_copy(
    source: str | Path,
    dest: str | Path,
    recipe: ShiftRecipe | None = None,
    split: str | None = "val",
    seed: int = 0,
    per_class: int | None = None,
) -> ShiftedSet:
    """Shift the photos of ``split`` (None: all) of a dataset folder into ``dest/<class>/``.

    With train/ + val/ folders, shifting only val/ gives a target domain whose photos
    the source model never trained on (the honest demo).
    """
    scan = scan_folder(source)
    images = [im for im in scan.images if split is None or im.split in (split, None)]
    if split is not None and scan.split_dirs and not any(im.split == split for im in images):
        raise DataError(f"{source} has no {split}/ folder to shift; use split=None for all photos.")
    samples = [(str(im.path), im.class_name) for im in images]
    return write_shifted(samples, dest, recipe, seed, per_class, split)


def write_shifted(
    samples: Sequence[tuple[str, str]],
    dest: str | Path,
    recipe: ShiftRecipe | None = None,
    seed: int = 0,
    per_class: int | None = None,
    split: str | None = None,
) -> ShiftedSet:
    """Write ``dest/<class>/<photo>.jpg`` for each (path, class name), shifted.

    The class folders are kept so the copy can score a model on the target domain;
    a DANN run uses the photos without their labels. ``dest`` appears complete or
    not at all (written beside it, then renamed); an existing ``dest`` is refused.
    """
    recipe = (recipe or ShiftRecipe()).validate()
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest} already exists: choose a new folder for the shifted copy.")
    if not samples:
        raise DataError("There are no photos in class folders to shift.")
    rng = random.Random(seed)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    counts: dict[str, int] = {}
    try:
        for path, class_name in sorted(samples, key=lambda s: (s[1], s[0])):
            if per_class is not None and counts.get(class_name, 0) >= per_class:
                continue
            shifted = shift_image(load_rgb(path), recipe, rng)
            folder = tmp / class_name
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{Path(path).stem}.jpg"
            n = 1
            while target.exists():  # same stem in two sub-folders of one class
                n += 1
                target = folder / f"{Path(path).stem}-{n}.jpg"
            shifted.save(target, quality=90)
            counts[class_name] = counts.get(class_name, 0) + 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ShiftedSet(dest, counts, asdict(recipe), split)
