"""Will one training batch fit in memory? A lower estimate, checked before a run exists.

``--img-size 100000`` or ``--batch-size 4096`` at 1024 px used to create a run whose
worker then died of a MemoryError. The activations a network keeps for the backward
pass grow with batch size x pixels; counting every layer's output for one image
(forward hooks, float32, measured 2026-11-29 with timm on CPU) gives, per input pixel:

    tf_efficientnet_lite0 2000 bytes, mobilenetv3_large_100 1280, vit_tiny 1180, resnet18 720

``TRAINED_BYTES_PER_PIXEL`` is below all of them and the input tensor alone is
12 bytes a pixel, so an estimate over the machine's memory cannot fit whatever the
model: refusing it is always right, and nothing that could fit is refused. When
only the classifier trains (feature extraction) the backbone keeps no activations
for backward and ``FROZEN_BYTES_PER_PIXEL`` (about one layer's output) applies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TRAINED_BYTES_PER_PIXEL = 500
FROZEN_BYTES_PER_PIXEL = 50
DEFAULT_SIDE = 224  # px, when neither the config nor the catalog says


def batch_bytes(img_size: int, batch_size: int, trains_backbone: bool) -> int:
    """A lower estimate of the memory one training batch takes (bytes)."""
    per_pixel = TRAINED_BYTES_PER_PIXEL if trains_backbone else FROZEN_BYTES_PER_PIXEL
    return int(batch_size) * int(img_size) ** 2 * per_pixel


def machine_memory_bytes(device: str = "cpu") -> int | None:
    """Total memory of the device a run trains on: the GPU's, else this machine's RAM."""
    if device == "cuda" or (device == "auto" and may_have_cuda()):
        try:
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.get_device_properties(0).total_memory)
        except Exception:  # noqa: BLE001 - no usable CUDA: fall back to RAM
            pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this OS: no check
        return None


def may_have_cuda() -> bool:
    """False only where no NVIDIA device can be there (Linux without its device files):
    then asking torch is not needed, and a command that only prepares a run skips the
    two seconds of importing it."""
    if not sys.platform.startswith("linux"):
        return True
    return any(Path("/dev").glob("nvidia*")) or Path("/dev/dxg").exists()  # dxg: WSL


def gigabytes(n: float) -> str:
    return f"{n / 1024**3:,.1f} GB"
