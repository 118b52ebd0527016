"""How long a run will take on this machine, said before Start, from a measured speed.

A promise like "trains in seconds" is only true for some settings; the honest
answer depends on the photo count, the settings and how fast this machine runs
the model. So ``machine_speed`` times a few real forward and backward passes of
the chosen model at the chosen size (a second or two, remembered for a day in
the runs folder), and ``estimate_run`` multiplies: on the fast path every photo
goes through the network once (plus its cached augmented views); otherwise every
epoch runs every training photo forward (and backward through the layers that
learn) and every validation photo forward. It also says which choice makes it
fast, with that choice's own estimate.
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
from tlcore.training.config import TrainConfig

SPEED_FILE = "machine-speed.json"
SPEED_MAX_AGE_S = 24 * 3600  # a machine's speed is measured again after a day
STARTUP_S = 5.0  # starting the worker, reading the model and the photo list
FINISH_PASSES = 2  # passes over all photos after training (tlcore.runs.worker: calibration)
_BATCH = 4
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


@dataclass
class RunEstimate:
    """The estimate in seconds and words, and what the fast alternative would take."""

    seconds: float
    fast_path: bool
    text: str  # "about 3 min"
    work: str  # what takes the time, in words
    tip: str  # which choice makes it fast ("" when it already is)
    speed: MachineSpeed


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
    blank batch, remembered in the runs folder and in this process)."""
    from tlcore.models.text_models import is_text_model
    from tlcore.training.devices import device_name, resolve_device

    if is_text_model(model):
        raise ConfigError(f"{model} reads text: no time estimate for it yet.")
    size = int(img_size or 224)
    measure = _measure_size(model, size)
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
    from tlcore.training.devices import device_name

    net = create_model(model, 2, weights="scratch").to(dev)  # same shapes, same speed
    x = torch.randn(_BATCH, 3, size, size, device=dev)
    net.eval()
    times = []
    with torch.no_grad():
        net(x)  # warm-up: first calls allocate
        for _ in range(3):  # the median: one pass disturbed by other work does not decide
            started = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - started) / _BATCH)
    forward = sorted(times)[1]
    net.train()
    started = time.perf_counter()
    net(x).sum().backward()
    # backward costs one to two forward passes; a pass slowed by other work is clipped
    train = min(max((time.perf_counter() - started) / _BATCH, 2 * forward), 4 * forward)
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


def uses_fast_path(config: TrainConfig, n_groups: int) -> bool:
    """The trainer's rule (``tlcore.training.features.fast_path_reason``) without a model:
    only the head learns in every epoch, and the photos do not change between epochs
    (no augmentation, or augmented views embedded once)."""
    from tlcore.models.freezing import FreezePlan

    if config.augment != "none" and not getattr(config, "augment_views", 0):
        return False
    plan = FreezePlan.from_dict(config.freeze)
    for epoch in range(config.epochs):
        flags = plan.trainable_groups(n_groups, epoch)
        if not flags or not flags[-1] or any(flags[:-1]):
            return False
    return True


def _seconds(config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed) -> float:
    from tlcore.models.freezing import FreezePlan

    # after the last epoch the worker calibrates the probabilities (the training and
    # validation photos, twice) and scores the model on the validation photos for Evaluate
    finish = (FINISH_PASSES * (n_train + n_val) + n_val) * speed.forward_s
    if uses_fast_path(config, speed.n_groups):
        views = 1 + int(getattr(config, "augment_views", 0) or 0)
        return STARTUP_S + (n_train * views + n_val) * speed.forward_s + finish
    plan = FreezePlan.from_dict(config.freeze)
    total = STARTUP_S + finish
    for epoch in range(config.epochs):
        flags = plan.trainable_groups(speed.n_groups, epoch)
        first = flags.index(True) if True in flags else speed.n_groups
        # backward runs from the output down to the lowest layer that learns
        reach = (speed.n_groups - first) / speed.n_groups if first < speed.n_groups - 1 else 0.0
        per_image = speed.forward_s + (speed.train_s - speed.forward_s) * reach
        total += n_train * per_image + n_val * speed.forward_s
    return total


def duration_text(seconds: float) -> str:
    """Rounded the way a person says it: "about 40 s", "about 3 min", "about 1 h 20 min"."""
    if seconds < 60:
        return f"about {max(5, round(seconds / 5) * 5)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def estimate_run(config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed) -> RunEstimate:
    """The run's time on this machine, what it is spent on, and the fast choice if not taken."""
    seconds = _seconds(config, n_train, n_val, speed)
    fast = uses_fast_path(config, speed.n_groups)
    photos = f"{n_train + n_val} photos"
    if fast:
        views = int(getattr(config, "augment_views", 0) or 0)
        extra = f" and {views} augmented views of each training photo" if views else ""
        work = (
            f"Each of the {photos}{extra} goes through the network once; then only the new "
            "head learns, which takes seconds."
        )
        return RunEstimate(seconds, True, duration_text(seconds), work, "", speed)
    work = (
        f"Every epoch runs the {n_train} training photos through the whole network "
        f"and checks the {n_val} validation photos: {config.epochs} epochs."
    )
    head_only = uses_fast_path(
        TrainConfig.from_dict({**config.to_dict(), "augment": "none", "augment_views": 0}),
        speed.n_groups,
    )
    if head_only:  # feature extraction, slowed down by augmentation that changes every epoch
        quick = TrainConfig.from_dict({**config.to_dict(), "augment": "none"})
        tip = (
            f"Augmentation '{config.augment}' changes the photos every epoch, so the network "
            "must see them again each time. With augmentation 'none' each photo goes through "
            f"once: {duration_text(_seconds(quick, n_train, n_val, speed))}."
        )
    else:
        quick = TrainConfig.from_dict(
            {**config.to_dict(), "freeze": {"preset": "features"}, "augment": "none",
             "augment_views": 0}
        )  # fmt: skip
        tip = (
            "Layers that learn make every epoch run the network forward and backward. "
            "Feature extraction (only the head learns) with augmentation 'none' would take "
            f"{duration_text(_seconds(quick, n_train, n_val, speed))}."
        )
    return RunEstimate(seconds, False, duration_text(seconds), work, tip, speed)
