"""A run that learns boxes (task target "boxes"): object detection.

The same run directory as any run: ``config.json`` (``"task": {"modality": "image",
"target": "boxes"}`` and the detection settings under ``"detection"``), ``status.json``,
``metrics.jsonl`` (``step`` events with the four loss parts, ``epoch`` events with them and
the validation mAP), ``log.txt`` and the worker; stop (``stop.request``) ends the epoch at the
next step and resume continues from ``checkpoints/last``. The detector's weights are in
``checkpoints/{best,last}.safetensors`` with the trainer's state beside them
(``.state.pt``, the house checkpoint pair of ``tlcore.training.checkpoints``); ``boxes.json``
keeps the data as read (photos, boxes, split, every problem). ``box-scores-<checkpoint>.json``
keeps a checkpoint's detections on the validation photos, made once (``box_scores``), which
the evaluation reads (``tlcore.results.box_evaluation``).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tlcore.data.box_report import box_report, training_size
from tlcore.data.boxes import Box, BoxData, BoxedPhoto, read_boxes
from tlcore.data.progress import Progress
from tlcore.errors import DataError, RunError
from tlcore.results.box_evaluation import (
    DEFAULT_THRESHOLD,
    SCORE_FLOOR,
    BoxScores,
    PhotoBoxes,
    box_evaluation,
    read_scores,
    write_scores,
)
from tlcore.results.box_predict import detect
from tlcore.runs.checkpoint_model import checkpoint_stamp
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
SCORES_FILE = "box-scores-{checkpoint}.json"
# passes of a checkpoint's detector over the validation photos in this process: the one
# pass ``box_scores`` keeps to one (tests/test_detection.py counts them)
PASSES: Counter[str] = Counter()


def create_boxes_run(config: TrainConfig, settings_: DetectionSettings) -> tuple[Run, BoxData, list[str]]:  # fmt: skip
    """Read the boxes (``config.data``), write the run directory; nothing trains yet. A
    person with too many runs waiting is refused in words first (``tlcore.runs.limits``)."""
    from tlcore.models.detector import check_detector_weights
    from tlcore.runs.limits import check_queue
    from tlcore.runs.run import active_runs

    check_queue(config.owner, len(active_runs(config.owner)))
    check_detector_weights(settings_.model, settings_.weights)  # COCO's: here or reachable
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

    def on_embed_progress(self, trainer: DetectionTrainer, progress: Progress) -> None:
        """The fast path's one pass, "k of N photos" with the time left, kept in the status
        as classification's embedding pass is (``embedding``: the page and CLI draw its bar)."""
        words = (f"{progress.text()}." if progress.done < progress.total else
                 f"Training epoch {trainer.epoch + 1} of {trainer.settings.epochs}.")  # fmt: skip
        self.run.write_status("running", pid=self.pid, epoch=trainer.epoch, message=words,
                              embedding=progress.to_dict())  # fmt: skip

    def on_epoch_end(self, trainer: DetectionTrainer, event: dict[str, Any]) -> None:
        append_event(self.run.metrics_path, {"time": now_iso(), **event})
        save(self.run, "last", trainer)
        if event["is_best"]:
            save(self.run, "best", trainer)
        self.run.write_status("running", pid=self.pid, epoch=event["epoch"], step=trainer.step,
                              embedding=None,
                              message=f"Finished epoch {event['epoch']} of "
                              f"{trainer.settings.epochs}: mAP@0.5 {event['map50']:.3f}.")  # fmt: skip


def save(run: Run, name: str, trainer: DetectionTrainer) -> None:
    """The house checkpoint pair: weights (safetensors) and the trainer's state, atomically."""
    from tlcore.training.checkpoints import save_checkpoint

    save_checkpoint(run.checkpoints_dir, name, trainer.model, trainer.state_dict())


def _weights(run: Run, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from tlcore.training.checkpoints import checkpoint_paths

    path = checkpoint_paths(run.checkpoints_dir, name)[0]
    if not path.is_file():
        raise RunError(f"run {run.id} has no '{name}' checkpoint yet: train it first.")
    return load_file(str(path))


def train_boxes_run(run: Run, resume: bool = False) -> str:
    """Train the detector; the final state. Called by the worker (``tlcore.runs.worker``)."""
    from tlcore.training import distributed

    pid, main = os.getpid(), distributed.is_main()  # under torchrun rank 0 writes the run
    if not main:  # another rank: trains its share and keeps the step count, writes nothing
        return _train_other_rank(run, resume)
    run.write_status("running", pid=pid, message="Loading the detector and the photos.")
    data = boxes_data(run)
    trainer = DetectionTrainer(detection_settings(run), data, [BoxesRecorder(run)])
    from tlcore.training.checkpoints import checkpoint_paths, has_checkpoint

    if resume and has_checkpoint(run.checkpoints_dir, "last"):
        trainer.model.load_state_dict(_weights(run, "last"))
        state_path = checkpoint_paths(run.checkpoints_dir, "last")[1]
        trainer.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
        keep_history_until(run.metrics_path, trainer.epoch, trainer.step)
    run.write_status("running", pid=pid, epoch=trainer.epoch,
                     message="Computing the backbone's feature maps once (fast path)."
                     if trainer.fast_path else "Training the whole detector.")  # fmt: skip
    outcome = trainer.fit()
    if outcome == "stopped":
        save(run, "last", trainer)
    elif trainer.val_photos:  # the Evaluate page and `tlcore evaluate` read these, not the model
        run.write_status("running", pid=pid, epoch=trainer.epoch,
                         message="Finding the boxes in the validation photos once.")  # fmt: skip
        write_scores(scores_path(run, "best"), score_validation_boxes(run, "best"),
                     checkpoint_stamp(run, "best"))  # fmt: skip
    best = trainer.best
    words = (f"best mAP@0.5 {best['map50']:.3f}, mAP@0.5:0.95 {best['map']:.3f} (epoch "
             f"{best['epoch']})" if best["epoch"] else "no epoch finished")  # fmt: skip
    message = (
        trainer.stop_message
        or f"Finished {trainer.epoch} epoch{'s' * (trainer.epoch != 1)}: {words}."
    )
    run.write_status(outcome, pid=pid, epoch=trainer.epoch, step=trainer.step, message=message,
                     map50=best.get("map50"), map=best.get("map"),
                     ap50_per_class=best.get("ap50_per_class"),
                     ap_per_class=best.get("ap_per_class"))  # fmt: skip
    return outcome


def _train_other_rank(run: Run, resume: bool) -> str:
    """A rank > 0 under torchrun: the same trainer without recorders, resumed like rank 0."""
    from tlcore.training.checkpoints import checkpoint_paths, has_checkpoint

    trainer = DetectionTrainer(detection_settings(run), boxes_data(run))
    if resume and has_checkpoint(run.checkpoints_dir, "last"):
        trainer.model.load_state_dict(_weights(run, "last"))
        state_path = checkpoint_paths(run.checkpoints_dir, "last")[1]
        trainer.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    return trainer.fit()


def load_detector(run: Run, checkpoint: str = "best") -> tuple[torch.nn.Module, list[str], tuple[int, int]]:  # fmt: skip
    """The trained detector of ``run``, its classes and its training size (height, width)."""
    from tlcore.data.box_report import box_sides
    from tlcore.models.detector import build_detector

    weights = _weights(run, checkpoint)
    data, s = boxes_data(run), detection_settings(run)
    size = training_size(data, s.long_side)
    # the architecture only: the trained weights replace every tensor below
    model = build_detector(
        s.model, data.classes, s.weights, size, box_sides(data, size), load=False
    )
    model.load_state_dict(weights)
    return model.eval(), data.classes, size


def predict_boxes(run: Run, paths: list[str], min_score: float = 0.5,
                  checkpoint: str = "best") -> list[dict[str, Any]]:  # fmt: skip
    """For each photo: its path and boxes [{label, score, xmin, ymin, xmax, ymax}] in the
    photo's own pixels."""
    from PIL import Image

    model, classes, size = load_detector(run, checkpoint)
    # the heads drop boxes under their own floor (0.05) before ``min_score`` is applied
    model.roi_heads.score_thresh = min(model.roi_heads.score_thresh, min_score)
    answers = []
    for path in paths:
        with Image.open(path) as im:
            answers.append(
                {"path": str(path), "boxes": detect(model, classes, size, im, min_score)}
            )
    return answers


def scores_path(run: Run, checkpoint: str) -> Path:
    return run.dir / SCORES_FILE.format(checkpoint=checkpoint)


def score_validation_boxes(run: Run, checkpoint: str = "best") -> BoxScores:
    """One pass of the checkpoint's detector over the validation photos: every detection at
    the score floor and the true boxes, in each photo's pixels."""
    from PIL import Image

    photos = boxes_data(run).split("val")
    if not photos:
        raise DataError(f"run {run.id} has no photos in its validation split to score.")
    model, classes, size = load_detector(run, checkpoint)
    model.roi_heads.score_thresh = SCORE_FLOOR  # keep the low ones: the threshold moves later
    index = {c: i for i, c in enumerate(classes)}
    scored = []
    for photo in photos:
        with Image.open(photo.path) as im:
            found = detect(model, classes, size, im, min_score=SCORE_FLOOR)
        scored.append(PhotoBoxes(
            photo.path, photo.width, photo.height,
            [[b.xmin, b.ymin, b.xmax, b.ymax] for b in photo.boxes],
            [index[b.label] for b in photo.boxes],
            [[f["xmin"], f["ymin"], f["xmax"], f["ymax"]] for f in found],
            [f["score"] for f in found], [index[f["label"]] for f in found]))  # fmt: skip
    PASSES[checkpoint] += 1
    return BoxScores(list(classes), scored)


def box_scores(run: Run, checkpoint: str = "best") -> BoxScores:
    """The checkpoint's kept detections on the validation photos, or the one pass that makes
    them (kept unless the run is still writing this checkpoint)."""
    stamp = checkpoint_stamp(run, checkpoint)
    kept = read_scores(scores_path(run, checkpoint), stamp)
    if kept is not None:
        return kept
    scores = score_validation_boxes(run, checkpoint)
    if run.status().get("state") not in ("queued", "running"):
        with contextlib.suppress(OSError):  # a read-only run folder: right, just not kept
            write_scores(scores_path(run, checkpoint), scores, stamp)
    return scores


def evaluate_boxes_run(run: Run, checkpoint: str = "best",
                       threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:  # fmt: skip
    """``tlcore evaluate RUN --json`` for a detection run: mAP, per-class AP and words, the
    precision-recall points, the worst photos and the confused classes."""
    return {"run": run.id, "checkpoint": checkpoint,
            **box_evaluation(box_scores(run, checkpoint), threshold)}  # fmt: skip


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
