"""How long a run will take on this machine, said before Start, from a measured speed.

A promise like "trains in seconds" is only true for some settings; the honest
answer depends on the photo count, the settings and how fast this machine runs
the model. So ``machine_speed`` times a few real forward and backward passes of
the chosen model at the chosen size (a second or two, remembered for a day in
the runs folder), and ``estimate_run`` multiplies: on the fast path every photo
goes through the network once (plus its cached augmented views); otherwise every
epoch runs every training photo forward (and backward through the layers that
learn) and every validation photo forward. It also says which choice makes it
fast, with that choice's own estimate. Texts are measured the same way, at the
word pieces of a typical batch of the user's own texts (``text_batch_width``),
and a fine-tune of an encoder's top layers counts its frozen bottom once
(``tlcore.training.frozen_layers``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore import settings
from tlcore.errors import ConfigError
from tlcore.training.config import TrainConfig

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest


SPEED_FILE = "machine-speed.json"
SPEED_MAX_AGE_S = 24 * 3600  # a machine's speed is measured again after a day
STARTUP_S = 5.0  # starting the worker, reading the model and the photo list
FINISH_PASSES = 2  # passes over all photos after training (tlcore.runs.worker: calibration)
_BATCH = 4
_TEXT_BATCH = 8  # texts are short: a batch this big keeps the cores busy
MEASURE_SIZE = 128  # pixels a side for the measurement of a convolutional net
_MEASURED: dict[str, dict[str, Any]] = {}  # this process's measurements, by _speed_key
_WIDTHS: dict[str, int] = {}  # text_batch_width's answers, by data and settings


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
    items: str = "photos"  # what the speed counts: photos (img_size px) or texts (word pieces)


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


def text_batch_width(manifest: Manifest, config: TrainConfig) -> int:
    """Word pieces in a typical training batch of these texts, for ``machine_speed``.

    A batch is as wide as its longest text (``tlcore.data.text_dataset.TrimPadding``),
    so the width is read off epoch 1's real batches, not guessed."""
    from tlcore.data.text_dataset import load_tokenizer
    from tlcore.models.text_catalog import model_folder
    from tlcore.training.trainer import epoch_order

    texts = [item.text or "" for item in manifest.items_for("train")]
    key = f"{manifest.fingerprint()}|{config.model}|{config.max_tokens}|{config.batch_size}|{config.seed}"
    if key not in _WIDTHS:
        width = 8
        if texts:
            tokenizer = load_tokenizer(model_folder(config.model, config.weights))
            ids = tokenizer(texts, truncation=True, max_length=int(config.max_tokens))["input_ids"]
            lengths = [len(row) for row in ids]
            order = epoch_order(len(lengths), config.seed, 1).tolist()
            bs = int(config.batch_size)
            widths = [max(lengths[i] for i in order[j : j + bs]) for j in range(0, len(order), bs)]
            width = sum(widths) / len(widths)
        _WIDTHS[key] = max(
            8, -(-round(width) // 8) * 8
        )  # up to a multiple of 8: fewer measurements
    return _WIDTHS[key]


def frozen_text_layers(config: TrainConfig, n_groups: int) -> int:
    """Transformer layers the trainer runs only once (``tlcore.training.frozen_layers``): those
    below the lowest group that learns in any epoch (groups: embeddings, layers..., head)."""
    from tlcore.models.freezing import FreezePlan

    plan = FreezePlan.from_dict(config.freeze)
    lowest = n_groups
    for epoch in range(config.epochs):
        flags = plan.trainable_groups(n_groups, epoch)
        lowest = min(lowest, flags.index(True) if True in flags else n_groups)
    return max(0, min(lowest - 1, n_groups - 2))


def _text_seconds(config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed) -> float:
    """Text: no augmentation; the frozen bottom layers run once, each epoch only the layers
    above. At the end the worker calibrates on the validation texts (for the best and the
    last epoch) and scores them; there is no "none of these" pass over the training texts."""
    from tlcore.models.freezing import FreezePlan

    total = STARTUP_S + 3 * n_val * speed.forward_s
    if uses_fast_path(config, speed.n_groups):
        return total + (n_train + n_val) * speed.forward_s
    layers = max(1, speed.n_groups - 2)
    depth = frozen_text_layers(config, speed.n_groups)
    top = 1 - depth / layers  # the share of the forward pass every epoch still runs
    total += (n_train + n_val) * speed.forward_s * depth / layers
    plan = FreezePlan.from_dict(config.freeze)
    for epoch in range(config.epochs):
        flags = plan.trainable_groups(speed.n_groups, epoch)
        first = flags.index(True) if True in flags else speed.n_groups
        reach = (speed.n_groups - first) / speed.n_groups if first < speed.n_groups - 1 else 0.0
        per_text = speed.forward_s * top + (speed.train_s - speed.forward_s) * reach
        total += n_train * per_text + n_val * speed.forward_s * top
    return total


def _seconds(config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed) -> float:
    from tlcore.models.freezing import FreezePlan
    from tlcore.models.text_catalog import is_text_model

    if is_text_model(config.model):
        return _text_seconds(config, n_train, n_val, speed)
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


def _estimate_text_run(
    config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed
) -> RunEstimate:
    seconds = _seconds(config, n_train, n_val, speed)
    texts = f"{n_train + n_val} texts"
    if uses_fast_path(config, speed.n_groups):
        work = (
            f"Each of the {texts} goes through the encoder once; then only the new head "
            "learns, which takes seconds."
        )
        return RunEstimate(seconds, True, duration_text(seconds), work, "", speed, "texts")
    depth, layers = frozen_text_layers(config, speed.n_groups), speed.n_groups - 2
    every = (
        f"The {texts} go through the {depth} frozen layers once; then every epoch runs the "
        f"{n_train} training texts through the top {layers - depth} layers and back"
        if depth
        else f"Every epoch runs the {n_train} training texts through the whole encoder and back"
    )
    work = f"{every}, and checks the {n_val} validation texts: {config.epochs} epochs."
    quick = TrainConfig.from_dict({**config.to_dict(), "freeze": {"preset": "features"}})
    tip = (
        "Layers that learn make every epoch run the encoder forward and backward. Feature "
        "extraction (only the head learns) would take "
        f"{duration_text(_seconds(quick, n_train, n_val, speed))}."
    )
    return RunEstimate(seconds, False, duration_text(seconds), work, tip, speed, "texts")


def estimate_for(
    config: TrainConfig,
    manifest: Manifest,
    measure: Callable[[str, int | None, str], MachineSpeed] | None = None,
) -> RunEstimate:
    """``estimate_run`` for this data: its counts, and the speed measured at its size (photos)
    or at the word pieces of its typical batch (texts). ``measure`` stands in for
    ``machine_speed`` (the app wraps it to say that it is measuring)."""
    from tlcore.data.task import task_of
    from tlcore.models.text_catalog import check_model_fits_data

    task = task_of(manifest)
    check_model_fits_data(config.model, task.modality)
    n_train, n_val = (len(manifest.items_for(split)) for split in ("train", "val"))
    size = text_batch_width(manifest, config) if task.is_text else config.img_size
    speed = (measure or machine_speed)(config.model, size, config.device)
    return estimate_run(config, n_train, n_val, speed)


def estimate_run(config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed) -> RunEstimate:
    """The run's time on this machine, what it is spent on, and the fast choice if not taken."""
    from tlcore.models.text_catalog import is_text_model

    if is_text_model(config.model):
        return _estimate_text_run(config, n_train, n_val, speed)
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
