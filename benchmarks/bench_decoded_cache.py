"""Fine-tuning on photo-sized JPEGs: images decoded once (decoded cache) vs every epoch.

The sample photos are re-saved at 500x375 (a typical phone photo after a
resize) so decoding costs what it costs on users' data. Both sides go through
the Trainer's own loader (``Trainer.loader``), with augmentation on (random
crops, flips, colour jitter every epoch); only ``decoded_cache`` differs.
Two rows: the data epoch alone (what the cache changes) and whole training
epochs with the frozen backbone (what a user waits for on a CPU, where the
model's forward pass dominates).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks import fit_images_per_s, median, row, sample_manifest, say, timed

PHOTO_SIZE, IMG_SIZE, BATCH, EPOCHS = (500, 375), 160, 16, 3
DATA_EPOCHS = 7  # data-only epochs are cheap: more of them steady the medians


def make_photos(source: Path, dest: Path) -> int:
    """Copies of the sample at photo size (portraits stay portrait), JPEG quality 90."""
    count = 0
    for path in sorted(source.rglob("*.jpg")):
        out = dest / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            size = PHOTO_SIZE if im.width >= im.height else PHOTO_SIZE[::-1]
            im.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(out, quality=90)
        count += 1
    return count


def data_epochs(trainers: dict[str, Any]) -> dict[str, list[float]]:
    """Seconds per epoch of iterating each Trainer's train loader (decode + augment + collate).

    The trainers take turns epoch by epoch (the order flips every epoch), so a
    burst of load from elsewhere on the machine hits both sides alike instead of
    deciding the ratio.
    """
    from tlcore.training.trainer import epoch_order

    seconds: dict[str, list[float]] = {mode: [] for mode in trainers}
    modes = list(trainers)
    for epoch in range(1, DATA_EPOCHS + 1):
        for mode in modes if epoch % 2 else modes[::-1]:
            trainer = trainers[mode]
            order = epoch_order(len(trainer.train_set), trainer.config.seed, epoch).tolist()
            loader = trainer.loader(trainer.train_set, order)
            seconds[mode].append(timed(lambda loader=loader: sum(len(y) for _, y in loader))[0])
    return seconds


def train_images_per_s(config: Any, manifest: Any) -> list[float]:
    from tlcore.training.trainer import Trainer

    return fit_images_per_s(Trainer(config, manifest))


def run() -> list[dict]:
    from tlcore import settings
    from tlcore.training.config import TrainConfig
    from tlcore.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        n = make_photos(settings.sample_data_dir(), photos)
        manifest = sample_manifest(Path(tmp), photos)
        n_train = len(manifest.items_for("train"))
        say(f"{n} JPEGs at {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} ({n_train} train), {IMG_SIZE} px crops, "
            f"batch {BATCH}, augment light; {DATA_EPOCHS} data epochs taking turns, "
            f"{EPOCHS} training epochs; epoch 1 fills the cache, medians of the rest")  # fmt: skip
        configs = {
            mode: TrainConfig(data=str(photos), epochs=EPOCHS, img_size=IMG_SIZE, batch_size=BATCH,
                              augment="light", decoded_cache=mode, num_workers=0)
            for mode in ("auto", "off")
        }  # fmt: skip
        data = data_epochs({mode: Trainer(cfg, manifest) for mode, cfg in configs.items()})
        for mode, seconds in data.items():
            say(
                f"data epochs, decoded_cache={mode}: "
                + ", ".join(f"{s:.2f}" for s in seconds)
                + " s"
            )
        train = {mode: train_images_per_s(cfg, manifest) for mode, cfg in configs.items()}
        for mode, ips in train.items():
            say(f"training images/s, decoded_cache={mode}: " + ", ".join(f"{x:.1f}" for x in ips))
    cached, decoded = median(data["auto"][1:]), median(data["off"][1:])
    fast_ips, slow_ips = median(train["auto"][1:]), median(train["off"][1:])
    return [
        row("decoded cache: data epoch", cached, decoded, decoded / cached, ">= 2x",
            decoded / cached >= 2, "s/epoch", "ratio = decode every epoch / cached"),
        row("decoded cache: training epoch (CPU, frozen backbone)", fast_ips, slow_ips,
            fast_ips / slow_ips, "report", None, "images/s", "ratio = cached / decode every epoch"),
    ]  # fmt: skip
