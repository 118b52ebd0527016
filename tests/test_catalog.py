"""The catalog's numbers are timm's, and availability tells the truth without a network."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from tlcore.errors import ModelError
from tlcore.models.catalog import (
    CATALOG,
    availability,
    bundled_checkpoint_path,
    catalog_entry,
    catalog_rows,
    check_model_name,
    hub_id,
)


def test_catalog_has_bundled_lites_and_a_curated_dozen():
    bundled = [e.name for e in CATALOG if e.bundled]
    assert bundled == ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
    hub = [e for e in CATALOG if not e.bundled]
    assert len(hub) >= 12
    families = {e.family for e in hub}
    assert {"ResNet", "MobileNetV3", "EfficientNet", "ConvNeXt", "ViT", "RegNet"} <= families
    for entry in CATALOG:
        assert timm.is_model(entry.name), entry.name
        assert entry.top1 is None or 50 < entry.top1 < 90


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.name)
def test_params_and_input_size_match_timm(entry):
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = timm.create_model(entry.name)
    n = sum(p.numel() for p in model.parameters())
    assert entry.params_m == pytest.approx(n / 1e6, abs=0.001)
    assert entry.input_size == model.pretrained_cfg["input_size"][-1]


def test_lite0_is_bundled_and_available_offline():
    path = bundled_checkpoint_path("tf_efficientnet_lite0")
    assert path is not None and path.name.endswith(".pth")
    assert availability("tf_efficientnet_lite0") == "bundled"
    assert catalog_entry("tf_efficientnet_lite0.in1k").name == "tf_efficientnet_lite0"


def test_hub_model_needs_internet_until_it_is_in_the_hf_cache(tmp_path):
    cache = tmp_path / "hub"
    assert availability("resnet18", cache_dir=cache) == "needs internet"
    # The real huggingface_hub cache layout: refs/main -> snapshots/<rev>/<file>.
    repo = cache / ("models--" + hub_id("resnet18").replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"x")
    assert availability("resnet18", cache_dir=cache) == "cached"


def test_unknown_name_suggests_close_matches():
    assert check_model_name("resnet18") == "resnet18"
    with pytest.raises(ModelError) as err:
        check_model_name("resnt18")
    assert "resnet18" in str(err.value) and "Did you mean" in str(err.value)


def test_catalog_rows_are_json_with_availability():
    rows = catalog_rows()
    json.dumps(rows)
    assert rows[0]["name"] == "tf_efficientnet_lite0"
    assert rows[0]["availability"] == "bundled"
    assert {r["availability"] for r in rows} <= {"bundled", "cached", "needs internet"}
