"""The torch Dataset: model-driven preprocessing, augmentation presets, load_rgb semantics."""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms.functional import pil_to_tensor

from tlcore.data.dataset import (
    AUGMENT_PRESETS,
    ManifestDataset,
    build_transform,
    resolve_data_config,
)
from tlcore.data.manifest import Manifest, ManifestItem
from tlcore.data.prepare import prepare_data
from tlcore.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def data_config():
    model = timm.create_model("resnet18", pretrained=False, num_classes=2)
    return resolve_data_config(model, img_size=64)


@pytest.fixture(scope="module")
def sample_manifest(sample_dir, tmp_path_factory):
    return prepare_data(sample_dir, manifest_path=tmp_path_factory.mktemp("m") / "m.json").manifest


def test_data_config_comes_from_the_model(data_config):
    assert data_config["input_size"] == (3, 64, 64)
    assert data_config["mean"] == pytest.approx((0.485, 0.456, 0.406))
    model = timm.create_model("resnet18", pretrained=False, num_classes=2)
    assert resolve_data_config(model)["input_size"] == (3, 224, 224)
    with pytest.raises(ConfigError):
        resolve_data_config(model, img_size=4)


def test_eval_transform_is_deterministic_and_train_presets_differ(data_config, sample_dir):
    image = Image.open(next((sample_dir / "train" / "ants").glob("*.jpg"))).convert("RGB")
    eval_tf = build_transform(data_config, train=False)
    a, b = eval_tf(image), eval_tf(image)
    assert a.shape == (3, 64, 64) and a.dtype == torch.float32 and torch.equal(a, b)
    none_tf = build_transform(data_config, train=True, augment="none")
    assert torch.equal(none_tf(image), a)
    for preset in ("light", "strong"):
        tf = build_transform(data_config, train=True, augment=preset)
        torch.manual_seed(0)
        outs = [tf(image) for _ in range(4)]
        assert all(o.shape == (3, 64, 64) for o in outs)
        assert any(not torch.equal(outs[0], o) for o in outs[1:]), preset
    assert AUGMENT_PRESETS == ("none", "light", "strong")
    with pytest.raises(ConfigError, match="augment"):
        build_transform(data_config, train=True, augment="extreme")


def test_dataset_over_sample_manifest_batches(sample_manifest, data_config):
    train = ManifestDataset(sample_manifest, "train", build_transform(data_config, train=True))
    val = ManifestDataset(sample_manifest, "val", build_transform(data_config, train=False))
    assert (len(train), len(val)) == (80, 40)
    assert sorted(set(train.labels)) == [0, 1] and train.classes == ["ants", "bees"]
    x, y = next(iter(DataLoader(val, batch_size=8, shuffle=False)))
    assert x.shape == (8, 3, 64, 64) and y.dtype == torch.int64
    tensor, label = train[len(train) - 1]
    assert tensor.shape == (3, 64, 64) and label == 1


def test_dataset_images_are_upright_rgb_like_the_report(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (80, 40), (0, 200, 0)).save(tmp_path / "side.jpg", exif=exif)
    Image.new("CMYK", (30, 20), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    manifest = Manifest(
        str(tmp_path),
        ["a", "b"],
        [
            ManifestItem(str(tmp_path / "side.jpg"), 0, "train"),
            ManifestItem(str(tmp_path / "cmyk.jpg"), 1, "train"),
        ],
    )
    ds = ManifestDataset(manifest, "train", pil_to_tensor)
    assert ds[0][0].shape == (3, 80, 40)  # rotated upright: 40 wide, 80 tall
    assert ds[1][0].shape == (3, 20, 30) and ds[1][1] == 1
    (tmp_path / "side.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="inspect it again"):
        ds[0]
