"""What the network sees, on the real bundled EfficientNet-Lite0 and real ants/bees photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tlcore.data.images import load_rgb
from tlcore.errors import ModelError
from tlcore.models.network_view import (
    TILE_GAP,
    feature_depths,
    feature_maps,
    filter_grid,
    first_conv,
    imagenet_top5,
    load_imagenet_model,
)

MODEL = "tf_efficientnet_lite0"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-image passes gain nothing from 2 threads on a busy shared machine, and thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pretrained():
    return load_imagenet_model(MODEL, "bundled")


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)  # the same random weights every time
    return load_imagenet_model(MODEL, "scratch")


def photo(sample_dir, label: str, index: int = 0):
    return load_rgb(sorted((sample_dir / "val" / label).iterdir())[index])


def test_the_filter_grid_draws_each_first_layer_filter_as_its_own_weights(pretrained, untrained):
    name, conv = first_conv(pretrained)
    assert name == "conv_stem" and conv.weight.shape == (32, 3, 3, 3)
    scale = 8
    grid = np.asarray(filter_grid(pretrained, scale=scale, columns=8))
    tile = 3 * scale
    assert grid.shape == (4 * tile + 3 * TILE_GAP, 8 * tile + 7 * TILE_GAP, 3)  # 32 tiles, 8 a row

    # filter 9 sits in row 1, column 1: its darkest weight is black, its brightest white
    weights = conv.weight.detach()[9].permute(1, 2, 0).numpy()
    scaled = np.round((weights - weights.min()) / (weights.max() - weights.min()) * 255)
    top, left = tile + TILE_GAP, tile + TILE_GAP
    drawn = grid[top : top + tile : scale, left : left + tile : scale]
    assert np.array_equal(drawn, scaled.astype(np.uint8))

    assert not np.array_equal(grid, np.asarray(filter_grid(untrained, scale=scale)))
    with pytest.raises(ModelError, match="no convolution on the RGB input"):
        first_conv(nn.Sequential(nn.Linear(3, 2)))


def test_feature_maps_get_coarser_and_wider_with_depth(pretrained, sample_dir):
    depths = feature_depths(pretrained)
    assert [d["stage"] for d in depths][0] == "blocks.0" and len(depths) == 5
    image = photo(sample_dir, "bees")
    shallow = feature_maps(pretrained, image, 0, img_size=128, max_maps=16)
    deep = feature_maps(pretrained, image, len(depths) - 1, img_size=128, max_maps=9)

    assert shallow.model_input.size == (128, 128)  # the crop the network gets, back in pixels
    assert shallow.size == (64, 64) and shallow.reduction == 2
    assert deep.size == (4, 4) and deep.reduction == 32
    assert shallow.channels == depths[0]["channels"] < deep.channels == depths[-1]["channels"]
    assert len(set(deep.shown)) == 9 and all(0 <= c < deep.channels for c in deep.shown)
    assert deep.grid.size == (3 * 96 + 2 * TILE_GAP, 3 * 96 + 2 * TILE_GAP)  # 9 tiles, 3 a row
    assert shallow.grid.size == (4 * 96 + 3 * TILE_GAP,) * 2
    # the first map shown is the most active one for this photo; another photo ranks differently
    other = feature_maps(pretrained, photo(sample_dir, "ants"), len(depths) - 1, img_size=128)
    assert other.shown[:9] != deep.shown
    for bad in (-1, len(depths), "2"):
        with pytest.raises(ModelError, match="depth must be 0 to 4"):
            feature_maps(pretrained, image, bad)


def test_the_imagenet_head_already_names_ants_and_bees_before_fine_tuning(
    pretrained, untrained, sample_dir
):
    for label, imagenet_name in (("ants", "ant"), ("bees", "bee")):
        seen = []
        for index in range(4):
            top = imagenet_top5(pretrained, photo(sample_dir, label, index))
            seen.append([t["label"].split(",")[0] for t in top])
            assert [t["rank"] for t in top] == [1, 2, 3, 4, 5]
            probs = [t["probability"] for t in top]
            assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
        # a few photos show mostly stones or flowers; most show the insect
        assert sum(imagenet_name in names for names in seen) >= 3, seen
    # pretrained it is sure; random weights spread their bets over the 1,000 classes
    bee = photo(sample_dir, "bees", 1)
    assert imagenet_top5(pretrained, bee)[0]["probability"] > 0.3
    assert imagenet_top5(untrained, bee)[0]["probability"] < 0.15
