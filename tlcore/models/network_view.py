"""What a pretrained network sees: its first-layer filters, its feature maps, its ImageNet guess.

The "why transfer learning works" pictures for a classroom. The first layer of an
ImageNet network holds small colour and edge detectors that suit any photo; the
feature maps of one photo get coarser and more abstract with depth; and the
original 1000-class head already names what is in a photo before any
fine-tuning. Everything here returns plain PIL images and dicts, so the page
draws them without torch, and the same calls work from a notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlcore.errors import ModelError

TILE_GAP = 2
# a perceptually ordered ramp (dark blue -> teal -> yellow) for one-channel maps
_RAMP = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32
)


@dataclass
class FeatureMaps:
    """Feature maps of one image at one depth, drawn as a grid of the most active channels."""

    depth: int
    stage: str
    channels: int
    size: tuple[int, int]  # height, width of each map
    reduction: int  # input pixels per map pixel, per side
    shown: list[int]  # channel indices in the grid, most active first
    grid: Image.Image
    model_input: Image.Image  # the photo as the network gets it (resized, cropped)


def load_imagenet_model(name: str, weights: str = "bundled") -> nn.Module:
    """The model with its original 1000-class ImageNet head, in eval mode, never trained here."""
    from tlcore.models.factory import create_model

    return create_model(name, None, weights).eval()


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first convolution that reads the RGB pixels (the stem, or a ViT's patch embedding)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            return name, module
    raise ModelError(
        f"{type(model).__name__} has no convolution on the RGB input, so it has no "
        "first-layer filters to show."
    )


def _tiles_to_grid(tiles: list[np.ndarray], columns: int) -> Image.Image:
    """Equal-sized HxWx3 uint8 tiles in rows of ``columns``, on white with a small gap."""
    rows = math.ceil(len(tiles) / columns)
    h, w = tiles[0].shape[:2]
    canvas = np.full(
        (rows * (h + TILE_GAP) - TILE_GAP, columns * (w + TILE_GAP) - TILE_GAP, 3),
        255,
        dtype=np.uint8,
    )
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * (h + TILE_GAP) : r * (h + TILE_GAP) + h, c * (w + TILE_GAP) : c * (w + TILE_GAP) + w] = tile  # fmt: skip
    return Image.fromarray(canvas)


def _unit(values: np.ndarray) -> np.ndarray:
    """Min-max scaled to [0, 1] (a constant array becomes 0.5)."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.full_like(values, 0.5, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def colourise(values: np.ndarray) -> np.ndarray:
    """A 2-D array in [0, 1] as an HxWx3 uint8 image on the blue-to-yellow ramp."""
    position = np.clip(values, 0.0, 1.0) * (len(_RAMP) - 1)
    low = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    frac = (position - low)[..., None]
    return (_RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac).round().astype(np.uint8)


def filter_tiles(model: nn.Module, max_filters: int = 64) -> list[np.ndarray]:
    """Each first-layer filter as a kh x kw x 3 uint8 array, min-max scaled per filter."""
    _, conv = first_conv(model)
    weights = conv.weight.detach().float().cpu().numpy()[:max_filters]  # (out, 3, kh, kw)
    return [(_unit(w.transpose(1, 2, 0)) * 255).round().astype(np.uint8) for w in weights]


def filter_grid(
    model: nn.Module, scale: int = 8, columns: int = 8, max_filters: int = 64
) -> Image.Image:
    """The first-layer filters as one image: each filter a tile, enlarged ``scale`` times."""
    tiles = [
        np.asarray(Image.fromarray(t).resize((t.shape[1] * scale, t.shape[0] * scale), Image.NEAREST))
        for t in filter_tiles(model, max_filters)
    ]  # fmt: skip
    return _tiles_to_grid(tiles, max(1, min(columns, len(tiles))))


def feature_depths(model: nn.Module) -> list[dict]:
    """The depths ``feature_maps`` can show, input side first: stage module, channels, reduction."""
    info = getattr(model, "feature_info", None)
    if not info or not hasattr(model, "forward_intermediates"):
        raise ModelError(
            f"{type(model).__name__} does not expose its intermediate feature maps "
            "(timm's forward_intermediates); choose a convolutional model such as an EfficientNet."
        )
    entries = info if isinstance(info, list) else list(info.info)
    return [
        {"depth": i, "stage": str(e.get("module", i)), "channels": int(e.get("num_chs", 0)),
         "reduction": int(e.get("reduction", 0))}
        for i, e in enumerate(entries)
    ]  # fmt: skip


def model_input(model: nn.Module, image: Image.Image, img_size: int | None = None) -> torch.Tensor:
    """The normalised 1x3xHxW tensor the model gets for ``image`` (its eval preprocessing)."""
    from tlcore.data.dataset import build_transform, resolve_data_config

    transform = build_transform(resolve_data_config(model, img_size), train=False)
    return transform(image.convert("RGB")).unsqueeze(0)


def _as_photo(model: nn.Module, x: torch.Tensor) -> Image.Image:
    """The input tensor back in pixels, so people see the crop the network sees."""
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(model)
    mean = torch.tensor(config["mean"]).view(3, 1, 1)
    std = torch.tensor(config["std"]).view(3, 1, 1)
    pixels = ((x[0] * std + mean).clamp(0, 1) * 255).round().byte()
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


@torch.no_grad()
def feature_maps(
    model: nn.Module,
    image: Image.Image,
    depth: int,
    img_size: int | None = None,
    max_maps: int = 16,
    tile: int = 96,
) -> FeatureMaps:
    """The ``max_maps`` most active channels of ``image`` at ``depth`` (0 = nearest the input)."""
    depths = feature_depths(model)
    if not isinstance(depth, int) or not 0 <= depth < len(depths):
        raise ModelError(f"depth must be 0 to {len(depths) - 1} for this model (got {depth!r}).")
    x = model_input(model, image, img_size)
    was_training = model.training
    model.eval()
    try:
        maps = model.forward_intermediates(
            x, indices=[depth], intermediates_only=True, stop_early=True
        )[0][0].float()  # (C, H, W)
    finally:
        model.train(was_training)
    activity = maps.clamp(min=0).mean(dim=(1, 2))
    shown = activity.argsort(descending=True)[:max_maps].tolist()
    tiles = []
    for channel in shown:
        picture = Image.fromarray(colourise(_unit(maps[channel].cpu().numpy())))
        tiles.append(np.asarray(picture.resize((tile, tile), Image.NEAREST)))
    entry = depths[depth]
    return FeatureMaps(
        depth=depth,
        stage=entry["stage"],
        channels=int(maps.shape[0]),
        size=(int(maps.shape[1]), int(maps.shape[2])),
        reduction=entry["reduction"],
        shown=shown,
        grid=_tiles_to_grid(tiles, columns=max(1, math.ceil(math.sqrt(len(tiles))))),
        model_input=_as_photo(model, x),
    )


def imagenet_top5(model: nn.Module, image: Image.Image, k: int = 5) -> list[dict]:
    """The original head's ``k`` best guesses: rank, ImageNet class index, name, probability."""
    from tlcore.models.factory import imagenet_top_k

    return [
        {"rank": rank, "class_index": index, "label": label, "probability": probability}
        for rank, (index, label, probability) in enumerate(imagenet_top_k(model, image, k), 1)
    ]
