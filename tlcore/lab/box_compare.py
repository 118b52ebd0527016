"""The compare experiment for object detection: one set of photos with boxes, one budget, the
same Faster R-CNN trained three ways, to show what ImageNet weights are worth for finding
objects too.

(a) from scratch: random backbone weights, every layer trains (BatchNorm learns its
statistics); (b) feature extraction: the ImageNet backbone frozen, only the pyramid and the
heads train (the fast path: feature maps computed once); (c) full fine-tune: the ImageNet
backbone starts the same and every layer trains. Same split, epochs, training size, batch
size and learning rate for all three. Each is an ordinary detection run directory (tagged
with the experiment id in its config), trained one after another by the worker so their
timings compare like with like.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tlcore.errors import TLCoreError
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig
from tlcore.training.detection import DetectionSettings


@dataclass(frozen=True)
class BoxVariant:
    """One way to train the detector: where the backbone starts and how much of it trains."""

    key: str
    label: str
    weights: str  # "scratch" or where the ImageNet weights come from ("bundled", ...)
    trainable_blocks: int | None  # 0: frozen (fast path); None: every layer
    idea: str


def box_variants(pretrained: str = "bundled") -> tuple[BoxVariant, ...]:
    return (
        BoxVariant("a", "From scratch", "scratch", None,
                   "random backbone, every layer trains: no transfer at all"),
        BoxVariant("b", "Frozen ImageNet backbone", pretrained, 0,
                   "ImageNet features kept as they are; only the pyramid and heads train"),
        BoxVariant("c", "Fine-tuned ImageNet backbone", pretrained, None,
                   "ImageNet features adapt to these objects with the heads"),
    )  # fmt: skip


def trainable_params(settings: DetectionSettings, classes: list[str], size: tuple[int, int]) -> int:
    """How many weights a variant trains (the architecture alone, no weights loaded)."""
    from tlcore.models.detector import build_detector, freeze_backbone

    model = build_detector(settings.model, classes, settings.weights, size, [], load=False)
    freeze_backbone(model, settings.trainable_blocks)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _row(variant: BoxVariant, run: Run, seconds: float, params: int) -> dict[str, Any]:
    status = run.status()
    epochs = [e for e in run.metrics() if e.get("type") == "epoch"]
    return {"key": variant.key, "label": variant.label, "idea": variant.idea, "run_id": run.id,
            "state": status["state"], "map50": status.get("map50"), "map": status.get("map"),
            "ap50_per_class": status.get("ap50_per_class"), "seconds": round(seconds, 1),
            "seconds_per_epoch": round(sum(e["seconds"] for e in epochs) / len(epochs), 2)
            if epochs else None, "trainable_params": params,
            "fast_path": bool(epochs and epochs[-1].get("fast_path")),
            "message": status.get("message", "")}  # fmt: skip


def compare_detection(
    config: TrainConfig,
    settings: DetectionSettings,
    keys: str = "abc",
    on_finish: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Train ``config.data`` as each variant in ``keys`` with the budget in ``settings``
    (epochs, size, batch, lr, seed; its weights and trainable blocks are the variant's);
    {"experiment", "results": [row per variant]}. A variant that fails is a row saying so."""
    from tlcore.data.box_report import training_size
    from tlcore.models.freezing import FreezePlan
    from tlcore.runs.boxes_run import create_boxes_run

    experiment = f"detect-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    chosen = [v for v in box_variants(settings.weights if settings.weights != "scratch"
                                      else "bundled") if v.key in keys]  # fmt: skip
    rows = []
    for variant in chosen:
        s = dataclasses.replace(settings, weights=variant.weights,
                                trainable_blocks=variant.trainable_blocks, augment=False)  # fmt: skip
        freeze = FreezePlan.parse("features" if variant.trainable_blocks == 0 else "full")
        cfg = dataclasses.replace(config, weights=variant.weights, experiment=experiment,
                                  freeze=freeze.to_dict(), name=f"{experiment}-{variant.key}")  # fmt: skip
        started = time.monotonic()
        try:
            run, data, _ = create_boxes_run(cfg, s)
            params = trainable_params(s, data.classes, training_size(data, s.long_side))
            run.spawn_worker(resume=False)
            run.wait(timeout=timeout)
            row = _row(variant, run, time.monotonic() - started, params)
        except TLCoreError as exc:
            row = {"key": variant.key, "label": variant.label, "idea": variant.idea,
                   "run_id": None, "state": "error", "map50": None, "map": None,
                   "ap50_per_class": None, "seconds": round(time.monotonic() - started, 1),
                   "seconds_per_epoch": None, "trainable_params": None, "fast_path": False,
                   "message": str(exc)}  # fmt: skip
        rows.append(row)
        if on_finish is not None:
            on_finish(row)
    return {"experiment": experiment, "results": rows}


def box_row_line(row: dict[str, Any]) -> str:
    """``(b) Frozen ImageNet backbone  finished  mAP@0.5 0.812  mAP 0.452  95.0 s  ...``."""
    m50 = "-" if row["map50"] is None else f"{row['map50']:.3f}"
    m = "-" if row["map"] is None else f"{row['map']:.3f}"
    params = "-" if row["trainable_params"] is None else f"{row['trainable_params']:,}"
    fast = " (fast path)" if row.get("fast_path") else ""
    return (f"({row['key']}) {row['label']:<29} {row['state']:<9} mAP@0.5 {m50:>5}  "
            f"mAP@0.5:0.95 {m:>5}  {row['seconds']:>7.1f} s  {params:>10} trainable{fast}")  # fmt: skip
