"""The generated train.py: torch/timm only, same split, same freeze plan, and it really trains."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.export.exporter import export_run
from tlcore.export.reproduce import (
    INITIAL_WEIGHTS_FILE,
    SCRIPT_FILE,
    SPLIT_FILE,
    write_reproduction,
)
from tlcore.models.factory import create_model
from tlcore.models.freezing import FreezePlan, apply_freeze, layer_groups, set_frozen_bn_eval
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig
from tlcore.training.trainer import lr_factor

ALLOWED_IMPORTS = {"argparse", "json", "math", "random", "pathlib", "timm", "torch", "PIL"}


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    return names


def test_the_script_retrains_one_epoch_on_the_same_split_offline(run, tmp_path):
    result = export_run(run, "script", tmp_path / "reproduce.zip")
    folder = tmp_path / "handout"
    with zipfile.ZipFile(result.path) as zf:
        zf.extractall(folder)
    script = (folder / SCRIPT_FILE).read_text()
    assert imported_modules(script) <= ALLOWED_IMPORTS
    manifest = Manifest.load(run.manifest_path)
    split = json.loads((folder / SPLIT_FILE).read_text())
    for name in ("train", "val"):
        expected = [[Path(it.path).relative_to(manifest.root).as_posix(), it.label]
                    for it in manifest.items_for(name)]  # fmt: skip
        assert split[name] == expected
    # the bundled lite0 ImageNet weights the run started from, as a plain state dict
    initial = torch.load(folder / INITIAL_WEIGHTS_FILE, weights_only=True)
    trained = load_file(str(run.checkpoints_dir / "best.safetensors"))
    assert torch.equal(initial["conv_stem.weight"], trained["conv_stem.weight"])  # frozen stem
    assert initial["classifier.weight"].shape[0] == 1000
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"

    def train(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, SCRIPT_FILE, *args, "--out", str(tmp_path / "out")],
            capture_output=True, text=True, cwd=folder, env=env, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "train: 80 photos, val: 40 photos, classes: ['ants', 'bees']" in done.stdout
        model = timm.create_model(run.config.model, num_classes=2)
        model.load_state_dict(torch.load(tmp_path / "out" / "model.pt", weights_only=True))
        summary = json.loads((tmp_path / "out" / "result.json").read_text())
        assert summary["classes"] == ["ants", "bees"]
        return summary | {"stdout": done.stdout}

    # the run solved its head (L-BFGS, C by cross-validation): so does the script, by default
    final = run.epochs()[-1]
    solved = train()
    assert "head solved (L-BFGS" in solved["stdout"] and solved["C"] == final["head"]["C"]
    assert solved["accuracy"] == pytest.approx(final["val_acc"], abs=1e-6)  # same photos right
    assert solved["loss"] == pytest.approx(final["val_loss"], rel=1e-3)
    sgd = train("--head-solver", "sgd", "--epochs", "1")  # epochs of mini-batches also work
    assert "epoch 1/1:" in sgd["stdout"] and sgd["epoch"] == 1
    assert sgd["accuracy"] > 0.6  # the pretrained backbone was really used


def load_script(folder: Path):
    spec = importlib.util.spec_from_file_location("generated_train", folder / SCRIPT_FILE)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_the_scripts_learning_rate_follows_tlcores_schedule(schedule, sample_dir, tmp_path):
    """The script keeps its own copy of ``tlcore.training.trainer.lr_factor`` (it must run without
    tlcore): the two must not drift apart."""
    config = TrainConfig(data=str(sample_dir), epochs=4, schedule=schedule, warmup_epochs=1,
                         weights="scratch")  # fmt: skip
    script = load_script(write_reproduction(Run.create(config), tmp_path / "script"))
    assert schedule == script.SCHEDULE
    for total, warmup in ((20, 5), (20, 0), (7, 3)):
        theirs = [script.lr_factor(s, total, warmup) for s in range(total + 2)]
        assert theirs == [lr_factor(s, total, warmup, schedule) for s in range(total + 2)]


def test_the_scripts_head_solver_chooses_and_fits_like_tlcores(run, tmp_path):
    """The script's copy of ``tlcore.training.head_solver`` (cross-validated C, L-BFGS to
    convergence) picks the same C with the same held-out scores and fits the same head."""
    from tlcore.training.head_solver import LogisticHead, choose_l2

    script = load_script(write_reproduction(run, tmp_path / "script"))
    assert script.HEAD_SOLVER == "lbfgs" and run.epochs()[-1]["head"]["C"] == script.HEAD_C
    generator = torch.Generator().manual_seed(0)  # three classes a linear head half separates
    y = torch.arange(60) % 3
    x = torch.randn(60, 16, generator=generator) + 0.8 * torch.nn.functional.one_hot(y, 16)
    views = torch.stack([x, x + 0.1 * torch.randn(60, 16, generator=generator)])
    criterion = torch.nn.CrossEntropyLoss()
    script.CLASSES, script.SEED = ["a", "b", "c"], 7
    ours = choose_l2(views, y, 3, criterion, seed=7)
    assert script.choose_c(views, y, criterion) == ours.c
    weight, bias = script.fit_head(x, y, ours.c, criterion)
    head = LogisticHead(x, y, 3, criterion, ours.c).solve()
    linear = torch.nn.Linear(16, 3)
    head.copy_into(linear)
    assert torch.allclose(weight.float(), linear.weight, atol=1e-3)
    assert torch.allclose(bias.float(), linear.bias, atol=1e-3)


def test_the_scripts_layer_groups_follow_a_progressive_plan_like_tlcore(sample_dir, tmp_path):
    freeze = {"preset": "progressive", "every": 1, "lr_decay": 0.5}
    config = TrainConfig(data=str(sample_dir), epochs=4, freeze=freeze, weights="scratch")
    run = Run.create(config)
    folder = write_reproduction(run, tmp_path / "script")
    assert not (folder / INITIAL_WEIGHTS_FILE).exists()  # from scratch: nothing to load
    script = load_script(folder)
    assert script.INITIAL_WEIGHTS is None and script.EPOCHS == 4
    ours = create_model(config.model, 2, "scratch")
    theirs = create_model(config.model, 2, "scratch")
    groups, plan = layer_groups(ours), FreezePlan.from_dict(freeze)
    assert [g[3] for g in script.LAYER_GROUPS] == plan.lr_multipliers(len(groups))
    trained_counts = []
    for epoch in range(1, 5):
        ours.train()
        apply_freeze(ours, groups, plan, epoch - 1)
        set_frozen_bn_eval(ours, groups, plan, epoch - 1)
        theirs.train()
        script.set_trainable(theirs, epoch)
        want = {n for n, p in ours.named_parameters() if p.requires_grad}
        assert {n for n, p in theirs.named_parameters() if p.requires_grad} == want
        bn = [m.training for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert [m.training for m in theirs.modules() if isinstance(m, torch.nn.BatchNorm2d)] == bn
        trained_counts.append(len(want))
    assert trained_counts == sorted(set(trained_counts))  # one more group every epoch
