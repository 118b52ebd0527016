"""Weight sources: bundled mapping, hub failure advice, and safe, explained file loading."""

from __future__ import annotations

import os
import pickle
import time

import pytest
import timm
import torch
from safetensors.torch import save_file

from tlcore.errors import WeightsError
from tlcore.models.catalog import availability, bundled_checkpoint_path, hub_id
from tlcore.models.factory import create_model
from tlcore.models.weights import map_positional_state_dict, read_checkpoint


class WritesMarker:
    """Unpickling this would run open(marker, 'w') — the attack a .pth can carry."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def lite0_source() -> dict[str, torch.Tensor]:
    return torch.load(bundled_checkpoint_path("tf_efficientnet_lite0"), weights_only=True)


def test_bundled_lite0_maps_every_tensor_in_order():
    source = lite0_source()
    model = timm.create_model("tf_efficientnet_lite0")
    mapped = map_positional_state_dict(source, model.state_dict(), "lite0")
    assert len(source) == len(mapped) == 296
    assert torch.equal(mapped["conv_stem.weight"], source["_conv_stem.weight"])
    assert torch.equal(mapped["classifier.weight"], source["_fc.weight"])


def test_bundled_mapping_fails_loudly_on_shape_or_count_mismatch():
    source = lite0_source()
    target = timm.create_model("tf_efficientnet_lite0").state_dict()
    bad = dict(source)
    bad["_blocks.3._expand_conv.weight"] = torch.zeros(1, 1, 1, 1)
    with pytest.raises(WeightsError, match="does not line up"):
        map_positional_state_dict(bad, target, "lite0")
    lite2 = timm.create_model("tf_efficientnet_lite2").state_dict()
    with pytest.raises(WeightsError, match="tensors"):
        map_positional_state_dict(source, lite2, "lite0")


def test_bundled_mapping_skips_bn_counters_present_on_one_side_only():
    source = {k: v for k, v in lite0_source().items() if not k.endswith("num_batches_tracked")}
    target = timm.create_model("tf_efficientnet_lite0").state_dict()
    mapped = map_positional_state_dict(source, target, "lite0")
    assert len(mapped) == 296 - 49
    assert not any(k.endswith("num_batches_tracked") for k in mapped)


def test_hub_without_network_is_a_clear_actionable_error():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(WeightsError) as err:
        create_model("resnet18", num_classes=2, weights="hub")
    text = str(err.value)
    assert "resnet18" in text and "unreachable" in text
    assert "tf_efficientnet_lite0" in text and "scratch" in text and ".safetensors" in text
    assert "Traceback" not in text


def test_hub_unreachable_without_offline_mode_fails_fast(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens here
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    start = time.monotonic()
    with pytest.raises(WeightsError, match="unreachable.*Alternatives"):
        create_model("resnet18", num_classes=2, weights="hub")
    assert time.monotonic() - start < 15


def test_hub_weights_already_in_the_hf_cache_load_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert availability("resnet18") == "needs internet"
    src = create_model("resnet18", num_classes=None, weights="scratch")
    repo = cache / ("models--" + hub_id("resnet18").replace("/", "--"))
    snap = repo / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    save_file(
        {k: v.contiguous() for k, v in src.state_dict().items()}, str(snap / "model.safetensors")
    )
    assert availability("resnet18") == "cached"
    model = create_model("resnet18", num_classes=3, weights="hub")
    assert torch.equal(model.conv1.weight, src.conv1.weight)
    assert model.fc.out_features == 3


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.pth"
    payload = {"state_dict": WritesMarker(str(marker))}
    if writer == "torch.save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(WeightsError) as err:
        create_model("resnet18", num_classes=2, weights=str(evil))
    assert "refused" in str(err.value) and "never runs code" in str(err.value)
    assert not marker.exists()
    # Control: an unsafe load of the same file really would have run the payload.
    if writer == "torch.save":
        torch.load(evil, weights_only=False)
    else:
        pickle.loads(evil.read_bytes())
    assert marker.read_text() == "pwned"


def test_whole_pickled_model_is_refused_with_advice(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError, match=r"state_dict\(\)"):
        read_checkpoint(path)


def test_file_with_other_class_count_keeps_backbone_and_resets_head(tmp_path):
    src = create_model("tf_efficientnet_lite0", num_classes=5, weights="scratch")
    path = tmp_path / "five.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = create_model("tf_efficientnet_lite0", num_classes=3, weights=str(path))
    report = model.weights_report
    assert report.head_reset and report.missing == [] and report.unexpected == []
    assert any("re-initialised" in m for m in report.messages)
    assert torch.equal(model.conv_stem.weight, src.conv_stem.weight)
    assert model.classifier.out_features == 3


def test_same_class_count_file_restores_the_head_too(tmp_path):
    src = create_model("resnet18", num_classes=4, weights="scratch")
    path = tmp_path / "ckpt.pth"
    wrapped = {"epoch": 3, "state_dict": {"module." + k: v for k, v in src.state_dict().items()}}
    torch.save(wrapped, path)
    model = create_model("resnet18", num_classes=4, weights=str(path))
    assert not model.weights_report.head_reset
    assert torch.equal(model.fc.weight, src.fc.weight)


def test_missing_and_unexpected_keys_are_reported_in_words(tmp_path):
    state = create_model("resnet18", num_classes=None, weights="scratch").state_dict()
    state.pop("layer4.1.conv2.weight")
    state["extra.projection.weight"] = torch.zeros(3)
    path = tmp_path / "partial.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    report = create_model("resnet18", num_classes=None, weights=str(path)).weights_report
    assert report.missing == ["layer4.1.conv2.weight"]
    assert report.unexpected == ["extra.projection.weight"]
    text = " ".join(report.messages)
    assert "keep their random initial values: 'layer4.1.conv2.weight'" in text
    assert "do not belong to this model and were ignored: 'extra.projection.weight'" in text


def test_checkpoint_of_another_architecture_is_explained(tmp_path):
    state = create_model("resnet18", num_classes=None, weights="scratch").state_dict()
    path = tmp_path / "resnet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(WeightsError, match="another architecture"):
        create_model("tf_efficientnet_lite0", num_classes=2, weights=str(path))
    # Same names, other sizes (resnet34 has resnet18's names for its first blocks).
    other = create_model("resnet34", num_classes=None, weights="scratch").state_dict()
    wide = {k: v for k, v in other.items() if k in state}
    wide["layer1.0.conv1.weight"] = torch.zeros(128, 64, 3, 3)
    path2 = tmp_path / "wide.safetensors"
    save_file({k: v.contiguous() for k, v in wide.items()}, str(path2))
    with pytest.raises(WeightsError, match="other shapes"):
        create_model("resnet18", num_classes=2, weights=str(path2))


def test_unreadable_or_unsupported_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        read_checkpoint(tmp_path / "nope.pth")
    bad = tmp_path / "weights.h5"
    bad.write_bytes(b"x")
    with pytest.raises(WeightsError, match="Unknown weights source"):
        create_model("resnet18", 2, weights=str(bad))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not really")
    with pytest.raises(WeightsError, match="safetensors"):
        read_checkpoint(broken)
    empty = tmp_path / "opt.pth"
    torch.save({"lr": 0.1, "step": 3}, empty)
    with pytest.raises(WeightsError, match="no weight tensors"):
        read_checkpoint(empty)
