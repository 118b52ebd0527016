"""Fine-tuning the last 2 layers of all-MiniLM-L6-v2: frozen bottom run once vs every epoch.

The same Trainer, data (the bundled reviews sample, or its first ``TEXTS`` rows)
and settings (``--freeze last-3``: layers 4-5, pooling and the head learn), once
with the partial fast path (``tlcore.training.frozen_layers``: the embeddings and
layers 0-3 run once per text) and once through the whole encoder every epoch.
Two rows: the fastest epoch of each (what every further epoch costs) and the whole
``fit`` including the one pass; both runs must end with the same validation
accuracy, since the cached path gives the same numbers.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

from benchmarks import row, say

TEXTS, EPOCHS, BATCH = 400, 3, 16  # 3 epochs, as in the command


def fit_seconds(config, manifest, cached: bool) -> tuple[float, float, float]:
    """(seconds of the whole ``fit``, of its fastest epoch, best validation accuracy)."""
    from tlcore.training.trainer import Trainer

    trainer = Trainer(config, manifest)
    if not cached:
        trainer.frozen_depth = 0  # the whole encoder, every epoch
    assert bool(trainer.frozen_depth) == cached
    started = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - started, min(trainer.epoch_seconds), trainer.best["val_acc"]


def run() -> list[dict]:
    from tlcore import settings
    from tlcore.data.prepare import prepare_data
    from tlcore.models.freezing import FreezePlan
    from tlcore.training.config import TrainConfig

    with open(settings.text_sample_path(), encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "reviews.csv"
        with open(data, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows[: TEXTS + 1])
        manifest = prepare_data(data, manifest_path=Path(tmp) / "manifest.json").manifest
        config = TrainConfig(data=str(data), model="all-MiniLM-L6-v2", epochs=EPOCHS,
                             batch_size=BATCH, augment="none", lr=1e-3,
                             freeze=FreezePlan.parse("last-3").to_dict() | {"lr_decay": 0.1})  # fmt: skip
        say(
            f"{len(manifest.items)} review texts, last 2 layers + head, {EPOCHS} epochs, batch {BATCH}"
        )
        full_s, full_epoch, full_acc = fit_seconds(config, manifest, cached=False)
        cached_s, cached_epoch, cached_acc = fit_seconds(config, manifest, cached=True)
    say(f"whole encoder {full_s:.1f} s, epoch {full_epoch:.1f} s (val {full_acc:.3f}) | frozen "
        f"bottom once {cached_s:.1f} s, epoch {cached_epoch:.1f} s (val {cached_acc:.3f})")  # fmt: skip
    same = cached_acc == full_acc
    epoch_ratio, fit_ratio = full_epoch / cached_epoch, full_s / cached_s
    return [
        row("text last-2-layers epoch, frozen bottom cached", cached_epoch, full_epoch,
            epoch_ratio, ">= 1.5x", epoch_ratio >= 1.5 and same, "s",
            "fastest epoch of each; same val accuracy required"),
        row("text last-2-layers whole fit (3 epochs + the one pass)", cached_s, full_s, fit_ratio,
            ">= 1.2x", fit_ratio >= 1.2 and same, "s", "ratio = whole encoder / cached"),
    ]  # fmt: skip
