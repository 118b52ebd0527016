"""``tlcore train/predict/evaluate`` for photos with boxes (object detection).

``tlcore train --data DIR`` notices boxes in the folder (Pascal VOC, COCO, YOLO, CSV;
``tlcore.data.boxes``), prints the data report, writes a run directory whose task is
"image-boxes" and starts the same detached worker as any run (``tlcore.runs.boxes_run``);
``--json`` ends with ``map50``, ``map``, per-class AP and ``seconds``. ``tlcore predict RUN
photo.jpg --json`` gives ``path`` and ``boxes: [{label, score, xmin, ymin, xmax, ymax}]``;
``tlcore evaluate RUN`` says mAP, each class in words, the worst photos and the confusions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tlcore.cli import print_json
from tlcore.data.scan import printable
from tlcore.runs.run import Run

DEFAULT_BATCH = 4  # photos per step: a detector's photo is large and holds many boxes


def wants_boxes(args: argparse.Namespace) -> bool:
    """A folder holding annotations in one of the box formats."""
    from tlcore.data.boxes import box_format

    return box_format(args.data) is not None


def settings_from_args(args: argparse.Namespace) -> tuple[object, object]:
    """(TrainConfig, DetectionSettings) from the train flags."""
    from tlcore.cli import flags
    from tlcore.models.detector import COCO_DETECTORS
    from tlcore.models.freeze_plan import FreezePlan
    from tlcore.training.config import TrainConfig
    from tlcore.training.detection import DetectionSettings

    args.model = args.model or "tf_efficientnet_lite0"  # the bundled backbone
    coco = args.model in COCO_DETECTORS  # torchvision's whole detector, pretrained on COCO
    chosen = "coco" if coco and args.weights != "scratch" else None
    plan = FreezePlan.parse(args.freeze)
    trainable = {"features": 0, "full": None}.get(plan.preset, plan.k)
    epochs = flags.epochs(args) if args.epochs is not None else DetectionSettings.epochs
    batch = DEFAULT_BATCH if str(args.batch_size) == "16" else flags.batch_size(args)
    detection = DetectionSettings(
        model=args.model, weights=chosen or flags.weights(args), epochs=epochs, batch_size=batch,
        lr=float(args.lr) if args.lr else DetectionSettings.lr, long_side=flags.img_size(args),
        trainable_blocks=trainable, augment=args.augment not in (None, "none"),
        seed=flags.seed(args),
    )  # fmt: skip
    config = TrainConfig(data=str(args.data), model=args.model, weights=detection.weights,
                         device=args.device, seed=detection.seed, epochs=epochs,
                         batch_size=batch, val_fraction=flags.bounded(args, "val_fraction"),
                         name=args.name, nproc=flags.bounded(args, "nproc"))  # fmt: skip
    return config, detection


def cmd_train_boxes(args: argparse.Namespace, in_process: Any = None) -> int:
    """``in_process``: under torchrun, ``tlcore.cli.train``'s way of training every rank in
    this process (rank 0 writes the run)."""
    from tlcore.cli import start_and_wait
    from tlcore.runs.boxes_run import create_boxes_run

    config, detection = settings_from_args(args)
    if in_process is not None:
        from tlcore.training.distributed import launched_world_size

        config.nproc = launched_world_size()  # type: ignore[attr-defined]
        return in_process(args, lambda: create_boxes_run(config, detection)[0], False,
                          boxes_result)  # fmt: skip
    started = time.monotonic()
    run, _, report = create_boxes_run(config, detection)  # type: ignore[arg-type]
    status = start_and_wait(run, list(report), args)
    if status is None:  # detached
        return 0
    result = boxes_result(run, status, time.monotonic() - started)
    if args.json:
        print_json(result)
    return 1 if status["state"] == "failed" else 0


def boxes_result(run: Run, status: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    """The final JSON of ``tlcore train`` and ``tlcore resume`` (torchrun or not) for a
    detection run: map50, map, per-class AP and seconds (``tlcore.cli.train``'s
    ``result_of``)."""
    from tlcore.runs.boxes_run import result_of

    return {**result_of(run), "seconds": None if seconds is None else round(seconds, 2)}


def cmd_predict_boxes(run: Run, args: argparse.Namespace) -> int:
    from tlcore.cli import print_answers
    from tlcore.cli.csv_output import check_csv_target, write_csv_text
    from tlcore.export.box_csv import boxes_csv
    from tlcore.results.box_evaluation import counts_in_words
    from tlcore.runs.boxes_run import predict_boxes

    def said(answer: dict[str, Any]) -> str:  # "8 RBC, 1 WBC"
        return counts_in_words([box["label"] for box in answer["boxes"]])

    found: list[dict[str, Any]] = []

    def answers(files: list[str]) -> list[dict[str, Any]]:
        if args.csv:  # checked before the work, not after it
            check_csv_target(Path(args.csv), files)
        found.extend(predict_boxes(run, files))
        return found

    code = print_answers(answers, args.paths, args.json, said)
    if args.csv:  # a row per box (tlcore.export.box_csv)
        write_csv_text(boxes_csv(found), Path(args.csv))
    return code


def cmd_inspect_boxes(args: argparse.Namespace) -> int:
    """``tlcore inspect DIR`` on photos with boxes: the detection report in words."""
    from tlcore.cli import flags
    from tlcore.data.box_report import box_report, training_size
    from tlcore.data.boxes import read_boxes

    data = read_boxes(args.data, val_fraction=args.val_fraction, seed=flags.seed(args))
    lines = box_report(data, training_size(data))
    if args.json:
        print_json({"task": "image-boxes", "format": data.format, "classes": data.classes,
                    "photos": len(data.photos), "report": lines, "problems": data.problems,
                    "annotations_without_photo": data.annotations_without_photo,
                    "photos_without_annotation": data.photos_without_annotation})  # fmt: skip
    else:
        print("\n".join(printable(line) for line in lines))
    return 0


def cmd_evaluate_boxes(run: Run, args: argparse.Namespace) -> int:
    """``tlcore evaluate RUN`` on a detection run: mAP, each class in words, the worst photos
    and the confused classes, from the checkpoint's detections kept in the run (one pass)."""
    from tlcore.runs.boxes_run import evaluate_boxes_run

    report = evaluate_boxes_run(run, args.checkpoint)
    if args.json:
        print_json(report)
        return 0
    print(f"Evaluated {run.id} ({args.checkpoint}) on {report['photos']} validation photos "
          f"with {report['true_boxes']} boxes.")  # fmt: skip
    print(f"mAP@0.5 {report['map50']:.3f}, mAP@0.5:0.95 {report['map']:.3f}.")
    for name, ap in report["ap50_per_class"].items():
        print(printable(f"AP@0.5 {name}: {ap:.3f}"))
    print(f"At a score threshold of {report['threshold']:g}, the model:")
    for line in report["words"] + report["confusion_words"]:
        print(printable(f"  {line}"))
    for photo in report["worst_photos"]:
        print(
            printable(f"  {photo['path']}: {photo['missed']} missed, {photo['false']} false boxes")
        )
    return 0
