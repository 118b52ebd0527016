"""Which parts of a backbone train: layer groups, freeze plans, per-group learning rates.

Groups come from timm's own ``group_matcher(coarse=True)`` (the same grouping timm
uses for layer-wise LR decay), so any timm model gets stem -> stages -> head
without per-architecture name guessing. A ``FreezePlan`` turns a preset into
"which groups train at epoch e" and "which LR multiplier each group gets"; the
trainer consults it every epoch, which is all progressive unfreezing needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from tlcore.models.freeze_plan import PRESETS, FreezePlan
from tlcore.models.weights import classifier_names

__all__ = ["PRESETS", "FreezePlan", "LayerGroup", "apply_freeze", "layer_groups"]


@dataclass
class LayerGroup:
    """A run of consecutive layers that is frozen or trained together."""

    name: str
    param_names: list[str]
    n_layers: int
    n_params: int


def head_module_name(model: nn.Module) -> str:
    """The classifier module's name, as timm records it (first one for distilled models)."""
    return classifier_names(model)[0]


def _owner(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else ""


def _group_ids(model: nn.Module, names: list[str]) -> dict[str, float]:
    """Param name -> ordinal: timm's matcher, or top-level children for models without one."""
    from timm.models import group_parameters

    try:
        matcher = model.group_matcher(coarse=True)
    except (AttributeError, NotImplementedError):
        matcher = None
    if matcher:
        return {n: float(i) for n, i in group_parameters(model, matcher, reverse=True).items()}
    children = [n for n, _ in model.named_children()]
    first = {n: n.split(".", 1)[0] for n in names}
    return {n: float(children.index(c)) if c in children else -1.0 for n, c in first.items()}


def _module_root(owner: str) -> str:
    """'blocks.6.0.conv_pw' -> 'blocks.6', 'layer2.1.bn1' -> 'layer2', 'conv_head' -> itself."""
    bits = owner.split(".") if owner else ["(model)"]
    for i, bit in enumerate(bits):
        if any(ch.isdigit() for ch in bit):
            return ".".join(bits[: i + 1])
    return bits[0]


def _group_label(param_names: list[str]) -> str:
    roots: list[str] = []
    for name in param_names:
        root = _module_root(_owner(name))
        if root not in roots:
            roots.append(root)
    return " + ".join(roots)


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """Ordered input -> output: stem, stages/blocks..., head (the classifier's group)."""
    params = dict(model.named_parameters())
    names = list(params)
    ids = _group_ids(model, names)
    heads = classifier_names(model)
    head_keys = [n for n in names if any(n == h or n.startswith(h + ".") for h in heads)]
    if head_keys:  # the classifier always closes the list, alone or with its neck
        last = max(ids.values())
        head_id = last if max(ids[n] for n in head_keys) == last else last + 1
        for n in head_keys:
            ids[n] = head_id
        # A neck bigger than the classifier (VGG's fc6/fc7: 119M of its 138M weights) is a
        # group of its own, so "features" trains only the last layer, as in the VGG papers.
        neck = [n for n in names if ids[n] == head_id and n not in head_keys]
        if sum(params[n].numel() for n in neck) > sum(params[n].numel() for n in head_keys):
            for n in neck:
                ids[n] = head_id - 0.5
    order = sorted(set(ids.values()))
    buckets: dict[float, list[str]] = {i: [] for i in order}
    for n in names:
        buckets[ids[n]].append(n)
    try:
        has_stem = "stem" in (model.group_matcher(coarse=True) or {})
    except (AttributeError, NotImplementedError, TypeError):
        has_stem = False
    groups = []
    for pos, i in enumerate(order):
        members = buckets[i]
        if head_keys and i == ids[head_keys[0]]:
            label = "head"
        elif pos == 0 and has_stem:
            label = "stem"
        else:
            label = _group_label(members)
        groups.append(
            LayerGroup(
                name=label,
                param_names=members,
                n_layers=len({_owner(n) for n in members}),
                n_params=sum(params[n].numel() for n in members),
            )
        )
    return groups


def _params_by_name(model: nn.Module) -> dict[str, nn.Parameter]:
    return dict(model.named_parameters())


def apply_freeze(model: nn.Module, groups: list[LayerGroup], plan: FreezePlan, epoch: int) -> int:
    """Set ``requires_grad`` per group for ``epoch``; returns the trainable parameter count."""
    params = _params_by_name(model)
    flags = plan.trainable_groups(len(groups), epoch)
    total = 0
    for group, train in zip(groups, flags, strict=True):
        for name in group.param_names:
            params[name].requires_grad_(train)
        total += group.n_params if train else 0
    return total


def set_frozen_bn_eval(
    model: nn.Module, groups: list[LayerGroup], plan: FreezePlan, epoch: int
) -> int:
    """After ``model.train()``: BatchNorm in frozen groups back to eval (running stats kept).

    Pretrained statistics are worth more than ones re-estimated from a few dozen
    images, and a frozen layer whose normalisation drifts is not really frozen.
    Returns how many BatchNorm layers were put in eval mode.
    """
    if not plan.freeze_bn:
        return 0
    flags = plan.trainable_groups(len(groups), epoch)
    frozen_owners = {
        _owner(n)
        for g, train in zip(groups, flags, strict=True)
        if not train
        for n in g.param_names
    }
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and name in frozen_owners:
            module.eval()
            count += 1
    return count


def optimizer_param_groups(
    model: nn.Module,
    groups: list[LayerGroup],
    plan: FreezePlan,
    base_lr: float,
    weight_decay: float,
) -> list[dict[str, Any]]:
    """One optimizer group per layer group, frozen ones included (their grads stay None)."""
    params = _params_by_name(model)
    mults = plan.lr_multipliers(len(groups))
    flags = plan.trainable_groups(len(groups), 0)
    return [
        {
            "params": [params[n] for n in g.param_names],
            "lr": float(base_lr) * mult,
            "weight_decay": float(weight_decay),
            "group_name": g.name,
            "lr_mult": mult,
            "trainable": train,
        }
        for g, mult, train in zip(groups, mults, flags, strict=True)
    ]


def sync_optimizer_trainable(
    optimizer: Any, groups: list[LayerGroup], plan: FreezePlan, epoch: int
) -> list[bool]:
    """Refresh each optimizer group's 'trainable' flag for ``epoch`` (progressive plans)."""
    flags = plan.trainable_groups(len(groups), epoch)
    for pg, train in zip(optimizer.param_groups, flags, strict=True):
        pg["trainable"] = train
    return flags


def summary_rows(
    model: nn.Module, groups: list[LayerGroup], plan: FreezePlan, epoch: int = 0
) -> list[dict[str, Any]]:
    """The Layers table: group, layers, params, trainable, lr_mult."""
    flags = plan.trainable_groups(len(groups), epoch)
    mults = plan.lr_multipliers(len(groups))
    return [
        {"group": g.name, "layers": g.n_layers, "params": g.n_params, "trainable": t, "lr_mult": m}
        for g, t, m in zip(groups, flags, mults, strict=True)
    ]


def is_backbone_frozen(groups: list[LayerGroup], plan: FreezePlan, epoch: int) -> bool:
    """True when only the head trains (features can then be computed once and cached)."""
    flags = plan.trainable_groups(len(groups), epoch)
    return bool(flags) and flags[-1] and not any(flags[:-1])
