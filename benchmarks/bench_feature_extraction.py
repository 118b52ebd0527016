"""Feature extraction, 10 epochs on the sample: cached embeddings vs the backbone every epoch.

Three timings on the same data, model and resolution:
- floor: one inference pass over train + val (decode, forward, nothing else) through
  the same loader settings the Trainer uses;
- fast: ``Trainer.fit`` on the fast path (embed once, then 10 head-only epochs);
- baseline: the same Trainer with the fast path switched off, so the frozen
  backbone runs on every image every epoch (images still decoded once).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks import row, sample_manifest, say, timed

EPOCHS, IMG_SIZE, BATCH = 10, 128, 16  # 128 px keeps `make bench` short on 2 cores


def inference_pass(manifest: Any, config: Any) -> float:
    """Seconds for one eval pass over train + val with a plain DataLoader (the floor)."""
    from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config
    from tlcore.data.loading import EpochLoaders
    from tlcore.models.factory import create_model

    model = create_model(config.model, len(manifest.classes), config.weights).eval()
    transform = build_transform(resolve_data_config(model, IMG_SIZE), train=False)
    sets = [ManifestDataset(manifest, split, transform) for split in ("train", "val")]
    # the product's own loader settings (no decoded cache: one pass decodes each image once)
    loaders = EpochLoaders(BATCH, torch.device("cpu"), config.num_workers)

    def one_pass() -> None:
        with torch.inference_mode():
            for dataset in sets:
                for images, _ in loaders.get(dataset, decoded=False):
                    model(images)

    one_pass()  # warm-up: file cache, kernels
    return min(timed(one_pass)[0] for _ in range(2))


def run() -> list[dict]:
    from tlcore.training.config import TrainConfig
    from tlcore.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        manifest = sample_manifest(Path(tmp))
        n = len(manifest.items_for("train")) + len(manifest.items_for("val"))
        # the epoch loop on both sides (head_solver "optimizer"): cached vs recomputed inputs;
        # the converged L-BFGS head is measured in bench_head_defaults
        config = TrainConfig(data=manifest.root, epochs=EPOCHS, img_size=IMG_SIZE,
                             batch_size=BATCH, augment="none", head_solver="optimizer")  # fmt: skip
        say(f"{n} sample images, {config.model} at {IMG_SIZE} px, batch {BATCH}, "
            f"{EPOCHS} epochs, freeze '{config.freeze['preset']}', augment none")  # fmt: skip
        floor = inference_pass(manifest, config)
        say(f"one inference pass: {floor:.2f} s")
        fast_trainer = Trainer(config, manifest)
        assert fast_trainer.fast_path, fast_trainer.fast_path_reason
        fast, _ = timed(fast_trainer.fit)
        say(f"fast path, {EPOCHS} epochs end to end: {fast:.2f} s")
        slow_trainer = Trainer(config, manifest)
        slow_trainer.fast_path = False  # recompute the frozen backbone every epoch
        slow, _ = timed(slow_trainer.fit)
        say(f"backbone every epoch: {slow:.2f} s")
    speedup, over_floor = slow / fast, fast / floor
    return [
        row("feature extraction vs recomputing (10 epochs)", fast, slow, speedup, ">= 5x",
            speedup >= 5, "s", "ratio = recompute / cached"),
        row("feature extraction vs one inference pass", fast, floor, over_floor, "<= 1.3x",
            over_floor <= 1.3, "s", "ratio = cached 10 epochs / one pass"),
    ]  # fmt: skip
