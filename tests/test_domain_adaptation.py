"""Domain adaptation: gradient reversal, the shifted target domain, and DANN through the engine."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from domain_runs_fixture import pair_runs
from PIL import Image

from tlcore.errors import ConfigError, DataError
from tlcore.lab.adaptation_runs import comparison_rows, pair_summary, paired_configs
from tlcore.lab.domain_shift import ShiftRecipe, make_shifted_copy
from tlcore.training.config import TrainConfig
from tlcore.training.domain_adaptation import (
    dann_coefficient,
    grad_reverse,
    load_target_domain,
)


@pytest.fixture(scope="module")
def pair(sample_dir, tmp_path_factory):
    return pair_runs(sample_dir, tmp_path_factory.getbasetemp())


def test_gradient_reversal_is_identity_forward_and_flips_gradients_backward():
    x = torch.randn(4, 8, requires_grad=True)
    w = torch.randn(4, 8)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)
    x.grad = None
    (x * w).sum().backward()  # without the layer the gradient is +w
    assert torch.allclose(x.grad, w)


def test_dann_schedule_starts_at_zero_and_approaches_one():
    values = [dann_coefficient(p / 10) for p in range(11)]
    assert values[0] == 0.0 and values[-1] > 0.99
    assert all(a < b for a, b in zip(values, values[1:], strict=False))


def test_shifted_copy_keeps_classes_and_changes_the_look(sample_dir, tmp_path):
    shifted = make_shifted_copy(sample_dir, tmp_path / "target", split="val")
    assert shifted.counts == {"ants": 20, "bees": 20}
    assert not list(tmp_path.glob(".target*"))  # no temp folder left behind
    original = sorted((sample_dir / "val" / "bees").iterdir())[0]
    copy = tmp_path / "target" / "bees" / f"{original.stem}.jpg"
    a = np.asarray(Image.open(original).convert("RGB").resize((64, 64)), dtype=float)
    b = np.asarray(Image.open(copy).convert("RGB").resize((64, 64)), dtype=float)
    assert np.abs(a - b).mean() > 25  # a different camera, not a re-encode
    with pytest.raises(DataError, match="already exists"):
        make_shifted_copy(sample_dir, tmp_path / "target")
    with pytest.raises(ConfigError, match="hue_shift"):
        make_shifted_copy(sample_dir, tmp_path / "other", ShiftRecipe(hue_shift=2))


def test_target_folder_labels_come_from_class_folders_and_bad_files_are_skipped(
    sample_dir, tmp_path
):
    ants = sorted((sample_dir / "val" / "ants").iterdir())
    (tmp_path / "t" / "ants").mkdir(parents=True)
    (tmp_path / "t" / "bees").mkdir()
    shutil.copy(ants[0], tmp_path / "t" / "ants" / "a.jpg")
    shutil.copy(
        sorted((sample_dir / "val" / "bees").iterdir())[0], tmp_path / "t" / "bees" / "b.jpg"
    )
    shutil.copy(ants[1], tmp_path / "t" / "loose.jpg")
    (tmp_path / "t" / "bees" / "broken.jpg").write_bytes(b"not a photo")
    target = load_target_domain(tmp_path / "t", ["ants", "bees"])
    labels = dict(zip((Path(p).name for p in target.paths), target.labels, strict=True))
    assert labels == {"a.jpg": 0, "b.jpg": 1, "loose.jpg": -1}
    assert target.n_labelled == 2 and len(target.skipped) == 1 and "broken.jpg" in target.skipped[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no photos"):
        load_target_domain(tmp_path / "empty", ["ants", "bees"])
    with pytest.raises(DataError, match="does not exist"):
        load_target_domain(tmp_path / "missing", ["ants", "bees"])


def test_config_refuses_dann_settings_that_cannot_work(sample_dir, tmp_path):
    base = {"data": str(sample_dir), "freeze": {"preset": "last-k", "k": 2}}
    with pytest.raises(ConfigError, match="needs target_data"):
        TrainConfig(**base, domain_adaptation="dann").validate()
    with pytest.raises(ConfigError, match="not a folder"):
        TrainConfig(**base, domain_adaptation="dann", target_data=str(tmp_path / "no")).validate()
    with pytest.raises(ConfigError, match="domain_adaptation"):
        TrainConfig(**base, domain_adaptation="coral").validate()
    with pytest.raises(ConfigError, match="dann_weight"):
        TrainConfig(**base, dann_weight=-1.0).validate()
    with pytest.raises(ConfigError, match="trains only the classifier"):
        TrainConfig(
            data=str(sample_dir), domain_adaptation="dann", target_data=str(tmp_path)
        ).validate()
    # the pair widens a head-only plan for both runs, so the baseline stays comparable
    baseline, dann = paired_configs(TrainConfig(data=str(sample_dir)), str(tmp_path), 0.5)
    assert baseline.freeze == dann.freeze == {"preset": "last-k", "k": 2}
    assert (baseline.domain_adaptation, dann.domain_adaptation) == ("none", "dann")
    assert baseline.name.split()[0] == dann.name.split()[0]


def test_dann_and_baseline_runs_train_and_report_source_and_target_accuracy(pair):
    baseline, dann, target = pair
    for run in (baseline, dann):
        (event,) = run.epochs()
        assert event["source_val_acc"] == event["val_acc"] and 0.5 < event["val_acc"] <= 1
        assert 0 <= event["target_acc"] <= 1 and event["target_labelled"] == 40
        assert event["fast_path"] is False
    base_event, dann_event = baseline.epochs()[0], dann.epochs()[0]
    assert "domain_acc" not in base_event
    assert 0 < dann_event["dann_coeff"] <= 1 and math.isfinite(dann_event["domain_loss"])
    assert 0 <= dann_event["domain_acc"] <= 1
    state = torch.load(dann.checkpoints_dir / "last.state.pt", weights_only=True)
    assert set(state["domain_head"]) >= {"net.0.weight", "net.3.weight"}
    assert "domain adaptation (DANN)" in dann.log_path.read_text()
    rows = comparison_rows([baseline, dann])
    summary = pair_summary(rows)
    assert summary is not None
    assert summary["baseline"]["target accuracy"] == base_event["target_acc"]
    assert summary["dann"]["target accuracy"] == dann_event["target_acc"]
    assert summary["dann"]["target folder"] == str(target)


def test_cli_writes_a_demo_target_and_refuses_bad_adapt_input(sample_dir, tmp_path, capsys):
    from tlcore.cli import main

    assert main(["domain-shift", str(sample_dir), str(tmp_path / "t"), "--split", "train"]) == 0
    assert "Wrote 80 shifted photos" in capsys.readouterr().out
    assert main(["domain-shift", str(sample_dir), str(tmp_path / "t")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["adapt", "--data", str(sample_dir), "--target", str(tmp_path / "no")]) == 2
    assert "not a folder or .zip" in capsys.readouterr().err
    assert main(["adapt", "--data", str(sample_dir), "--target", str(tmp_path / "t"),
                 "--dann-weight", "-3"]) == 2  # fmt: skip
    assert "--dann-weight '-3' is not valid" in capsys.readouterr().err


def test_dann_step_sends_the_reversed_domain_gradient_into_the_backbone(sample_dir, tmp_path):
    """Backbone gradient with DANN = class gradient - coeff * weight * domain gradient."""
    from tlcore.lab.fewshot import load_manifest
    from tlcore.training.domain_adaptation import DANNTrainer

    target = load_target_domain(make_shifted_copy(sample_dir, tmp_path / "t").folder, ["a"])
    config = TrainConfig(
        data=str(sample_dir), img_size=64, epochs=2, batch_size=8, augment="none", device="cpu",
        freeze={"preset": "last-k", "k": 2}, target_data=str(target.root), domain_adaptation="dann",
    )  # fmt: skip
    trainer = DANNTrainer(config, load_manifest(sample_dir), target)
    trainer.emit("on_epoch_start", 1)
    source, labels = next(iter(trainer.train_batches(1)))
    target_batch = trainer.next_target_batch()
    trainer.next_target_batch = lambda: target_batch
    trainer.domain_head.eval()  # no dropout: every pass below sees the same network
    trainer.step = trainer.total_steps // 2
    trainer.set_lr(0.0)  # the optimizer step leaves the weights as they are
    param = trainer.model.conv_head.weight
    grads = {}
    for weight in (1.0, 0.0):
        trainer.config.dann_weight = weight
        trainer.train_step(source, labels)
        grads[weight] = param.grad.clone()
    pooled = trainer.model.forward_head(
        trainer.model.forward_features(torch.cat([source, target_batch])), pre_logits=True
    )
    domain = torch.cat([torch.zeros(len(source)), torch.ones(len(target_batch))])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(trainer.domain_head(pooled), domain)
    (plain,) = torch.autograd.grad(loss, param)
    assert 0.5 < trainer.dann_coeff < 1 and plain.abs().sum() > 0
    assert torch.allclose(
        grads[1.0] - grads[0.0], -trainer.dann_coeff * plain, atol=1e-6, rtol=1e-3
    )
