"""Faster R-CNN (torchvision) on a timm backbone: its ``features_only`` levels feed a
``FeaturePyramidNetwork``; anchors come from the data's box sizes.

torchvision's ``BackboneWithFPN`` expects torchvision-style layer names, so the timm
feature model and the pyramid are joined here (``TimmFPN``). BatchNorm is frozen (batches
of a few photos would make its statistics noise); the photos are normalised as the Lite
models were trained (timm's data config); they arrive already at the training size, so
torchvision's transform only normalises.

``COCO_DETECTORS`` are torchvision's own Faster R-CNNs pretrained on COCO, fetched once
from download.pytorch.org into the torch hub cache (refused in one line offline); their box
predictor is replaced for the data's classes (``coco_detector``).
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
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


def pyramid(backbone: nn.Module, levels: Sequence[torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """The pyramid on a body's cached levels (the fast path): a ``TimmFPN``'s own, or a
    torchvision detector's ``fpn`` (its body names its levels "0", "1", ... in order)."""
    if isinstance(backbone, TimmFPN):
        return backbone.pyramid(levels)
    return backbone.fpn(OrderedDict((str(i), f.float()) for i, f in enumerate(levels)))


def anchors_meta(model: nn.Module) -> dict[str, list[list[float]]]:
    """The detector's anchors as a bundle's ``tlcore.json`` keeps them (sizes per level,
    aspect ratios per level): a timm detector's come from its data, a COCO one's are COCO's."""
    generator = model.rpn.anchor_generator
    return {"anchor_sizes": [[int(x) for x in s] for s in generator.sizes],
            "aspect_ratios": [[float(r) for r in a] for a in generator.aspect_ratios]}  # fmt: skip


def anchors_from_meta(meta: dict[str, Any]) -> Any:
    """The ``AnchorGenerator`` of ``anchors_meta`` (a bundle before COCO detectors kept one
    size per level and the ratios 0.5, 1, 2)."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes = tuple(tuple(int(x) for x in (s if isinstance(s, list) else [s]))
                  for s in meta["anchor_sizes"])  # fmt: skip
    ratios = meta.get("aspect_ratios") or [[0.5, 1.0, 2.0]] * len(sizes)
    return AnchorGenerator(sizes, tuple(tuple(float(r) for r in a) for a in ratios))


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
    (height, width) photos arrive at; ``sides`` the data's box sizes at that size. A name
    of ``COCO_DETECTORS`` is torchvision's whole detector instead (``coco_detector``)."""
    if name in COCO_DETECTORS:
        return coco_detector(name, classes, weights, size, load)
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
    """Freeze the body: all of it (``0``, the fast path), its last K stages trainable, or
    none frozen (``None``). The pyramid and heads always train. A timm body's stages are its
    ``blocks``; a torchvision detector's body is its backbone's layers in order."""
    body = model.backbone.body
    for p in body.parameters():
        p.requires_grad = trainable_blocks is None
    if trainable_blocks:
        stages = [m for n, m in body.named_children() if n.startswith("blocks")]
        blocks = (list(stages[0]) if len(stages) == 1 else stages) or list(body.children())
        for block in blocks[-trainable_blocks:]:
            for p in block.parameters():
                p.requires_grad = True


# -- torchvision's detectors pretrained on COCO ("like VGG16 is today": from the internet once) --

# name -> torchvision's weights enum and the member to load: the whole detector (backbone,
# pyramid, proposals, box head) trained on COCO's 80 classes, its box predictor replaced
COCO_DETECTORS: dict[str, tuple[str, str]] = {
    "fasterrcnn_mobilenet_v3_large_fpn": ("FasterRCNN_MobileNet_V3_Large_FPN_Weights", "COCO_V1"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights", "COCO_V1"),
    "fasterrcnn_resnet50_fpn_v2": ("FasterRCNN_ResNet50_FPN_V2_Weights", "COCO_V1"),
}  # fmt: skip


def coco_weights_file(name: str) -> Path:
    """Where torch hub keeps ``name``'s COCO checkpoint on this machine (``$TORCH_HOME``)."""
    import torch
    from torchvision.models import detection

    enum, member = COCO_DETECTORS[name]
    url = getattr(detection, enum)[member].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _coco_weights(name: str) -> Any:
    """The weights enum member, once it is in the torch hub cache or the internet is
    reachable; WeightsError in one line otherwise."""
    from urllib.parse import urlparse

    from torchvision.models import detection

    from tlcore.errors import WeightsError

    enum, member = COCO_DETECTORS[name]
    weights = getattr(detection, enum)[member]
    if coco_weights_file(name).is_file():
        return weights
    host = urlparse(weights.url).hostname or "download.pytorch.org"
    try:
        socket.create_connection((host, 443), timeout=3.0).close()
    except OSError:
        raise WeightsError(
            f"{name}'s COCO weights need the internet once (from {host}) or a local torch hub "
            f"cache ({coco_weights_file(name)}); neither is here. The bundled "
            "tf_efficientnet_lite0 detector works offline."
        ) from None
    return weights


def check_detector_weights(name: str, weights: str) -> None:
    """Before a run starts: a COCO detector's weights are here or can be fetched, else the
    one line of ``_coco_weights`` (WeightsError) instead of a worker failing later."""
    if name in COCO_DETECTORS and weights != "scratch":
        _coco_weights(name)


def coco_detector(name: str, classes: Sequence[str], weights: str, size: tuple[int, int],
                  load: bool = True) -> nn.Module:  # fmt: skip
    """torchvision's Faster R-CNN ``name`` with its COCO weights (``weights`` "scratch":
    random), its box predictor replaced by one for ``classes`` (+ background). Photos arrive
    at ``size``, so its transform only normalises; its COCO anchors stay (its proposal head
    was trained on them); BatchNorm frozen as torchvision freezes it for a trained model.
    ``load=False``: the architecture only, for a trained detector's weights."""
    from timm.utils.model import freeze_batch_norm_2d
    from torchvision.models import detection
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    coco = weights != "scratch"
    pretrained = _coco_weights(name) if coco and load else None
    kwargs = {"min_size": min(size), "max_size": max(size), "box_detections_per_img": 300}
    # COCO's head (91 outputs) as the weights have it, then replaced below
    model = getattr(detection, name)(weights=pretrained, weights_backbone=None,
                                     num_classes=91 if coco else len(classes) + 1,
                                     **kwargs)  # fmt: skip
    if coco and pretrained is None:  # as torchvision builds it with weights: frozen BatchNorm
        model.backbone.body = freeze_batch_norm_2d(model.backbone.body)
    predictor = model.roi_heads.box_predictor
    if predictor.cls_score.out_features != len(classes) + 1:
        model.roi_heads.box_predictor = FastRCNNPredictor(
            predictor.cls_score.in_features, len(classes) + 1
        )
    model.weights_said = (
        f"{name} with torchvision's COCO weights; its box predictor replaced for "
        f"{len(classes)} classes." if pretrained else "Architecture only." if coco
        else "All weights start at random."
    )  # fmt: skip
    model.anchor_sizes = [int(s[0]) for s in model.rpn.anchor_generator.sizes]
    return model
