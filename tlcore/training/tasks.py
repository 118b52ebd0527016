"""What training needs of each task: the datasets that read its items, the loss, the unit
of a step. One entry per ``tlcore.data.task.TASKS`` key; ``training_task(task)`` looks it up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from tlcore.data.task import Task, entry_for, refused

if TYPE_CHECKING:
    import torch

    from tlcore.data.manifest import Manifest
    from tlcore.training.config import TrainConfig


@dataclass
class TaskData:
    """What the model reads: its data config, the training set (augmented), the validation
    set, and the training set as validation sees it (the fast path embeds that one)."""

    data_config: dict[str, Any]
    train_set: Any
    val_set: Any
    plain_train_set: Any


def _photo_data(manifest: Manifest, model: nn.Module, cfg: TrainConfig) -> TaskData:
    from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config

    data_config = resolve_data_config(model, cfg.img_size)
    train_tf = build_transform(data_config, train=True, augment=cfg.augment)
    eval_tf = build_transform(data_config, train=False)
    return TaskData(data_config, ManifestDataset(manifest, "train", train_tf),
                    ManifestDataset(manifest, "val", eval_tf),
                    ManifestDataset(manifest, "train", eval_tf))  # fmt: skip


def _text_data(manifest: Manifest, model: nn.Module, cfg: TrainConfig) -> TaskData:
    from tlcore.data.text_dataset import text_datasets  # token ids instead of pixels

    data_config = {**model.text_config, "max_tokens": cfg.max_tokens}
    train_set, val_set = text_datasets(manifest, data_config)
    return TaskData(data_config, train_set, val_set, train_set)


def _one_label_loss(cfg: TrainConfig, class_weights: torch.Tensor | None) -> nn.Module:
    """Cross-entropy over the classes (one label per item)."""
    return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=cfg.label_smoothing)


@dataclass(frozen=True)
class TrainingTask:
    unit: str  # what a step reads, for speeds: "images" or "texts"
    data: Callable[[Manifest, nn.Module, TrainConfig], TaskData]
    loss: Callable[[TrainConfig, torch.Tensor | None], nn.Module]


# label columns train their heads on cached embeddings; a detector has its own loss parts
_COLUMNS_ELSEWHERE = refused(
    "A run of several label columns trains its heads on cached "
    "embeddings (tlcore.training.multitask), not through the Trainer."
)
_BOXES_ELSEWHERE = refused(
    "A run of boxes (object detection) trains a detector "
    "(tlcore.training.detection), not through the Trainer."
)


TRAINING_TASKS: dict[str, TrainingTask] = {
    "image-label": TrainingTask(unit="images", data=_photo_data, loss=_one_label_loss),
    "text-label": TrainingTask(unit="texts", data=_text_data, loss=_one_label_loss),
    "image-columns": TrainingTask(unit="images", data=_COLUMNS_ELSEWHERE, loss=_COLUMNS_ELSEWHERE),
    "text-columns": TrainingTask(unit="texts", data=_COLUMNS_ELSEWHERE, loss=_COLUMNS_ELSEWHERE),
    "image-boxes": TrainingTask(unit="images", data=_BOXES_ELSEWHERE, loss=_BOXES_ELSEWHERE),
}


def training_task(task: Task) -> TrainingTask:
    return entry_for(TRAINING_TASKS, task, "Training for task {key} is not known to this "
                     "version (it trains {known}).")  # fmt: skip
