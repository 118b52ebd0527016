"""Grad-CAM on the right layer of real models, mapped back onto the photo; the embedding map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from trained_run_fixture import trained_run_dir

from tlcore.data.dataset import build_transform, resolve_data_config
from tlcore.data.images import load_rgb
from tlcore.data.manifest import Manifest
from tlcore.models.factory import create_model
from tlcore.results.explain import (
    cam_target,
    embedding_map,
    gradcam,
    model_view,
    model_view_box,
    pca_2d,
)
from tlcore.results.predict import Predictor
from tlcore.runs.run import Run
from tlcore.runs.scoring import evaluate_run, load_predictor


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def predictor(run) -> Predictor:
    return load_predictor(run, "last")


def test_gradcam_of_a_well_classified_photo_covers_the_photo(run, predictor):
    report = evaluate_run(run, "last", predictor=predictor, worst_k=40)
    sure = report.worst[-1]  # the lowest loss: right and confident
    assert sure.correct
    image = load_rgb(sure.path)
    cam = gradcam(predictor, sure.path)
    assert cam.label == sure.true and cam.layer == "bn2"
    # the map lies on exactly the pixels the model saw: its input, not the whole photo
    side = predictor.data_config["input_size"][-1]
    assert cam.heatmap.shape == (side, side) and cam.overlay.size == (side, side)
    assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
    assert cam.heatmap.max() > 0.5 and cam.heatmap.std() > 0.05  # not a uniform map
    assert cam.overlay.mode == "RGB"
    assert cam.box == model_view_box(predictor.transform, *image.size)
    assert f"{image.width}×{image.height} photo, seen at {side}×{side}" in cam.view
    seen = np.asarray(model_view(predictor.transform, image), dtype=np.float32)
    # where the heat is ~0 the overlay is the model's view tinted evenly: no frame, no seam
    assert np.corrcoef(seen.mean(2).ravel(), np.asarray(cam.overlay).mean(2).ravel())[0, 1] > 0.5
    assert sum(cam.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert cam.probability == max(cam.probabilities)
    other = gradcam(predictor, image, class_index=1 - cam.class_index)
    assert not np.allclose(other.heatmap, cam.heatmap)  # a different class, a different map


def test_target_layer_is_found_for_cnns_and_transformers():
    resnet = create_model("resnet18", 3, weights="scratch")
    assert cam_target(resnet, (3, 64, 64)).name == "layer4"
    vit = create_model("vit_tiny_patch16_224", 3, weights="scratch")
    target = cam_target(vit, (3, 224, 224))
    assert target.name == "blocks.11.norm1" and target.reshape_transform is not None
    grid = target.reshape_transform(torch.zeros(2, 197, 192))
    assert grid.shape == (2, 192, 14, 14)


def test_model_view_box_follows_resize_and_center_crop():
    model = create_model("tf_efficientnet_lite0", 2, weights="scratch")
    transform = build_transform(resolve_data_config(model, 128), train=False)
    left, top, right, bottom = model_view_box(transform, 320, 240)
    assert right - left == pytest.approx(bottom - top, abs=1.5)  # a square crop
    assert bottom - top == pytest.approx(240 * 0.875, abs=3)  # crop_pct of the short side
    assert left == pytest.approx((320 - (right - left)) / 2, abs=2)


def test_pca_finds_the_main_direction():
    t = torch.linspace(-1, 1, 50)[:, None]
    points = torch.cat([t * 10, t * -5, 0.01 * torch.randn(50, 3)], dim=1)
    coords = pca_2d(points)
    assert coords.shape == (50, 2)
    assert coords[:, 0].abs().max() > 10 and coords[:, 1].abs().max() < 0.1


def test_embedding_map_separates_ants_from_bees(run, predictor):
    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for("val")
    labels = [manifest.classes[it.label] for it in items]
    rows = embedding_map(predictor, [it.path for it in items], labels)
    assert len(rows) == 40 and {r["label"] for r in rows} == {"ants", "bees"}
    assert rows[0]["path"] == items[0].path
    xy = torch.tensor([[r["x"], r["y"]] for r in rows])
    is_ant = torch.tensor([lb == "ants" for lb in labels])
    centroids = torch.stack([xy[is_ant].mean(0), xy[~is_ant].mean(0)])
    nearest = torch.cdist(xy, centroids).argmin(1)
    assert (nearest == (~is_ant).long()).float().mean() >= 0.7
