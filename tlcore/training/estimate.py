"""How long a run will take on this machine, said before Start, from a measured speed.

A promise like "trains in seconds" is only true for some settings; the honest
answer depends on the photo count, the settings and how fast this machine runs
the model. So ``machine_speed`` (``tlcore.training.machine_speed``) times a few real forward and backward passes of
the chosen model at the chosen size (a second or two, remembered for a day in
the runs folder), and ``estimate_run`` multiplies: on the fast path every photo
goes through the network once (plus its cached augmented views); otherwise every
epoch runs every training photo forward (and backward through the layers that
learn) and every validation photo forward. It also says which choice makes it
fast, with that choice's own estimate. Texts are measured the same way, at the
word pieces of a typical batch of the user's own texts (``text_batch_width``),
and a fine-tune of an encoder's top layers counts its frozen bottom once
(``tlcore.training.frozen_layers``). The steps after the last epoch, until the run says
finished (calibration, "none of these", the score), are counted from the same list the
worker walks (``tlcore.training.finishing_steps``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tlcore.training.config import TrainConfig
from tlcore.training.finishing_steps import (
    FinishStep,
    finishing_steps,
    steps_seconds,
    steps_words,
)
from tlcore.training.machine_speed import (  # the speed; callers may import it from here
    MachineSpeed,
    machine_speed,
)

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest


STARTUP_S = 5.0  # starting the worker, reading the model and the photo list
_WIDTHS: dict[str, int] = {}  # text_batch_width's answers, by data and settings


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
    finish_s: float = 0.0  # of ``seconds``: the steps after the last epoch, until "finished"
    finish_work: str = ""  # those steps in words (what they read again, and why)


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

    total = STARTUP_S + finish_seconds(config, n_train, n_val, speed)
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
    finish = finish_seconds(config, n_train, n_val, speed)
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


def finish_plan(
    config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed
) -> list[FinishStep]:
    """The steps after the last epoch (``tlcore.training.finishing_steps``) as the worker will
    walk them: on the fast path it still holds every embedding; photos also fit "none of
    these" (on the other bundled sample's photos); the best and the last epoch's models each
    get theirs (one, when the run has one epoch)."""
    from tlcore.models.text_catalog import is_text_model

    text = is_text_model(config.model)
    return finishing_steps(
        n_train, n_val, held=uses_fast_path(config, speed.n_groups), unknown=not text,
        checkpoints=("best", "last") if config.epochs > 1 else ("best",),
        items="texts" if text else "photos",
    )  # fmt: skip


def finish_seconds(config: TrainConfig, n_train: int, n_val: int, speed: MachineSpeed) -> float:
    """Seconds from the last epoch to "finished" (``finish_plan`` at this machine's speed)."""
    return steps_seconds(finish_plan(config, n_train, n_val, speed), speed.forward_s)


def _with_finish(
    estimate: RunEstimate, config: TrainConfig, n_train: int, n_val: int
) -> RunEstimate:
    """The estimate with its part after the last epoch said: the seconds and the words."""
    steps = finish_plan(config, n_train, n_val, estimate.speed)
    estimate.finish_s = steps_seconds(steps, estimate.speed.forward_s)
    estimate.finish_work = (f"{steps_words(steps, estimate.items)} That part: "
                            f"{duration_text(estimate.finish_s)}.")  # fmt: skip
    estimate.work = f"{estimate.work} {estimate.finish_work}"
    return estimate


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
        estimate = RunEstimate(seconds, True, duration_text(seconds), work, "", speed, "texts")
        return _with_finish(estimate, config, n_train, n_val)
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
    estimate = RunEstimate(seconds, False, duration_text(seconds), work, tip, speed, "texts")
    return _with_finish(estimate, config, n_train, n_val)


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
        return _with_finish(RunEstimate(seconds, True, duration_text(seconds), work, "", speed),
                            config, n_train, n_val)  # fmt: skip
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
    estimate = RunEstimate(seconds, False, duration_text(seconds), work, tip, speed)
    return _with_finish(estimate, config, n_train, n_val)
