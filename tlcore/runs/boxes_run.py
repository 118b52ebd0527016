"""A run that learns boxes (task target "boxes"): object detection.

The same run directory as any run: ``config.json`` (``"task": {"modality": "image",
"target": "boxes"}`` and the detection settings under ``"detection"``), ``status.json``,
``metrics.jsonl`` (``step`` events with the four loss parts, ``epoch`` events with them and
the validation mAP), ``log.txt`` and the worker; stop (``stop.request``) ends the epoch at the
next step and resume continues from ``checkpoints/last``. The detector's weights are in
``checkpoints/{best,last}.pt``; ``boxes.json`` keeps the data as read (photos, boxes, split,
every problem).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import torch

from tlcore.data.box_report import box_report, training_size
from tlcore.data.boxes import Box, BoxData, BoxedPhoto, read_boxes
from tlcore.errors import RunError
from tlcore.runs.files import (
    append_event,
    keep_history_until,
    now_iso,
    read_json,
    write_json_atomic,
)
from tlcore.runs.run import Run, package_versions
from tlcore.training.config import TrainConfig
from tlcore.training.detection import DetectionSettings, DetectionTrainer

BOXES = {"modality": "image", "target": "boxes"}
BOXES_FILE = "boxes.json"


def create_boxes_run(config: TrainConfig, settings_: DetectionSettings) -> tuple[Run, BoxData, list[str]]:  # fmt: skip
    """Read the boxes (``config.data``), write the run directory; nothing trains yet."""
    data = read_boxes(config.data, val_fraction=config.val_fraction, seed=config.seed)
    report = box_report(data, training_size(data, settings_.long_side))
    run = Run.new_folder(config)
    write_json_atomic(run.dir / BOXES_FILE, asdict(data))
    write_json_atomic(run.config_path, {
        "id": run.id, "created": now_iso(), "owner": config.owner, "task": dict(BOXES),
        "config": config.to_dict(), "detection": settings_.to_dict(),
        "data": {"source": str(config.data), "format": data.format, "classes": data.classes,
                 "split_source": data.split_source, "report": report,
                 "split_seed": config.seed},
        "versions": package_versions(),
    })  # fmt: skip
    run.write_status("queued", message="Waiting for the worker to start.")
    return run, data, report


def boxes_data(run: Run) -> BoxData:
    raw = read_json(run.dir / BOXES_FILE)
    if not raw:
        raise RunError(f"{run.dir} holds no {BOXES_FILE}: it is not a detection run.")
    photos = [BoxedPhoto(p["path"], p["width"], p["height"], [Box(**b) for b in p["boxes"]],
                         p["split"]) for p in raw.pop("photos")]  # fmt: skip
    return BoxData(photos=photos, **raw)


def detection_settings(run: Run) -> DetectionSettings:
    return DetectionSettings(**run.record.get("detection", {}))


class BoxesRecorder:
    """Writes the run directory as the trainer goes: events, status, checkpoints, stop."""

    def __init__(self, run: Run) -> None:
        self.run, self.pid = run, os.getpid()

    def on_step_end(self, trainer: DetectionTrainer, event: dict[str, Any]) -> None:
        append_event(self.run.metrics_path, {"time": now_iso(), **event})
        if self.run.stop_path.exists():
            trainer.request_stop(f"Stopped by request at step {trainer.step}.")

    def on_epoch_end(self, trainer: DetectionTrainer, event: dict[str, Any]) -> None:
        append_event(self.run.metrics_path, {"time": now_iso(), **event})
        save(self.run, "last", trainer)
        if event["is_best"]:
            save(self.run, "best", trainer)
        self.run.write_status("running", pid=self.pid, epoch=event["epoch"], step=trainer.step,
                              message=f"Finished epoch {event['epoch']} of "
                              f"{trainer.settings.epochs}: mAP@0.5 {event['map50']:.3f}.")  # fmt: skip


def save(run: Run, name: str, trainer: DetectionTrainer) -> None:
    run.checkpoints_dir.mkdir(exist_ok=True)
    path = run.checkpoints_dir / f"{name}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"model": trainer.model.state_dict(), "trainer": trainer.state_dict()}, tmp)
    os.replace(tmp, path)


def train_boxes_run(run: Run, resume: bool = False) -> str:
    """Train the detector; the final state. Called by the worker (``tlcore.runs.worker``)."""
    pid = os.getpid()
    run.write_status("running", pid=pid, message="Loading the detector and the photos.")
    data = boxes_data(run)
    trainer = DetectionTrainer(detection_settings(run), data, [BoxesRecorder(run)])
    last = run.checkpoints_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        trainer.model.load_state_dict(state["model"])
        trainer.load_state_dict(state["trainer"])
        keep_history_until(run.metrics_path, trainer.epoch, trainer.step)
    run.write_status("running", pid=pid, epoch=trainer.epoch,
                     message="Computing the backbone's feature maps once (fast path)."
                     if trainer.fast_path else "Training the whole detector.")  # fmt: skip
    outcome = trainer.fit()
    if outcome == "stopped":
        save(run, "last", trainer)
    best = trainer.best
    words = (f"best mAP@0.5 {best['map50']:.3f}, mAP@0.5:0.95 {best['map']:.3f} (epoch "
             f"{best['epoch']})" if best["epoch"] else "no epoch finished")  # fmt: skip
    message = trainer.stop_message or f"Finished {trainer.epoch} epochs: {words}."
    run.write_status(outcome, pid=pid, epoch=trainer.epoch, step=trainer.step, message=message,
                     map50=best.get("map50"), map=best.get("map"),
                     ap50_per_class=best.get("ap50_per_class"),
                     ap_per_class=best.get("ap_per_class"))  # fmt: skip
    return outcome


def load_detector(run: Run, checkpoint: str = "best") -> tuple[torch.nn.Module, list[str], tuple[int, int]]:  # fmt: skip
    """The trained detector of ``run``, its classes and its training size (height, width)."""
    from tlcore.data.box_report import box_sides
    from tlcore.models.detector import build_detector

    path = run.checkpoints_dir / f"{checkpoint}.pt"
    if not path.is_file():
        raise RunError(f"run {run.id} has no '{checkpoint}' checkpoint yet: train it first.")
    data, s = boxes_data(run), detection_settings(run)
    size = training_size(data, s.long_side)
    # the architecture only: the trained weights replace every tensor below
    model = build_detector(
        s.model, data.classes, s.weights, size, box_sides(data, size), load=False
    )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), data.classes, size


def predict_boxes(run: Run, paths: list[str], min_score: float = 0.5) -> list[dict[str, Any]]:
    """For each photo: its path and boxes [{label, score, xmin, ymin, xmax, ymax}] in the
    photo's own pixels."""
    from PIL import Image

    from tlcore.training.detection import detections_of, photo_tensor

    model, classes, size = load_detector(run)
    answers = []
    for path in paths:
        with Image.open(path) as im:
            width, height = im.size
        image, _ = photo_tensor(BoxedPhoto(path, width, height, []), size)
        found = detections_of(model, image)
        sx, sy = width / size[1], height / size[0]
        boxes = [{"label": classes[int(label) - 1], "score": round(float(score), 4),
                  "xmin": round(float(b[0]) * sx, 1), "ymin": round(float(b[1]) * sy, 1),
                  "xmax": round(float(b[2]) * sx, 1), "ymax": round(float(b[3]) * sy, 1)}
                 for b, score, label in zip(found["boxes"], found["scores"], found["labels"],
                                            strict=True) if float(score) >= min_score]  # fmt: skip
        answers.append({"path": str(path), "boxes": boxes})
    return answers


def result_of(run: Run) -> dict[str, Any]:
    """The final JSON of ``tlcore train`` for a detection run."""
    status = run.status()
    epochs = [e for e in run.metrics() if e.get("type") == "epoch"]
    return {"run_dir": str(run.dir), "id": run.id, "state": status["state"],
            "message": status.get("message", ""), "epochs": len(epochs),
            "map50": status.get("map50"), "map": status.get("map"),
            "ap50_per_class": status.get("ap50_per_class"),
            "ap_per_class": status.get("ap_per_class"),
            "seconds_per_epoch": round(sum(e["seconds"] for e in epochs) / len(epochs), 2)
            if epochs else None}  # fmt: skip
