"""VGG16 and Inception v3, the classics of transfer-learning tutorials, work like every backbone.

Hub weights need the internet, so the networks get random weights (filled fast on
an uninitialised copy: timm's own init of VGG16's 138M weights takes longer than
all these checks) and tiny photos; what is checked does not depend on the weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

from tlcore.data.images import load_rgb
from tlcore.export import graph_export
from tlcore.models.catalog import catalog_entry
from tlcore.models.freezing import FreezePlan, apply_freeze, layer_groups
from tlcore.results.explain import cam_target, gradcam
from tlcore.results.predict import Predictor

# name -> (tiny input size, classifier, Grad-CAM layer); Inception needs 139 px for a 3x3 map
CLASSICS = {"vgg16": (64, "head.fc", "features"), "inception_v3": (139, "fc", "Mixed_7c")}


def random_model(name: str, num_classes: int = 2) -> nn.Module:
    with torch.device("meta"):
        model = timm.create_model(name, num_classes=num_classes)
    model = model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.02, generator=generator)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
    return model.eval()


@pytest.fixture(scope="module", params=list(CLASSICS))
def classic(request) -> tuple[str, nn.Module]:
    return request.param, random_model(request.param)


def test_catalog_says_what_they_cost(classic):
    name, _ = classic
    entry = catalog_entry(name)
    assert entry is not None and not entry.bundled and entry.family in ("VGG", "Inception")
    assert "MB" in entry.note and "GMACs" in entry.note  # honest size and speed notes


def test_layer_groups_presets_and_progressive_unfreezing(classic):
    name, model = classic
    groups = layer_groups(model)
    params = dict(model.named_parameters())
    assert sorted(n for g in groups for n in g.param_names) == sorted(params)
    head = CLASSICS[name][1]
    assert groups[-1].name == "head" and {n.rsplit(".", 1)[0] for n in groups[-1].param_names} == {
        head
    }
    if name == "vgg16":  # fc6/fc7 (119M weights) are their own group, not part of "head"
        assert groups[-2].param_names[0].startswith("pre_logits.") and groups[-2].n_params > 1e8
    features = apply_freeze(model, groups, FreezePlan.parse("features"), 0)
    assert features == groups[-1].n_params < 0.1 * sum(p.numel() for p in params.values())
    progressive = FreezePlan.parse("progressive")
    trained = [apply_freeze(model, groups, progressive, epoch) for epoch in range(3)]
    assert trained == [sum(g.n_params for g in groups[-k:]) for k in (1, 2, 3)]
    assert not params[groups[0].param_names[0]].requires_grad  # the stem is still frozen


def test_gradcam_explains_the_last_feature_map(classic, sample_dir):
    name, model = classic
    size, _, layer = CLASSICS[name]
    assert cam_target(model, (3, size, size)).name == layer
    # Only the stem's weights get gradients: the heat map needs the gradients of the
    # activations (which still flow through every layer), not VGG's 138M weight gradients.
    groups = layer_groups(model)
    stem_only = FreezePlan("custom", trainable=[i == 0 for i in range(len(groups))])
    apply_freeze(model, groups, stem_only, 0)
    predictor = Predictor(model, ["ants", "bees"], size, model_name=name)
    photo = load_rgb(sorted((sample_dir / "val" / "bees").iterdir())[0])
    cam = gradcam(predictor, photo)
    assert cam.layer == layer and cam.heatmap.shape == (size, size)
    assert np.isfinite(cam.heatmap).all() and cam.heatmap.max() > 0


def test_inception_exports_to_onnx_that_matches_pytorch(sample_dir, tmp_path):
    model = random_model("inception_v3")
    predictor = Predictor(model, ["ants", "bees"], 75)  # Inception's smallest input
    photos = sorted((sample_dir / "val" / "ants").iterdir())[:2]
    images = torch.stack([predictor.preprocess(p) for p in photos])
    check = graph_export.export_onnx(model, images, tmp_path / "m.onnx", {"classes": 2})
    assert check.passed and check.max_abs_diff < 1e-3, check
