"""Layer groups for any timm model; freeze presets that do exactly what the table says."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from tlcore.errors import ConfigError
from tlcore.models.factory import create_model
from tlcore.models.freezing import (
    FreezePlan,
    apply_freeze,
    head_module_name,
    is_backbone_frozen,
    layer_groups,
    optimizer_param_groups,
    set_frozen_bn_eval,
    summary_rows,
    sync_optimizer_trainable,
)

HEADS = {
    "tf_efficientnet_lite0": "classifier",
    "resnet18": "fc",
    "vit_tiny_patch16_224": "head",
    "convnext_atto": "head.fc",
}


@pytest.mark.parametrize("name", list(HEADS))
def test_groups_run_stem_to_head_and_cover_every_parameter(name):
    model = create_model(name, num_classes=3, weights="scratch")
    groups = layer_groups(model)
    assert groups[0].name == "stem" and groups[-1].name == "head"
    assert len(groups) >= 5
    assert head_module_name(model) == HEADS[name]
    order = [n for n, _ in model.named_parameters()]
    seen = [n for g in groups for n in g.param_names]
    assert sorted(seen) == sorted(order)  # each parameter in exactly one group
    firsts = [order.index(g.param_names[0]) for g in groups]
    assert firsts == sorted(firsts)  # input -> output
    classifier = {n for n in order if n.startswith(HEADS[name] + ".")}
    assert classifier and classifier <= set(groups[-1].param_names)
    for g in groups:
        params = dict(model.named_parameters())
        assert g.n_params == sum(params[n].numel() for n in g.param_names) > 0
        assert g.n_layers >= 1
    assert sum(g.n_params for g in groups) == sum(p.numel() for p in model.parameters())


PLANS = ["features", "last-1", "last-3", "full", "progressive", "progressive-2"]


@pytest.mark.parametrize("text", PLANS)
def test_each_preset_trains_exactly_what_the_summary_reports(text):
    model = create_model("tf_efficientnet_lite0", num_classes=4, weights="scratch")
    groups = layer_groups(model)
    plan = FreezePlan.parse(text)
    for epoch in range(len(groups) + 2):
        reported = apply_freeze(model, groups, plan, epoch)
        rows = summary_rows(model, groups, plan, epoch)
        real = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert reported == real == sum(r["params"] for r in rows if r["trainable"])
        assert rows[-1]["trainable"]  # the head always trains in presets
    custom = FreezePlan("custom", trainable=[i % 2 == 0 for i in range(len(groups))])
    reported = apply_freeze(model, groups, custom, 0)
    assert reported == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert reported == sum(g.n_params for i, g in enumerate(groups) if i % 2 == 0)


def test_features_preset_trains_only_the_head():
    model = create_model("resnet18", num_classes=2, weights="scratch")
    groups = layer_groups(model)
    plan = FreezePlan.parse("features")
    assert apply_freeze(model, groups, plan, 0) == 512 * 2 + 2
    assert is_backbone_frozen(groups, plan, 0)
    assert not is_backbone_frozen(groups, FreezePlan.parse("last-2"), 0)
    assert not is_backbone_frozen(groups, FreezePlan.parse("progressive"), 1)


def _batch(sample_dir, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    paths = sorted((sample_dir / "train" / "ants").glob("*"))[:2]
    paths += sorted((sample_dir / "train" / "bees").glob("*"))[:2]
    images = []
    for p in paths:
        im = Image.open(p).convert("RGB").resize((size, size))
        images.append(torch.tensor(list(im.getdata()), dtype=torch.float32).view(size, size, 3))
    x = (torch.stack(images).permute(0, 3, 1, 2) / 127.5) - 1.0
    return x, torch.tensor([0, 0, 1, 1])


def _one_step(model, groups, plan, x, y):
    apply_freeze(model, groups, plan, 0)
    model.train()
    set_frozen_bn_eval(model, groups, plan, 0)
    opt = torch.optim.AdamW(optimizer_param_groups(model, groups, plan, 1e-3, 0.01))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _bn_stats(module_names, model):
    bns = dict(model.named_modules())
    return {n: bns[n].running_mean.clone() for n in module_names}


def test_one_step_changes_only_trainable_groups_and_keeps_frozen_bn_stats(sample_dir):
    model = create_model("tf_efficientnet_lite0", num_classes=2)
    groups = layer_groups(model)
    plan = FreezePlan.parse("last-3")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch(sample_dir)
    _one_step(model, groups, plan, x, y)
    after = model.state_dict()
    flags = plan.trainable_groups(len(groups), 0)
    for group, train in zip(groups, flags, strict=True):
        changed = [n for n in group.param_names if not torch.equal(before[n], after[n])]
        if train:
            assert changed, group.name
        else:
            assert changed == [], group.name
        owners = {n.rsplit(".", 1)[0] for n in group.param_names}
        stats = [f"{o}.running_mean" for o in owners if f"{o}.running_mean" in after]
        moved = [s for s in stats if not torch.equal(before[s], after[s])]
        if train and stats:
            assert moved, group.name  # BN in trainable groups does update (the check is live)
        if not train:
            assert moved == [], group.name


def test_without_freeze_bn_frozen_groups_stats_drift(sample_dir):
    model = create_model("tf_efficientnet_lite0", num_classes=2)
    groups = layer_groups(model)
    plan = FreezePlan("features", freeze_bn=False)
    stem_bn = "bn1.running_mean"
    before = model.state_dict()[stem_bn].clone()
    x, y = _batch(sample_dir)
    _one_step(model, groups, plan, x, y)
    assert not torch.equal(before, model.state_dict()[stem_bn])
    assert not model.conv_stem.weight.requires_grad


def test_progressive_schedule_and_discriminative_lrs_in_optimizer_groups():
    model = create_model("resnet18", num_classes=3, weights="scratch")
    groups = layer_groups(model)
    n = len(groups)
    plan = FreezePlan.parse("progressive-2")
    plan.lr_decay = 0.5
    param_groups = optimizer_param_groups(model, groups, plan, base_lr=0.01, weight_decay=0.05)
    opt = torch.optim.SGD(param_groups, lr=0.01)
    assert [pg["group_name"] for pg in opt.param_groups] == [g.name for g in groups]
    assert [pg["lr"] for pg in opt.param_groups] == pytest.approx(
        [0.01 * 0.5 ** (n - 1 - i) for i in range(n)]
    )
    assert opt.param_groups[-1]["lr_mult"] == 1.0
    assert all(pg["weight_decay"] == 0.05 for pg in opt.param_groups)
    history = []
    for epoch in range(2 * n + 1):
        apply_freeze(model, groups, plan, epoch)
        flags = sync_optimizer_trainable(opt, groups, plan, epoch)
        assert [pg["trainable"] for pg in opt.param_groups] == flags
        for pg in opt.param_groups:
            assert all(p.requires_grad == pg["trainable"] for p in pg["params"])
        history.append(sum(flags))
    assert history[:6] == [1, 1, 2, 2, 3, 3]
    assert history[-1] == n


def test_plan_parsing_round_trips_and_rejects_nonsense():
    for text in ["features", "full", "last-3", "progressive", "progressive-2"]:
        plan = FreezePlan.parse(text)
        assert FreezePlan.parse(plan.label()) == plan
        assert FreezePlan.from_dict(plan.to_dict()) == plan
    assert FreezePlan.parse("last-3").trainable_groups(5, 0) == [False, False, True, True, True]
    assert FreezePlan.parse("last-9").trainable_groups(3, 0) == [True, True, True]
    assert FreezePlan(lr_mult=[0.1, 0.2, 1.0]).lr_multipliers(3) == [0.1, 0.2, 1.0]
    for bad in ["frozen", "last-x", "last-0", ""]:
        with pytest.raises(ConfigError):
            FreezePlan.parse(bad)
    with pytest.raises(ConfigError, match="lr_decay"):
        FreezePlan(lr_decay=0.0)
    with pytest.raises(ConfigError, match="trainable"):
        FreezePlan("custom")
    with pytest.raises(ConfigError, match="layer groups"):
        FreezePlan("custom", trainable=[True]).trainable_groups(4, 0)
    with pytest.raises(ConfigError, match="Unknown freeze setting"):
        FreezePlan.from_dict({"preset": "full", "speed": 3})
