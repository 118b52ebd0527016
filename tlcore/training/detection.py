"""Training a detector (``tlcore.models.detector``) on photos with boxes, read top to bottom.

Every photo is resized once to the training size. With the backbone frozen and no
augmentation (the default) the backbone's feature maps of every photo are computed once
and cached (half precision), and only the pyramid and the heads learn each epoch: the fast
path. Otherwise the whole model reads the photos each epoch (flipped at random with augment).
Validation mAP each epoch is torchmetrics' ``MeanAveragePrecision`` (pycocotools), with its
0.5, 0.5:0.95 and per-class values in the epoch's event.

Under torchrun (``tlcore.training.distributed``) each rank prepares and trains on its own
share of the training photos (``batch_size`` per process), DistributedDataParallel averages
the gradients, each step's losses are averaged over ranks, rank 0 alone scores the
validation photos and tells the others, and a stop on one rank stops all at the same step.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from tlcore.data.box_report import box_sides, training_size
from tlcore.data.boxes import BoxData, BoxedPhoto
from tlcore.data.progress import Tracker
from tlcore.training import distributed

LOSS_PARTS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")
FEATURE_BATCH = 8  # photos through the frozen backbone at once (the fast path's one pass)
FEATURE_WORDS = "Computing the backbone's feature maps once (fast path)"


@dataclass
class DetectionSettings:
    """The knobs of a detection run (kept in the run's config.json under "detection")."""

    model: str = "tf_efficientnet_lite0"
    weights: str = "bundled"
    epochs: int = 8  # BCCD: mAP@0.5 0.87-0.88 from epoch 4 (benchmarks/detection_bccd.py)
    batch_size: int = 4
    lr: float = 0.02
    # a pretrained backbone that trains takes smaller steps than the new heads: at the heads'
    # lr its frozen-BatchNorm activations blow up to NaN within 20 steps (BCCD, full fine-tune)
    backbone_lr_scale: float = 0.1
    long_side: int | None = None  # the training size's long side; None: from the data
    trainable_blocks: int | None = 0  # 0: backbone frozen (fast path); K: last K; None: all
    augment: bool = False  # random flips (only without the fast path)
    seed: int = 0
    max_photos: int | None = None  # a budget for tests and quick looks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def photo_tensor(photo: BoxedPhoto, size: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
    """The photo as floats in [0, 1] at ``size`` (height, width) and its boxes scaled to it."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    with Image.open(photo.path) as im:
        image = im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
    sx, sy = size[1] / photo.width, size[0] / photo.height
    boxes = torch.tensor([[b.xmin * sx, b.ymin * sy, b.xmax * sx, b.ymax * sy]
                          for b in photo.boxes], dtype=torch.float32).reshape(-1, 4)  # fmt: skip
    return pil_to_tensor(image).float() / 255, {"boxes": boxes}


@dataclass
class Prepared:
    images: list[torch.Tensor]
    targets: list[dict[str, torch.Tensor]]
    features: list[list[torch.Tensor]] = field(default_factory=list)  # fast path


class DetectionTrainer:
    """``fit()`` trains for ``settings.epochs``; ``callbacks`` hear ``on_epoch_end(trainer,
    event)``, ``on_step_end(trainer, event)`` and, on the fast path's one pass over the
    photos, ``on_embed_progress(trainer, progress)`` (a ``Progress``), and may call
    ``request_stop``."""

    def __init__(self, settings: DetectionSettings, data: BoxData,
                 callbacks: list[Any] | None = None) -> None:  # fmt: skip
        from tlcore.models.detector import build_detector, freeze_backbone

        torch.manual_seed(settings.seed)
        self.settings, self.data = settings, data
        self.callbacks = callbacks or []
        self.classes = data.classes
        self.size = training_size(data, settings.long_side)
        self.model = build_detector(settings.model, self.classes, settings.weights, self.size,
                                    box_sides(data, self.size))  # fmt: skip
        freeze_backbone(self.model, settings.trainable_blocks)
        self.fast_path = settings.trainable_blocks == 0 and not settings.augment
        self.epoch = self.step = 0
        self.best: dict[str, Any] = {"epoch": 0, "map50": -1.0}
        self.history: list[dict[str, Any]] = []
        self.stop_message = ""
        train, val = data.split("train"), data.split("val")
        if settings.max_photos:
            train = train[: settings.max_photos]
            val = val[: max(2, settings.max_photos // 2)]
        if distributed.active():  # this rank's share (padded to equal steps); rank 0 scores
            train = [train[i] for i in distributed.shard(torch.arange(len(train))).tolist()]
            val = val if distributed.is_main() else []
        self.train_photos, self.val_photos = train, val
        body = {id(p) for p in self.model.backbone.body.parameters()}
        scale = 1.0 if settings.weights == "scratch" else settings.backbone_lr_scale
        groups = [{"params": [p for p in self.model.parameters() if p.requires_grad
                              and (id(p) in body) == in_body], "scale": s}
                  for in_body, s in ((False, 1.0), (True, scale))]  # fmt: skip
        self.optimizer = torch.optim.SGD([g for g in groups if g["params"]], lr=settings.lr,
                                         momentum=0.9, weight_decay=1e-4)  # fmt: skip
        self.steps_per_epoch = math.ceil(len(train) / settings.batch_size)
        self.embed_seconds = 0.0

    # --- the data ----------------------------------------------------------------------
    def _prepare(self, photos: list[BoxedPhoto], tracker: Tracker | None = None) -> Prepared:
        """The photos at the training size with their targets; on the fast path the
        backbone's feature maps instead of the pixels, ``tracker`` counting the photos."""
        label_of = {c: i + 1 for i, c in enumerate(self.classes)}  # 0 is the background
        prepared = Prepared([], [])
        body = self.model.backbone.body.eval() if self.fast_path else None
        mean, std = self.model.transform.image_mean, self.model.transform.image_std
        norm = (torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1))
        for start in range(0, len(photos), FEATURE_BATCH):
            images = []
            for photo in photos[start : start + FEATURE_BATCH]:
                image, target = photo_tensor(photo, self.size)
                target["labels"] = torch.tensor([label_of[b.label] for b in photo.boxes],
                                                dtype=torch.int64)  # fmt: skip
                images.append(image)
                prepared.targets.append(target)
            if body is None:
                prepared.images.extend(images)
            else:  # the pixels are not needed again: only the feature maps are kept
                started = time.monotonic()
                with torch.no_grad():
                    levels = body((torch.stack(images) - norm[0]) / norm[1])
                if isinstance(levels, dict):  # a torchvision detector's body names them
                    levels = list(levels.values())
                prepared.features.extend([f[j].half() for f in levels] for j in range(len(images)))
                self.embed_seconds += time.monotonic() - started
            if tracker is not None:
                tracker.advance(len(images))
        return prepared

    def _forward(self, prepared: Prepared, idx: list[int], train: bool) -> Any:
        """Losses (training) or detections (eval) for the photos ``idx``."""
        from torchvision.models.detection.image_list import ImageList

        from tlcore.models.detector import pyramid

        targets = [prepared.targets[i] for i in idx] if train else None
        if not self.fast_path:
            images = [prepared.images[i] for i in idx]
            if train and self.settings.augment:
                images, targets = _flip(images, targets)
            return self.model(images, targets)
        levels = [torch.stack([prepared.features[i][k] for i in idx])
                  for k in range(len(prepared.features[idx[0]]))]  # fmt: skip
        features = pyramid(self.model.backbone, levels)
        h, w = self.size
        images = ImageList(torch.empty(len(idx), 3, h, w), [(h, w)] * len(idx))
        proposals, rpn_losses = self.model.rpn(images, features, targets)
        detections, roi_losses = self.model.roi_heads(features, proposals, images.image_sizes,
                                                      targets)  # fmt: skip
        return {**rpn_losses, **roi_losses} if train else detections

    # --- the loop ----------------------------------------------------------------------
    def fit(self) -> str:
        s = self.settings
        tracker = None
        if self.fast_path:  # "k of N photos" and the time left, heard by on_embed_progress
            tracker = Tracker(FEATURE_WORDS, len(self.train_photos) + len(self.val_photos),
                              lambda p: self._tell("on_embed_progress", replace(p, unit="photos")),
                              every_s=0.5)  # fmt: skip
        train = self._prepare(self.train_photos, tracker)
        val = self._prepare(self.val_photos, tracker)
        total_steps = s.epochs * self.steps_per_epoch
        warmup = min(100, total_steps // 5)
        rng = random.Random(s.seed)
        ddp = distributed.wrap_step(self.model, self._forward) if distributed.active() else None
        for epoch in range(self.epoch + 1, s.epochs + 1):
            started = time.monotonic()
            self.model.train()
            order = list(range(len(train.targets)))
            rng.shuffle(order)
            sums = dict.fromkeys(LOSS_PARTS, 0.0)
            for b in range(0, len(order), s.batch_size):
                lr = s.lr * (min(1.0, (self.step + 1) / max(1, warmup))
                             * 0.5 * (1 + math.cos(math.pi * self.step / total_steps)))  # fmt: skip
                for group in self.optimizer.param_groups:
                    group["lr"] = lr * group.get("scale", 1.0)
                idx = order[b : b + s.batch_size]
                losses = ddp(train, idx, True) if ddp else self._forward(train, idx, train=True)
                loss = sum(losses.values())
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self.step += 1
                parts = {k: float(v.detach()) for k, v in losses.items()}
                parts = distributed.means_over_ranks({**parts, "loss": float(loss.detach())})
                loss = parts.pop("loss")
                for k in LOSS_PARTS:
                    sums[k] += parts.get(k, 0.0)
                self._tell("on_step_end", {"type": "step", "epoch": epoch, "step": self.step,
                                           "loss": loss, "lr": lr, **parts})  # fmt: skip
                if self._stopping():
                    return "stopped"
            self.epoch = epoch
            scores = distributed.from_main(self.evaluate(val) if distributed.is_main() else None)
            n = max(1, self.steps_per_epoch)
            event = {"type": "epoch", "epoch": epoch, "epochs": s.epochs, "step": self.step,
                     "seconds": time.monotonic() - started, "fast_path": self.fast_path,
                     "train_loss": sum(sums.values()) / n,
                     **{k: v / n for k, v in sums.items()}, **scores}  # fmt: skip
            event["is_best"] = scores["map50"] > self.best["map50"]
            if event["is_best"]:
                self.best = {"epoch": epoch, **scores}
            self.history.append(event)
            self._tell("on_epoch_end", event)
            if self._stopping():
                return "stopped"
        return "finished"

    def _stopping(self) -> bool:
        """A stop asked on any rank (rank 0 reads the run's stop file) stops every rank here."""
        if distributed.any_rank(bool(self.stop_message)) and not self.stop_message:
            self.request_stop("Stopped on rank 0's request.")
        return bool(self.stop_message)

    @torch.no_grad()
    def evaluate(self, val: Prepared) -> dict[str, Any]:
        """mAP@0.5, mAP@0.5:0.95 and AP@0.5:0.95 per class on the validation photos."""
        from torchmetrics.detection import MeanAveragePrecision

        # 0.5:0.95 overall and per class; a second one at IoU 0.5 only for AP@0.5 per class
        # (torchmetrics reports per-class AP over 0.5:0.95 alone)
        # sync_on_compute=False: under torchrun rank 0 alone scores, the others never gather
        metrics = [MeanAveragePrecision(iou_type="bbox", class_metrics=True, sync_on_compute=False),
                   MeanAveragePrecision(iou_type="bbox", class_metrics=True, iou_thresholds=[0.5],
                                        sync_on_compute=False)]  # fmt: skip
        self.model.eval()
        for b in range(0, len(val.targets), 8):
            idx = list(range(b, min(b + 8, len(val.targets))))
            found = [{k: d[k] for k in ("boxes", "scores", "labels")}
                     for d in self._forward(val, idx, train=False)]  # fmt: skip
            for metric in metrics:
                metric.update(found, [val.targets[i] for i in idx])
        result, at50 = (metric.compute() for metric in metrics)
        return {"map50": round(float(result["map_50"]), 4), "map": round(float(result["map"]), 4),
                "ap_per_class": self._per_class(result), "ap50_per_class": self._per_class(at50)}  # fmt: skip

    def _per_class(self, result: dict[str, torch.Tensor]) -> dict[str, float]:
        """{class name: AP} (a class with no box in the validation photos is left out)."""
        out = {}
        for cid, ap in zip(result["classes"].reshape(-1).tolist(),
                           result["map_per_class"].reshape(-1).tolist(), strict=True):  # fmt: skip
            if ap >= 0:  # -1: no box of it to find
                out[self.classes[int(cid) - 1]] = round(ap, 4)
        return out

    def request_stop(self, message: str) -> None:
        self.stop_message = message

    def _tell(self, hook: str, event: dict[str, Any]) -> None:
        for cb in self.callbacks:
            fn: Callable[..., None] | None = getattr(cb, hook, None)
            if fn is not None:
                fn(self, event)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "best": self.best,
                "optimizer": self.optimizer.state_dict(), "history": self.history}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step, self.best = state["epoch"], state["step"], state["best"]
        self.history = state.get("history", [])
        self.optimizer.load_state_dict(state["optimizer"])


def _flip(images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]] | None]:  # fmt: skip
    """Random horizontal and vertical flips (a microscope or a desk has no "up")."""
    out_i, out_t = [], []
    for image, target in zip(images, targets or [{}] * len(images), strict=True):
        boxes = target.get("boxes")
        h, w = image.shape[-2:]
        if random.random() < 0.5:
            image = image.flip(-1)
            if boxes is not None:
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        if random.random() < 0.5:
            image = image.flip(-2)
            if boxes is not None:
                boxes = torch.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], 1)
        out_i.append(image)
        out_t.append({**target, "boxes": boxes} if boxes is not None else target)
    return out_i, out_t if targets is not None else None


def detections_of(model: nn.Module, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """One photo (floats in [0, 1], at the training size) through the whole detector."""
    model.eval()
    with torch.no_grad():
        return model([image])[0]
