"""The feature-extraction fast path: embed every image once, then train only the head.

When the whole backbone is frozen for every epoch and augmentation is off, each
image's pooled embedding never changes, so the backbone runs once per image and
each epoch is a few matrix multiplies on cached vectors (how Teachable Machine
trains in seconds). Training the classifier on these vectors gives the same
head weights as running the full model, because the frozen backbone is in eval
mode in both paths and the head sees the same numbers in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tlcore.training import embedding_cache
from tlcore.training.devices import autocast, to_device

log = logging.getLogger("tlcore.training.features")


def head_module(model: nn.Module) -> nn.Module:
    """The final classifier (timm's ``get_classifier``): the only part the fast path trains."""
    return model.get_classifier()


def head_param_names(model: nn.Module) -> set[str]:
    head = head_module(model)
    ids = {id(p) for p in head.parameters()}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def fast_path_reason(
    model: nn.Module, trainable_per_epoch: list[set[str]], augment: str, augment_views: int = 0
) -> str:
    """Why the fast path cannot be used ("" when it can).

    With augmentation the fast path still applies when ``augment_views`` augmented
    copies of each training photo are embedded once (``embed_views``).
    """
    if augment != "none" and not augment_views:
        return (
            f"augmentation is '{augment}' with no cached views (each epoch sees different pixels)"
        )
    if not hasattr(model, "forward_head") or not hasattr(model, "forward_features"):
        return "the model has no forward_features/forward_head split"
    head = head_param_names(model)
    for epoch, names in enumerate(trainable_per_epoch, start=1):
        if not names or not names <= head:
            return f"layers besides the classifier train in epoch {epoch}"
    return ""


@torch.no_grad()
def embed(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled pre-logit features (eval mode, no head dropout) and labels, in loader order.

    ``progress`` is told how many images each batch held (the run's status shows k of N).
    """
    was_training = model.training
    model.eval()
    features, labels = [], []
    batch_transform = getattr(loader.dataset, "batch_transform", None)
    for images, targets in loader:
        if images.dtype == torch.uint8 and batch_transform is not None:
            images = batch_transform(images)  # a loader built without the dataset's collate
        with autocast(device):
            pooled = model.forward_head(
                model.forward_features(to_device(images, device)), pre_logits=True
            )
        features.append(pooled.float())
        labels.append(targets.to(device))
        if progress is not None:
            progress(len(targets))
    model.train(was_training)
    return torch.cat(features), torch.cat(labels)


def head_forward(model: nn.Module, embeddings: torch.Tensor) -> torch.Tensor:
    """What ``forward_head`` does after pooling: dropout (in train mode) then the classifier."""
    drop = float(getattr(model, "drop_rate", 0.0) or 0.0)
    if drop > 0:
        embeddings = F.dropout(embeddings, p=drop, training=model.training)
    return head_module(model)(embeddings)


def embed_cached(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    cache_file: Path | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``embed`` with the whole pass kept in ``cache_file`` (``embedding_cache.pass_file``), so
    re-runs and resumes skip the backbone; (features, labels, read from the cache)."""
    cached = embedding_cache.read_cache(
        cache_file, lambda c: len(c["labels"]) == len(loader.dataset), "embedding"
    )
    if cached is not None:
        return cached["features"].to(device), cached["labels"].to(device), True
    features, labels = embed(model, loader, device, progress)
    embedding_cache.write_cache(cache_file, {"features": features, "labels": labels})
    return features, labels, False
