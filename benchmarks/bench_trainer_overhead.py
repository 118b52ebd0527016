"""Training-loop overhead: tlcore's Trainer vs a minimal plain PyTorch loop, images/s.

Same model (bundled weights, every layer training), same data (the Trainer's
own cached dataset, so data cost is equal), same batch size and resolution,
same optimizer. The plain loop is forward, loss, backward, step. Trainer and
plain loop alternate for a few rounds and the best epoch of each counts, so a
burst of load from other processes does not decide the ratio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from benchmarks import fit_images_per_s, row, sample_manifest, say

IMG_SIZE, BATCH, EPOCHS, ROUNDS = 96, 16, 2, 2


def trainer_epochs(config: Any, manifest: Any) -> tuple[list[float], Any]:
    from tlcore.training.trainer import Trainer

    trainer = Trainer(config, manifest)
    assert not trainer.fast_path
    return fit_images_per_s(trainer), trainer


def plain_epochs(config: Any, n_classes: int, data: torch.utils.data.DataLoader) -> list[float]:
    """images/s of each epoch of the textbook loop (the Trainer's train part is timed alike)."""
    from tlcore.models.factory import create_model

    torch.manual_seed(config.seed)
    model = create_model(config.model, n_classes, config.weights).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    loader = torch.utils.data.DataLoader(data.dataset, batch_size=config.batch_size, shuffle=True,
                                         collate_fn=data.collate_fn)  # fmt: skip
    ips = []
    for _ in range(config.epochs):
        seen, started = 0, time.perf_counter()
        for images, targets in loader:
            loss = F.cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(targets)
        ips.append(seen / (time.perf_counter() - started))
    return ips


def run() -> list[dict]:
    from tlcore.training.config import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        manifest = sample_manifest(Path(tmp))
        config = TrainConfig(data=manifest.root, epochs=EPOCHS, img_size=IMG_SIZE, batch_size=BATCH,
                             augment="none", freeze={"preset": "full"}, num_workers=0)  # fmt: skip
        say(f"{len(manifest.items_for('train'))} train images, {config.model} at {IMG_SIZE} px, "
            f"batch {BATCH}, every layer training, AdamW, {ROUNDS} rounds x {EPOCHS} epochs each")  # fmt: skip
        tl_ips, plain_ips = [], []
        for _ in range(ROUNDS):
            ips, trainer = trainer_epochs(config, manifest)
            tl_ips += ips
            data = trainer.loader(trainer.train_set)  # the same decoded images and collate
            plain_ips += plain_epochs(config, len(manifest.classes), data)
            say(f"trainer {', '.join(f'{x:.1f}' for x in ips)} | plain "
                f"{', '.join(f'{x:.1f}' for x in plain_ips[-EPOCHS:])} images/s")  # fmt: skip
    best_tl, best_plain = max(tl_ips), max(plain_ips)
    ratio = best_tl / best_plain
    return [
        row("trainer vs plain PyTorch loop", best_tl, best_plain, ratio, ">= 0.95x", ratio >= 0.95,
            "images/s", "best epoch of each; ratio = trainer / plain"),
    ]  # fmt: skip
