"""Each photo goes through the backbone once per backbone and size, whichever page asks first.

A few real ants/bees photos at a tiny size, as a newcomer would go: the data doctor,
then a default training run (feature extraction) with its calibration and "none of these"
fit, then the transfer-learning ladder and the Evaluate page's embedding map before and
after training. The backbone's ``forward_features`` counts the photos it sees: the doctor
embeds each of the user's photos once, and nothing after it embeds one of them again; the
outside photos "none of these" is measured on are embedded by the first run only.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from timm.models.efficientnet import EfficientNet

from tlcore.data.prepare import prepare_data
from tlcore.lab.fewshot import Embedder
from tlcore.lab.ladder import transfer_ladder
from tlcore.results.doctor import diagnose, embed_photos
from tlcore.results.explain import embedding_map, map_rows, pca_2d
from tlcore.runs import worker
from tlcore.runs.checkpoint_model import raw_predictor
from tlcore.runs.outputs import validation_outputs
from tlcore.runs.run import Run
from tlcore.runs.trust_store import reference_photos
from tlcore.training import embedding_cache
from tlcore.training.config import TrainConfig

IMG_SIZE = 32  # the smallest size the backbone takes without trouble: the count is the point
PER_CLASS = {"train": 3, "val": 2}


@pytest.fixture
def seen(monkeypatch) -> list[int]:
    """How many images went through the backbone, call by call (every pass, whoever asks)."""
    counts: list[int] = []
    real = EfficientNet.forward_features

    def counting(self, x):
        counts.append(len(x))
        return real(self, x)

    monkeypatch.setattr(EfficientNet, "forward_features", counting)
    return counts


def test_each_photo_goes_through_the_backbone_once(sample_dir, tmp_path, seen):
    data = tmp_path / "photos"
    for split, n in PER_CLASS.items():
        for kind in ("ants", "bees"):
            (data / split / kind).mkdir(parents=True)
            for photo in sorted((sample_dir / split / kind).glob("*.jpg"))[:n]:
                shutil.copy(photo, data / split / kind)
    manifest = prepare_data(data, manifest_path=tmp_path / "m.json").manifest
    n = len(manifest.items)

    report = diagnose(manifest, img_size=IMG_SIZE, device="cpu")  # the app's cache folder
    assert not report.cache_hit and sum(seen) == n

    config = TrainConfig(data=str(data), epochs=1, img_size=IMG_SIZE, device="cpu")
    run = Run.create(config)
    assert worker.train_run(run, resume=False) == "finished"
    outside, _ = reference_photos(run)
    assert outside and run.summary().get("state") == "finished"
    # training, calibration and "none of these" read the doctor's rows; only the outside
    # photos "none of these" is measured on are new
    assert sum(seen) == n + len(outside)

    # the Few-shot page's embedder at the size training used
    few = Embedder(img_size=IMG_SIZE, device="cpu")
    ladder = transfer_ladder(data, shots=(1, 2), repeats=2, embedder=few)
    assert ladder.n_val == len(manifest.items_for("val"))
    paths = [item.path for item in manifest.items_for("val")]
    labels = [manifest.classes[item.label] for item in manifest.items_for("val")]
    after = map_rows(validation_outputs(run, "best").features, labels, paths)
    before = embedding_map(raw_predictor(run, "best"), paths, labels, pretrained=True)
    assert len(before) == len(after) == len(paths)
    assert sum(seen) == n + len(outside)  # the ladder and both maps: nothing embedded again

    again = Run.create(TrainConfig(data=str(data), epochs=2, img_size=IMG_SIZE, device="cpu"))
    assert worker.train_run(again, resume=False) == "finished"
    assert sum(seen) == n + len(outside)  # a second run: not even the outside photos
    assert len(list(embedding_cache.folder().glob("items-*.safetensors"))) == 1


def test_the_maps_projection_draws_the_exact_pcas_picture(sample_dir):
    """The randomized SVD that replaced the exact one puts every photo where the exact PCA did."""
    paths = sorted(str(p) for p in sample_dir.glob("*/*/*.jpg"))
    features, _ = embed_photos(paths, img_size=IMG_SIZE, device="cpu")
    x = features.double() - features.double().mean(dim=0, keepdim=True)
    axes = torch.linalg.svd(x, full_matrices=False)[2][:2]
    axes = axes * torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))
    exact = (x @ axes.T).float()
    drawn = pca_2d(features)
    assert drawn.shape == (len(paths), 2) and len(paths) > 100
    assert (drawn - exact).abs().max() < 1e-3 * exact.abs().max()  # invisible on the map
