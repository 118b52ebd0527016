"""The LR range test: an exponential sweep, stopped when the loss explodes, and a suggestion."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from tlcore.data.prepare import prepare_data
from tlcore.models.factory import create_model
from tlcore.training.config import TrainConfig
from tlcore.training.lr_find import lr_find, valley


def test_sweep_on_a_copy_suggests_a_learning_rate_that_trains(sample_dir, tmp_path):
    manifest = prepare_data(sample_dir, manifest_path=tmp_path / "m.json").manifest
    config = TrainConfig(data=str(sample_dir), img_size=96, augment="none", optimizer="sgd")
    # the new head's start and the sweep's dropout draw from torch's global generator: seeded
    # here, the test does not depend on which tests ran before it in this worker (16 seeds
    # tried: the suggestion's loss was below the first in all; one unseeded CI run was not)
    torch.manual_seed(0)
    model = create_model("tf_efficientnet_lite0", 2, "bundled")
    head_before = model.get_classifier().weight.detach().clone()
    result = lr_find(config, manifest, num_steps=60, start_lr=1e-6, end_lr=100, model=model)
    assert (model.get_classifier().weight == head_before).all()  # the caller's model is untouched
    assert result.fast_path
    lrs = result.lrs
    assert lrs[0] == 1e-6 and all(b > a for a, b in zip(lrs, lrs[1:], strict=False))
    assert result.diverged and len(lrs) < 60  # SGD at lr 100 blows up: the sweep stops early
    assert lrs[0] < result.suggested_lr < lrs[-1]
    i = lrs.index(result.suggested_lr)
    assert result.losses[i] < result.losses[0]  # at the suggestion the loss is falling


def test_valley_picks_the_long_descent():
    lrs = [10 ** (-6 + i * 0.25) for i in range(20)]
    losses = [1.0] * 4 + [1.0 - 0.1 * i for i in range(1, 10)] + [2.0] * 7
    assert lrs[4] < valley(lrs, losses) < lrs[12]


def test_cli_json(sample_dir):
    done = subprocess.run(
        [sys.executable, "-m", "tlcore", "lr-find", "--data", str(sample_dir), "--img-size", "64",
         "--steps", "30", "--json"],
        capture_output=True, text=True, timeout=600, env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["lrs"]) == len(result["losses"]) > 5
    assert 1e-7 <= result["suggested_lr"] <= 10
    assert "suggested lr" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "tlcore", "lr-find", "--data", str(sample_dir),
                          "--steps", "2"], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "--steps" in bad.stderr
