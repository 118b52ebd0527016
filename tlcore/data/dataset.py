"""Tensors for training: a torch Dataset over a manifest, preprocessed as the model expects.

The preprocessing (size, crop, mean/std, interpolation) comes from the model's
own timm data config, never from constants here, so a model pretrained at 240 px
with its own normalisation is fed what it was trained on. Augmentation presets
only ever change the training transform; evaluation is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import timm.data
import torch
from torch.utils.data import Dataset

from tlcore.data.decoded_cache import decode_side
from tlcore.data.images import load_rgb
from tlcore.data.manifest import Manifest
from tlcore.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tlcore.data.decoded_cache import DecodedImageCache

AUGMENT_PRESETS = ("none", "light", "strong")

# timm create_transform arguments per preset (training only). "light" suits small
# datasets of photos: gentle crops, flips and colour changes; "strong" adds
# RandAugment and random erasing for when the model overfits.
_PRESET_ARGS: dict[str, dict[str, Any]] = {
    "light": {
        "scale": (0.6, 1.0),
        "ratio": (3 / 4, 4 / 3),
        "hflip": 0.5,
        "color_jitter": 0.2,
        "auto_augment": None,
        "re_prob": 0.0,
    },
    "strong": {
        "scale": (0.25, 1.0),
        "ratio": (3 / 4, 4 / 3),
        "hflip": 0.5,
        "color_jitter": 0.4,
        "auto_augment": "rand-m9-mstd0.5-inc1",
        "re_prob": 0.25,
    },
}
_CONFIG_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def resolve_data_config(model: torch.nn.Module, img_size: int | None = None) -> dict:
    """The model's preprocessing (timm), with the input size overridden to a square when given."""
    config = dict(timm.data.resolve_model_data_config(model))
    if img_size is not None:
        if int(img_size) < 16:
            raise ConfigError(f"img_size must be at least 16 pixels, got {img_size}.")
        config["input_size"] = (3, int(img_size), int(img_size))
    return config


def build_transform(data_config: dict, *, train: bool, augment: str = "light") -> Callable:
    """A timm transform from a data config: augmented for training, deterministic for eval."""
    if augment not in AUGMENT_PRESETS:
        raise ConfigError(f"augment must be one of {', '.join(AUGMENT_PRESETS)}, got {augment!r}.")
    base = {k: data_config[k] for k in _CONFIG_KEYS if k in data_config}
    if not train or augment == "none":
        return timm.data.create_transform(**base, is_training=False)
    if base.get("interpolation") == "random":
        base["interpolation"] = "bicubic"
    base.pop("crop_pct", None)
    base.pop("crop_mode", None)
    return timm.data.create_transform(**base, is_training=True, **_PRESET_ARGS[augment])


class ManifestDataset(Dataset):
    """(image tensor CHW float, label) pairs for one split of a manifest.

    Images go through ``load_rgb``, so EXIF rotation and colour conversion match
    what the validation report described.
    """

    def __init__(
        self,
        manifest: Manifest,
        split: str,
        transform: Callable,
        decoded: DecodedImageCache | None = None,
    ):
        self.manifest = manifest
        self.split = split
        self.items = manifest.items_for(split)
        self.transform = transform
        self.classes = list(manifest.classes)
        self.decoded = decoded  # images decoded once (see with_decoded_cache)
        self.batch_transform: Callable | None = None  # applied by the loader to whole batches

    @property
    def labels(self) -> list[int]:
        """Label of every item, in order (for class-balanced sampling and metrics)."""
        return [item.label for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.items[index]
        if self.decoded is not None:
            return self.transform(self.decoded.image(index)), item.label
        try:
            image = load_rgb(item.path, min_side=decode_side(self.transform))
        except DataError as exc:
            raise DataError(
                f"{exc} The file changed since the dataset was checked; inspect it again."
            ) from None
        return self.transform(image), item.label


def with_batch_normalize(dataset: ManifestDataset) -> ManifestDataset:
    """The same samples as uint8 tensors, ToTensor + Normalize left to the loader's batches."""
    from tlcore.data.decoded_cache import split_batch_normalize

    per_image, per_batch = split_batch_normalize(dataset.transform)
    if per_batch is None:
        return dataset
    batched = ManifestDataset(dataset.manifest, dataset.split, per_image, dataset.decoded)
    batched.batch_transform = per_batch
    return batched


def with_decoded_cache(
    dataset: ManifestDataset,
    mode: str = "auto",
    directory: Path | None = None,
    memory_budget: int | None = None,
) -> ManifestDataset:
    """The same samples, with each image decoded once and kept (see ``tlcore.data.decoded_cache``).

    The transform is split into the part applied once (kept) and the part applied
    every epoch, so random augmentation still differs per epoch.
    """
    from tlcore.data.decoded_cache import DecodedImageCache, split_batch_normalize, split_transform

    if mode == "off":
        return dataset
    presize, per_epoch = split_transform(dataset.transform)
    per_image, per_batch = split_batch_normalize(per_epoch)
    paths = [item.path for item in dataset.items]
    cache = DecodedImageCache(
        paths, presize, mode=mode, directory=directory, memory_budget=memory_budget
    )
    cached = ManifestDataset(dataset.manifest, dataset.split, per_image, decoded=cache)
    cached.batch_transform = per_batch  # uint8 images in, normalized floats out (a collate)
    return cached
