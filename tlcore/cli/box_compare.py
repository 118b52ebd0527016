"""``tlcore compare --data DIR`` on photos with boxes: the detector trained from scratch, on a
frozen ImageNet backbone and fine-tuned, with one budget (``tlcore.lab.box_compare``), and a
table of mAP, time and trainable weights."""

from __future__ import annotations

import argparse

from tlcore.cli import flags, print_json

CLASSIFICATION_LR = "0.001"  # compare's default for photo labels; a detector's SGD needs more
CLASSIFICATION_BATCH = "16"


def cmd_compare_boxes(args: argparse.Namespace) -> int:
    from tlcore.lab.box_compare import box_row_line, compare_detection
    from tlcore.training.config import TrainConfig
    from tlcore.training.detection import DetectionSettings

    args.model = args.model or "tf_efficientnet_lite0"  # the bundled backbone
    batch = 4 if str(args.batch_size) == CLASSIFICATION_BATCH else flags.batch_size(args)
    lr = DetectionSettings.lr if str(args.lr) == CLASSIFICATION_LR else float(args.lr)
    settings = DetectionSettings(model=args.model, weights=flags.weights(args),
                                 epochs=flags.epochs(args), batch_size=batch, lr=lr,
                                 long_side=flags.img_size(args), seed=flags.seed(args))  # fmt: skip
    config = TrainConfig(data=str(args.data), model=args.model, weights=settings.weights,
                         device=args.device, seed=settings.seed, epochs=settings.epochs,
                         batch_size=batch, val_fraction=flags.bounded(args, "val_fraction"))  # fmt: skip
    keys = "".join(k for k in str(args.only).strip().lower() if k in "abc") or "abc"
    result = compare_detection(config, settings, keys,
                               on_finish=lambda row: print(box_row_line(row), flush=True))  # fmt: skip
    if args.json:
        print_json({**result, "task": "image-boxes"})
    return 1 if any(r["state"] in ("failed", "error") for r in result["results"]) else 0
