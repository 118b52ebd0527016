"""Decoded-image cache: each photo decoded once, same pixels, random augmentation kept, bounded RAM."""

from __future__ import annotations

import math
import shutil
import tracemalloc

import numpy as np
import pytest
import timm
import torch

import tlcore.data.decoded_cache as decoded_cache
from tlcore.data.dataset import (
    ManifestDataset,
    build_transform,
    resolve_data_config,
    with_decoded_cache,
)
from tlcore.data.decoded_cache import DecodedImageCache, ShortSide, split_transform
from tlcore.data.loading import collate_fn
from tlcore.data.manifest import Manifest, ManifestItem
from tlcore.data.prepare import prepare_data
from tlcore.errors import DataError


@pytest.fixture(scope="module")
def manifest(sample_dir, tmp_path_factory):
    return prepare_data(sample_dir, manifest_path=tmp_path_factory.mktemp("m") / "m.json").manifest


@pytest.fixture(scope="module")
def data_config():
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    return resolve_data_config(model, img_size=64)


@pytest.fixture
def decode_count(monkeypatch):
    """How many times the cache decoded a file."""
    calls = []
    real = decoded_cache.load_rgb

    def counting(path, **kwargs):
        calls.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(decoded_cache, "load_rgb", counting)
    return calls


def test_eval_images_are_identical_and_decoded_once(manifest, data_config, decode_count, tmp_path):
    plain = ManifestDataset(manifest, "val", build_transform(data_config, train=False))
    cached = with_decoded_cache(plain, "auto", tmp_path)
    collate = collate_fn(cached)  # ToTensor + Normalize run once per batch, same numbers
    for _ in range(2):  # two epochs
        for i in range(len(plain)):
            assert cached[i][0].dtype == torch.uint8
            images, labels = collate([cached[i]])
            expected, expected_label = plain[i]
            assert torch.equal(images[0], expected) and labels.item() == expected_label
    assert len(decode_count) == len(plain)  # the second epoch decoded nothing
    # the kept pixels are the Resize + CenterCrop output, not the full photo
    assert cached.decoded.pixels(0).shape == (64, 64, 3)
    assert cached.decoded.cached == len(plain) and cached.decoded.disk_bytes == 0


def test_training_images_keep_random_augmentation(manifest, data_config, decode_count, tmp_path):
    transform = build_transform(data_config, train=True, augment="light")
    presize, per_epoch = split_transform(transform)
    side = math.ceil(64 / math.sqrt(0.6))  # light: the smallest crop is 60% of the area
    assert isinstance(presize, ShortSide) and presize.side == side and per_epoch is transform
    cached = with_decoded_cache(ManifestDataset(manifest, "train", transform), "memory", tmp_path)
    torch.manual_seed(0)
    first = [cached[i][0] for i in range(8)]
    second = [cached[i][0] for i in range(8)]
    assert all(x.shape == (3, 64, 64) for x in first)
    assert not all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert len(decode_count) == 8
    assert min(cached.decoded.pixels(0).shape[:2]) == side  # sample photos are 320x240


def test_memory_budget_spills_to_disk_with_the_same_pixels(manifest, tmp_path):
    paths = [item.path for item in manifest.items_for("train")][:24]
    memory = DecodedImageCache(paths, lambda im: im, mode="memory")
    memory.fill(threads=2)
    one_image = memory.pixels(0).nbytes
    spill = DecodedImageCache(paths, lambda im: im, directory=tmp_path, memory_budget=3 * one_image)
    spill.fill(threads=2)
    assert spill.memory_bytes <= 3 * one_image and spill.disk_bytes > 10 * one_image
    for i in range(len(paths)):
        np.testing.assert_array_equal(spill.pixels(i), memory.pixels(i))
    assert spill.file.is_file()
    spill.close()
    assert not spill.file.exists()


def test_disk_mode_keeps_peak_memory_bounded(manifest, tmp_path):
    paths = [item.path for item in manifest.items_for("train")]
    cache = DecodedImageCache(paths, lambda im: im, mode="disk", directory=tmp_path)
    tracemalloc.start()
    try:
        cache.fill(threads=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cache.memory_bytes == 0 and cache.cached == len(paths)
    assert peak < cache.disk_bytes / 4, (peak, cache.disk_bytes)  # a few chunks, not all images
    assert cache.pixels(len(paths) - 1).shape[2] == 3


def test_a_file_that_vanished_is_a_data_error(sample_dir, tmp_path):
    source = next((sample_dir / "train" / "ants").glob("*.jpg"))
    copy = tmp_path / "ant.jpg"
    shutil.copy(source, copy)
    manifest = Manifest(str(tmp_path), ["ants"], [ManifestItem(str(copy), 0, "train")])
    cached = with_decoded_cache(ManifestDataset(manifest, "train", lambda im: im), "auto")
    copy.unlink()
    with pytest.raises(DataError, match="changed since the dataset was checked"):
        cached[0]
