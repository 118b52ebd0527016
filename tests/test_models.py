"""create_model: bundled ImageNet weights that really work offline, and a new head."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from tlcore.errors import ModelError, WeightsError
from tlcore.models.catalog import bundled_checkpoint_path, default_weights
from tlcore.models.factory import (
    create_model,
    imagenet_class_names,
    imagenet_top_k,
)

COFFEE = Path(__file__).parent / "data" / "coffee.jpg"


def test_offline_bundled_lite0_sees_espresso_in_the_coffee_photo():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    model = create_model("tf_efficientnet_lite0", num_classes=None)  # bundled is the default
    top = imagenet_top_k(model, Image.open(COFFEE), k=3)
    index, name, prob = top[0]
    assert (index, name) == (967, "espresso")
    assert prob > 0.9


@pytest.mark.parametrize("name", ["tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_optional_bundled_lites_also_see_espresso(name):
    if bundled_checkpoint_path(name) is None:
        with pytest.raises(WeightsError, match="not installed"):
            create_model(name, None, weights="bundled")
        return
    top = imagenet_top_k(create_model(name, None), Image.open(COFFEE), k=1)
    assert top[0][:2] == (967, "espresso")


def test_new_head_replaces_the_classifier_and_keeps_the_backbone():
    source = torch.load(bundled_checkpoint_path("tf_efficientnet_lite0"), weights_only=True)
    model = create_model("tf_efficientnet_lite0", num_classes=5, drop_rate=0.3)
    assert model.classifier.out_features == 5 and model.num_classes == 5
    assert model.drop_rate == 0.3
    assert torch.equal(model.conv_stem.weight, source["_conv_stem.weight"])
    assert torch.equal(
        model.blocks[6][0].conv_pwl.weight, source["_blocks.15._project_conv.weight"]
    )
    assert model.weights_report.head_reset
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5)


def test_scratch_is_random_and_sized_for_the_classes():
    model = create_model("tf_efficientnet_lite0", num_classes=2, weights="scratch")
    bundled = create_model("tf_efficientnet_lite0", num_classes=2)
    assert model.classifier.out_features == 2
    assert not torch.equal(model.conv_stem.weight, bundled.conv_stem.weight)
    assert model.weights_report.source == "scratch"


def test_imagenet_class_names_work_offline():
    names = imagenet_class_names()
    assert len(names) == 1000 and names[967] == "espresso"


def test_default_weights_and_bad_inputs_are_explained():
    assert default_weights("tf_efficientnet_lite0") == "bundled"
    assert default_weights("resnet18") == "hub"
    with pytest.raises(WeightsError, match="Unknown weights source"):
        create_model("resnet18", 2, weights="imagenet")
    with pytest.raises(WeightsError, match="no bundled weights"):
        create_model("resnet18", 2, weights="bundled")
    with pytest.raises(ModelError, match="Did you mean"):
        create_model("efficientnet_lite00", 2, weights="scratch")
    with pytest.raises(ModelError, match="num_classes"):
        create_model("resnet18", 0, weights="scratch")
    with pytest.raises(ModelError, match="drop_rate"):
        create_model("resnet18", 2, weights="scratch", drop_rate=1.5)
    model = create_model("resnet18", 3, weights="scratch")
    with pytest.raises(ModelError, match="new head"):
        imagenet_top_k(model, Image.open(COFFEE))
