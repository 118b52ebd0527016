"""How long a detection run takes here, said before Start, from a few of the user's photos.

A detector's time is not a classifier's: the photos are larger, a step runs proposals and
box heads, and every epoch scores the validation photos for mAP. So, as
``tlcore.training.estimate.machine_speed`` does for classification, the real steps are timed
on the real data: the same ``DetectionTrainer`` (its architecture without the pretrained
weights: same shapes, same speed) reads and prepares a few training photos (on the fast
path that is the backbone's one pass), takes a training step on a batch of them and finds
the boxes in them as validation does. The run is then those times multiplied: the one pass
over every photo, each epoch's steps and validation, and the scoring of the validation
photos with the whole detector once training ends (a photo read and prepared, then found).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from tlcore.data.boxes import BoxData
from tlcore.errors import DataError
from tlcore.training.detection import DetectionSettings, DetectionTrainer

SAMPLE_PHOTOS = 2  # photos timed (a step of more is scaled): a few seconds on a laptop
STARTUP_S = 5.0  # starting the worker, importing torch, reading the photo list


@dataclass
class DetectionSpeed:
    """Seconds measured here for one run's settings (any number of epochs)."""

    build_s: float  # building the detector
    prepare_s: float  # one photo read and prepared (the fast path: through the backbone)
    step_s: float  # one training step on a batch
    find_s: float  # one prepared photo's boxes found, as validation does
    sample: int  # photos timed
    n_train: int
    n_val: int
    fast_path: bool


@dataclass
class DetectionEstimate:
    """The estimate in seconds and words, and what it counts."""

    seconds: float
    text: str  # "about 3 min"
    covers: str  # what the time is made of, in words
    fast_path: bool


def _words(seconds: float) -> str:
    return f"about {max(1, round(seconds))} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def measure_detection(settings: DetectionSettings, data: BoxData) -> DetectionSpeed:
    """The steps of the run ``settings`` describe, timed on a few of ``data``'s training
    photos (what the epochs count does not change). Raises what building the detector or
    reading a photo raises (tlcore errors in words)."""
    import torch

    started = time.perf_counter()
    trainer = DetectionTrainer(replace(settings, weights="scratch", epochs=1), data)
    build_s = time.perf_counter() - started
    train, val = trainer.train_photos, trainer.val_photos
    sample = train[:SAMPLE_PHOTOS] or val[:SAMPLE_PHOTOS]
    if not sample:
        raise DataError("There are no photos with boxes to time the detector on.")
    started = time.perf_counter()
    prepared = trainer._prepare(sample)
    prepare_s = (time.perf_counter() - started) / len(sample)
    idx = list(range(min(settings.batch_size, len(sample))))
    trainer.model.train()
    times = []
    for _ in range(2):  # the first step allocates: the second is the one that counts
        started = time.perf_counter()
        loss = sum(trainer._forward(prepared, idx, train=True).values())
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        times.append(time.perf_counter() - started)
    step_s = times[-1] * settings.batch_size / len(idx)  # fewer photos than a batch: scaled
    trainer.model.eval()
    with torch.no_grad():
        started = time.perf_counter()
        trainer._forward(prepared, list(range(len(sample))), train=False)
        find_s = (time.perf_counter() - started) / len(sample)
    return DetectionSpeed(build_s, prepare_s, step_s, find_s, len(sample), len(train), len(val),
                          trainer.fast_path)  # fmt: skip


def estimate_detection(settings: DetectionSettings, data: BoxData,
                       speed: DetectionSpeed | None = None) -> DetectionEstimate:  # fmt: skip
    """The run's time: the one pass over every photo, each epoch's steps and validation,
    and the final scoring of the validation photos; ``speed`` as ``measure_detection``
    gives it (measured now when None)."""
    m = speed or measure_detection(settings, data)
    steps = math.ceil(m.n_train / settings.batch_size)
    per_epoch = steps * m.step_s + m.n_val * m.find_s
    seconds = (STARTUP_S + m.build_s + m.prepare_s * (m.n_train + m.n_val)
               + settings.epochs * per_epoch + m.n_val * (m.prepare_s + m.find_s))  # fmt: skip
    once = "the frozen backbone's one pass over" if m.fast_path else "reading and resizing"
    epochs = f"{settings.epochs} epoch{'s' * (settings.epochs != 1)}"
    covers = (f"measured here on {m.sample} of your photos: {once} the {m.n_train + m.n_val} "
              f"photos, {epochs} of {steps} steps with the validation mAP of {m.n_val} photos "
              f"each, and the final scoring of the {m.n_val} validation photos with the whole "
              "detector")  # fmt: skip
    return DetectionEstimate(seconds, _words(seconds), covers, m.fast_path)
