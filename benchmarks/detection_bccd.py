"""BCCD detection with the defaults: mAP@0.5 (overall and per class), mAP@0.5:0.95, training
time and time per epoch; the ImageNet backbone against the same detector from scratch at the
same budget (the same number of epochs).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/detection_bccd.py [--epochs N] [--scratch | --only-scratch]
        [--trainable-blocks K] [--out benchmarks/detection_bccd.json]

Not a ``bench_*`` row of ``make bench``: the defaults train for about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tlcore.data.boxes import read_boxes
from tlcore.training.detection import DetectionSettings, DetectionTrainer


class Print:
    def on_epoch_end(self, trainer: DetectionTrainer, e: dict) -> None:
        print(f"epoch {e['epoch']}/{e['epochs']}: loss {e['train_loss']:.3f} map50 "
              f"{e['map50']:.3f} map {e['map']:.3f} {e['seconds']:.0f} s "
              f"{e['ap50_per_class']}", flush=True)  # fmt: skip


def measure(weights: str, epochs: int, trainable_blocks: int | None) -> dict:
    data = read_boxes(Path(__file__).resolve().parents[1] / "assets" / "bccd")
    settings = DetectionSettings(weights=weights, epochs=epochs,
                                 trainable_blocks=trainable_blocks)  # fmt: skip
    started = time.monotonic()
    trainer = DetectionTrainer(settings, data, [Print()])
    trainer.fit()
    last = trainer.history[-1]
    return {"weights": weights, "epochs": epochs, "trainable_blocks": trainable_blocks,
            "fast_path": trainer.fast_path, "size": trainer.size,
            "seconds": round(time.monotonic() - started, 1),
            "embed_seconds": round(trainer.embed_seconds, 1),
            "seconds_per_epoch": round(sum(e["seconds"] for e in trainer.history)
                                       / len(trainer.history), 1),
            "map50": last["map50"], "map": last["map"], "ap50_per_class": last["ap50_per_class"],
            "ap_per_class": last["ap_per_class"], "best": trainer.best}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=DetectionSettings.epochs)
    parser.add_argument("--scratch", action="store_true", help="also train from scratch")
    parser.add_argument("--only-scratch", action="store_true", help="train from scratch only")
    parser.add_argument("--trainable-blocks", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/detection_bccd.json")
    args = parser.parse_args()
    results = []
    if not args.only_scratch:
        results.append(measure("bundled", args.epochs, args.trainable_blocks))
        print(json.dumps(results[-1]), flush=True)
    if args.scratch or args.only_scratch:  # scratch cannot use a frozen backbone: it trains it all
        results.append(measure("scratch", args.epochs, None))
        print(json.dumps(results[-1]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
