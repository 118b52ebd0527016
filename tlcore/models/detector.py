"""Faster R-CNN (torchvision) on a timm backbone: its ``features_only`` levels feed a
``FeaturePyramidNetwork``; anchors come from the data's box sizes.

torchvision's ``BackboneWithFPN`` expects torchvision-style layer names, so the timm
feature model and the pyramid are joined here (``TimmFPN``). BatchNorm is frozen (batches
of a few photos would make its statistics noise); the photos are normalised as the Lite
models were trained (timm's data config); they arrive already at the training size, so
torchvision's transform only normalises.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

OUT_INDICES = (2, 3, 4)  # strides 8, 16, 32
FPN_CHANNELS = 128


class TimmFPN(nn.Module):
    """A timm feature model (``body``) and a pyramid (``fpn``) with an extra max-pool level."""

    def __init__(self, body: nn.Module, channels: int = FPN_CHANNELS) -> None:
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(list(body.feature_info.channels()), channels,
                                         extra_blocks=LastLevelMaxPool())  # fmt: skip
        self.out_channels = channels

    def pyramid(self, levels: Sequence[torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        """The pyramid on the body's levels (the fast path caches those)."""
        return self.fpn(OrderedDict((str(i), f.float()) for i, f in enumerate(levels)))

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.pyramid(self.body(x))


def anchor_sizes(sides: Sequence[float], levels: int = 4) -> tuple[tuple[int, ...], ...]:
    """One anchor size per pyramid level, spread geometrically over the 5th..95th percentile
    of the boxes' sizes (at the training size), so every box has an anchor near its size."""
    ordered = sorted(sides) or [32.0]
    lo = max(8.0, ordered[int(0.05 * (len(ordered) - 1))])
    hi = max(lo * 2, ordered[int(0.95 * (len(ordered) - 1))])
    ratio = (hi / lo) ** (1 / (levels - 1))
    return tuple((round(lo * ratio**i),) for i in range(levels))


def backbone_body(
    name: str, weights: str, load: bool = True
) -> tuple[nn.Module, dict[str, Any], str]:
    """The timm feature model with ImageNet weights loaded as for classification (the bundled
    file mapped onto the full model, then its tensors copied by name), its data config, and
    a sentence saying what was loaded. ``load=False``: the architecture only (a trained
    detector's weights replace every tensor), BatchNorm as ``weights`` would have it."""
    import timm
    from timm.utils.model import freeze_batch_norm_2d

    from tlcore.models.factory import build_model

    body = timm.create_model(name, pretrained=False, features_only=True, out_indices=OUT_INDICES)
    if weights == "scratch" or not load:
        said = "All weights start at random." if load else "Architecture only."
        full = timm.create_model(name, pretrained=False)
    else:
        full, report = build_model(name, None, weights)
        missing, _ = body.load_state_dict(full.state_dict(), strict=False)
        if missing:
            raise RuntimeError(f"backbone tensors missing from {name}'s weights: {missing[:3]}")
        said = " ".join(report.messages)
    data_config = timm.data.resolve_model_data_config(full)
    if weights == "scratch":  # no statistics to keep: BatchNorm learns them (as torchvision does)
        return body, data_config, said
    return freeze_batch_norm_2d(body), data_config, said


def build_detector(
    name: str,
    classes: Sequence[str],
    weights: str,
    size: tuple[int, int],
    sides: Sequence[float],
    load: bool = True,
) -> nn.Module:
    """Faster R-CNN for ``classes`` (+ background) on ``name``'s features; ``size`` is the
    (height, width) photos arrive at; ``sides`` the data's box sizes at that size."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    body, data_config, said = backbone_body(name, weights, load)
    backbone = TimmFPN(body)
    sizes = anchor_sizes(sides)
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    model = FasterRCNN(
        backbone,
        num_classes=len(classes) + 1,
        rpn_anchor_generator=anchors,
        min_size=min(size),
        max_size=max(size),
        image_mean=list(data_config["mean"]),
        image_std=list(data_config["std"]),
        box_detections_per_img=300,
        # fewer proposals than torchvision's COCO defaults (2000/1000): photos here hold tens
        # of objects, not hundreds, and each proposal costs the box head's work on a CPU
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=150,
        box_batch_size_per_image=128,
    )
    model.weights_said = said
    model.anchor_sizes = [s[0] for s in sizes]
    return model


def freeze_backbone(model: nn.Module, trainable_blocks: int | None) -> None:
    """Freeze the timm body: all of it (``0``, the fast path), its last K stages trainable,
    or none frozen (``None``). The pyramid and heads always train."""
    body = model.backbone.body
    for p in body.parameters():
        p.requires_grad = trainable_blocks is None
    if trainable_blocks:
        stages = [m for n, m in body.named_children() if n.startswith("blocks")]
        blocks = list(stages[0]) if len(stages) == 1 else stages
        for block in blocks[-trainable_blocks:]:
            for p in block.parameters():
                p.requires_grad = True
