"""Loaders fitted to the machine, reused every epoch, and the Trainer decoding each image once."""

from __future__ import annotations

import os

import pytest
import timm
import torch

import tlcore.data.dataset as dataset_module
import tlcore.data.decoded_cache as decoded_cache
from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config
from tlcore.data.loading import EpochLoaders, auto_num_workers
from tlcore.data.prepare import prepare_data
from tlcore.errors import ConfigError
from tlcore.training.config import TrainConfig
from tlcore.training.trainer import Trainer


@pytest.fixture(scope="module")
def manifest(sample_dir, tmp_path_factory):
    return prepare_data(sample_dir, manifest_path=tmp_path_factory.mktemp("m") / "m.json").manifest


@pytest.mark.parametrize(
    ("cores", "device", "n_items", "expected"),
    [(16, "cuda", 10_000, 8), (4, "cuda", 10_000, 4), (16, "cpu", 10_000, 4),
     (2, "cpu", 10_000, 0), (16, "cuda", 40, 0)],
)  # fmt: skip
def test_auto_workers_fit_the_machine(monkeypatch, cores, device, n_items, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert auto_num_workers(torch.device(device), n_items, batch_size=16) == expected


def test_one_loader_per_dataset_follows_each_epoch_order_with_workers(manifest):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=2)
    transform = build_transform(resolve_data_config(model, 32), train=False)
    val = ManifestDataset(manifest, "val", transform)
    loaders = EpochLoaders(batch_size=8, device=torch.device("cpu"), num_workers=2)
    try:
        labels = [item.label for item in val.items]
        orders = [list(range(len(val)))[::-1][:20], list(range(0, len(val), 2))]
        seen_iterators = set()
        for order in orders:
            loader = loaders.get(val, order)
            got = torch.cat([y for _, y in loader]).tolist()
            assert got == [labels[i] for i in order]
            seen_iterators.add(id(loader._iterator))
        assert loader.persistent_workers and len(seen_iterators) == 1  # workers kept
        # workers cannot store what they decode, so the images were decoded before they started
        assert loader.dataset.decoded.cached == len(val)
    finally:
        loaders.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("decoded_cache", "ram"), ("compile", "yes"), ("num_workers", -1), ("num_workers", 1.5)],
)
def test_bad_loading_options_are_config_errors(sample_dir, field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(data=str(sample_dir), **{field: value}).validate()


def count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    for module in (dataset_module, decoded_cache):
        real = module.load_rgb
        monkeypatch.setattr(module, "load_rgb", lambda p, _real=real, **kw: calls.append(p) or _real(p, **kw))  # fmt: skip
    return calls


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_trainer_decodes_each_image_once_per_run(manifest, sample_dir, monkeypatch, mode):
    calls = count_decodes(monkeypatch)
    config = TrainConfig(data=str(sample_dir), epochs=2, img_size=48, batch_size=32,
                         augment="light", decoded_cache=mode)  # fmt: skip
    trainer = Trainer(config, manifest)
    assert not trainer.fast_path  # augmentation: the full model runs every epoch
    assert trainer.fit() == "finished"
    n_images = len(trainer.train_set) + len(trainer.val_set)
    assert len(calls) == (n_images if mode == "auto" else 2 * n_images)
    # batches (normalized whole, from kept pixels or not) hold exactly the per-image tensors
    images, _ = next(iter(trainer.loader(trainer.val_set)))
    assert torch.equal(images, torch.stack([trainer.val_set[i][0] for i in range(len(images))]))
