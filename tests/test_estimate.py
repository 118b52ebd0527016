"""The time estimate the Train page shows before Start: measured speed × the work to do."""

from __future__ import annotations

import time

from tlcore.training.config import TrainConfig
from tlcore.training.estimate import (
    MachineSpeed,
    duration_text,
    estimate_run,
    machine_speed,
    uses_fast_path,
)
from tlcore.training.finishing_steps import OUTSIDE_PHOTOS

# a machine that embeds 10 photos/s and trains 2.5 photos/s through the whole network
SPEED = MachineSpeed("tf_efficientnet_lite0", 224, "cpu", 0.1, 0.4, 9, time.time())


def config(**values) -> TrainConfig:
    return TrainConfig(data="photos", **values)


def test_feature_extraction_without_augmentation_passes_each_photo_once():
    fast = estimate_run(config(freeze="features", augment="none", epochs=5), 700, 180, SPEED)
    assert fast.fast_path and not fast.tip
    # one pass, whatever the epoch count; after the last epoch only the 40 outside photos
    # of "none of these" are read (the embeddings are still held), then the fits
    after = OUTSIDE_PHOTOS
    assert 0.1 * (880 + after) < fast.seconds < 0.1 * (880 + after) + 30
    assert "880 photos" in fast.work


def test_augmentation_turns_the_fast_path_off_and_the_tip_says_which_choice_is_fast():
    slow = estimate_run(config(freeze="features", augment="light", epochs=5), 700, 180, SPEED)
    fast = estimate_run(config(freeze="features", augment="none", epochs=5), 700, 180, SPEED)
    assert not slow.fast_path and slow.seconds > 2 * fast.seconds
    assert "augmentation 'none'" in slow.tip and fast.text in slow.tip
    # augmented views embedded once keep the fast path: one pass per view
    views = estimate_run(
        config(freeze="features", augment="light", augment_views=2), 700, 180, SPEED
    )
    assert views.fast_path and fast.seconds < views.seconds < slow.seconds


def test_layers_that_learn_cost_backward_passes_and_more_layers_cost_more():
    head = estimate_run(config(freeze="features", augment="light"), 700, 180, SPEED)
    last3 = estimate_run(config(freeze="last-3", augment="light"), 700, 180, SPEED)
    full = estimate_run(config(freeze="full", augment="light"), 700, 180, SPEED)
    assert head.seconds < last3.seconds < full.seconds
    assert "Feature extraction" in full.tip and not uses_fast_path(config(freeze="full"), 9)


def test_durations_read_like_speech():
    assert duration_text(12) == "about 10 s"
    assert duration_text(150) == "about 2 min" or duration_text(150) == "about 3 min"
    assert duration_text(2 * 3600 + 300) == "about 2 h 05 min"


def test_the_speed_is_measured_on_this_machine_once_and_scaled_by_pixels():
    small = machine_speed("tf_efficientnet_lite0", 64, device="cpu")
    assert 0 < small.forward_s < small.train_s and small.n_groups > 2
    again = machine_speed("tf_efficientnet_lite0", 64, device="cpu")
    assert again.measured_at == small.measured_at  # remembered, not measured again
