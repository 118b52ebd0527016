"""How fast this machine runs a model: seconds an image forward, and forward and backward.

Measured once a day per model, size and device with a few real passes on a blank batch
(a second or two), remembered in the runs folder and in this process; a finished run's
real embedding pass replaces it (``remember_observed_speed``). The estimate before Start
(``tlcore.training.estimate``) multiplies it by the work to do, and the worker's time left
after training reads it without measuring (``stored_speed``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.errors import ConfigError

SPEED_FILE = "machine-speed.json"
SPEED_MAX_AGE_S = 24 * 3600  # a machine's speed is measured again after a day
_BATCH = 4
_TEXT_BATCH = 8  # texts are short: a batch this big keeps the cores busy
MEASURE_SIZE = 128  # pixels a side for the measurement of a convolutional net
_MEASURED: dict[str, dict[str, Any]] = {}  # this process's measurements, by _speed_key


@dataclass
class MachineSpeed:
    """Seconds per image for this model and size on this machine, and its layer-group count."""

    model: str
    img_size: int
    device: str
    forward_s: float  # one image through the network, no gradients (embedding, validation)
    train_s: float  # one image forward and backward through every layer (a full fine-tune)
    n_groups: int  # layer groups (head included), to read the freeze plan
    measured_at: float


def _speed_key(model: str, img_size: int, device: str) -> str:
    import torch

    return f"{model}|{img_size}|{device}|{torch.__version__}"


def _measure_size(model: str, img_size: int) -> int:
    """Convolutional nets take any size and their cost grows with the pixels, so a small
    batch at a small size is measured and scaled; fixed-size models (ViT) at their size."""
    import timm

    try:
        fixed = bool(getattr(timm.models.get_pretrained_cfg(model), "fixed_input_size", False))
    except Exception:  # noqa: BLE001 - a model timm does not know: measure at the real size
        fixed = True
    return img_size if fixed else min(img_size, MEASURE_SIZE)


def machine_speed(model: str, img_size: int | None, device: str = "auto") -> MachineSpeed:
    """Seconds per image here, measured once a day per model and device (a few passes on a
    blank batch, remembered in the runs folder and in this process). For a text model
    ``img_size`` is the word pieces per text (``text_batch_width``), and it is required."""
    from tlcore.models.text_models import is_text_model
    from tlcore.training.devices import device_name, resolve_device

    text = is_text_model(model)
    if text and not img_size:
        raise ConfigError(f"{model} reads text: say how many word pieces a batch holds.")
    size = int(img_size or 224)
    measure = size if text else _measure_size(model, size)
    dev = resolve_device(device)
    key = _speed_key(model, measure, device_name(dev))
    path = settings.runs_dir() / ".cache" / SPEED_FILE
    stored = _MEASURED.get(key) or _read(path).get(key)
    if not stored or time.time() - float(stored.get("measured_at", 0)) > SPEED_MAX_AGE_S:
        stored = asdict(_measure(model, measure, dev))
        _remember(path, key, stored)
    _MEASURED[key] = stored
    pixels = (size / measure) ** 2
    return MachineSpeed(**{**stored, "img_size": size, "forward_s": stored["forward_s"] * pixels,
                           "train_s": stored["train_s"] * pixels})  # fmt: skip


def stored_speed(model: str, img_size: int | None, device: str = "auto") -> MachineSpeed | None:
    """The speed of this photo model measured or observed here within a day, never measured
    now: the worker's time left after training before it has a pace of its own (None: none
    kept, or a text model, whose speed depends on its batches' width)."""
    from tlcore.models.text_models import is_text_model
    from tlcore.training.devices import device_name, resolve_device

    if is_text_model(model):
        return None
    size = int(img_size or 224)
    measure = _measure_size(model, size)
    key = _speed_key(model, measure, device_name(resolve_device(device)))
    stored = _MEASURED.get(key) or _read(settings.runs_dir() / ".cache" / SPEED_FILE).get(key)
    if not stored or time.time() - float(stored.get("measured_at", 0)) > SPEED_MAX_AGE_S:
        return None
    pixels = (size / measure) ** 2
    return MachineSpeed(**{**stored, "img_size": size, "forward_s": stored["forward_s"] * pixels,
                           "train_s": stored["train_s"] * pixels})  # fmt: skip


def remember_observed_speed(
    model: str, img_size: int | None, device: str, forward_s: float
) -> None:
    """Seconds per image a finished run really took to embed its photos (the fast path):
    replaces the short measurement, scaled to its size, for the estimates that follow."""
    if not img_size or forward_s <= 0:
        return
    measure = _measure_size(model, int(img_size))
    key = _speed_key(model, measure, device)
    path = settings.runs_dir() / ".cache" / SPEED_FILE
    stored = _MEASURED.get(key) or _read(path).get(key)
    if not stored:
        return  # nothing measured yet to say how training compares with embedding
    scaled = forward_s * (measure / int(img_size)) ** 2
    ratio = stored["train_s"] / max(stored["forward_s"], 1e-9)
    observed = {
        **stored,
        "forward_s": scaled,
        "train_s": scaled * ratio,
        "measured_at": time.time(),
    }
    _MEASURED[key] = observed
    _remember(path, key, observed)


def _measure(model: str, size: int, dev: Any) -> MachineSpeed:
    import torch

    from tlcore.models.factory import create_model
    from tlcore.models.freezing import layer_groups
    from tlcore.models.text_catalog import is_text_model
    from tlcore.training.devices import device_name

    net = create_model(model, 2, weights="scratch").to(dev)  # same shapes, same speed
    batch = _BATCH
    if is_text_model(model):  # texts ``size`` word pieces long, none of it padding, in a batch
        batch = _TEXT_BATCH  # one short text alone leaves the cores idle
        x = torch.randint(1000, 2000, (batch, size), device=dev)
    else:
        x = torch.randn(batch, 3, size, size, device=dev)
    net.eval()
    times = []
    with torch.no_grad():
        net(x)  # warm-up: first calls allocate
        for _ in range(3):  # the median: one pass disturbed by other work does not decide
            started = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - started) / batch)
    forward = sorted(times)[1]
    net.train()
    started = time.perf_counter()
    net(x).sum().backward()
    # backward costs one to two forward passes; a pass slowed by other work is clipped
    train = min(max((time.perf_counter() - started) / batch, 2 * forward), 4 * forward)
    return MachineSpeed(model, size, device_name(dev), forward, train,
                        len(layer_groups(net)), time.time())  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(path: Path, key: str, value: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_read(path), key: value}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".speed-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only runs folder: measure again next time
