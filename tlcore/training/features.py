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
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlcore.errors import ConfigError
from tlcore.training import embedding_cache, onnx_backbone
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


RUNTIMES = ("auto", "eager", "onnxruntime")
RUNTIME = "auto"  # what passes use unless told (the benchmark sets "eager" to time the old loop)
_PREFETCH_BATCHES = 2  # batches read ahead of the network: enough to hide decoding, bounded memory


def read_threads() -> int:
    """Threads that read and decode photos during a pass: one a core, at most 8. They run
    at most ``_PREFETCH_BATCHES`` ahead of the network, so where it fills the cores they
    take its idle moments. Measured on 2 cores with onnxruntime (bench_embedding_pass):
    12 MP JPEGs 16.9 photos/s without the overlap, 15-16 with one thread, 23.5 with two,
    24 with three; the 320 px sample 81.8 -> 84.0."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def _loaded_batches(loader: torch.utils.data.DataLoader, threads: int) -> Iterator[Any]:
    """The loader's batches in its order, each photo of a batch read in its own thread
    (Pillow decodes without the GIL); a loader with worker processes is iterated as is."""
    if loader.num_workers > 0 or loader.batch_sampler is None or threads <= 1:
        yield from loader
        return
    if not _reads_in_any_order(loader.dataset):  # random augmentation: the RNG's order counts
        yield from loader
        return
    dataset, collate = loader.dataset, loader.collate_fn
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tlcore-read") as pool:
        for indices in loader.batch_sampler:
            yield collate(list(pool.map(dataset.__getitem__, indices)))


def _reads_in_any_order(dataset: Any) -> bool:
    """True when the dataset's items do not depend on the order they are read in."""
    from tlcore.data.decoded_cache import deterministic

    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    transform = getattr(dataset, "transform", None)
    return transform is not None and deterministic(transform)


def prefetched(batches: Iterator[Any], depth: int = _PREFETCH_BATCHES) -> Iterator[Any]:
    """``batches`` produced in a background thread up to ``depth`` ahead, so reading and
    decoding overlap the network; same items, same order, and the producer's errors
    (a ``DataError`` for a photo that changed) raised here."""
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put("batch", batch):
                    return
            put("end", None)
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put("error", exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:  # stops a reading pool left mid-pass
                close()

    thread = threading.Thread(target=produce, name="tlcore-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _network(
    model: nn.Module, device: torch.device, runtime: str, n_images: int, first: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The pooled-features function of the runtime ``runtime`` picks for this pass."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}.")
    if device.type == "cpu" and runtime != "eager" and first.dim() == 4:
        export = runtime == "onnxruntime" or onnx_backbone.worth_exporting(
            n_images, tuple(first.shape)
        )  # else only a graph already exported: a short pass does not pay for an export
        run = onnx_backbone.runner(model, first, embedding_cache.folder(), export=export)
        if run is not None:
            return run

    def eager(images: torch.Tensor) -> torch.Tensor:
        with autocast(device):
            return model.forward_head(
                model.forward_features(to_device(images, device)), pre_logits=True
            )

    return eager


@torch.no_grad()
def embed(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    progress: Callable[[int], None] | None = None,
    *,
    runtime: str | None = None,
    overlap: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled pre-logit features (eval mode, no head dropout) and labels, in loader order.

    ``progress`` is told how many images each batch held (the run's status shows k of N).
    Photos are read and decoded in threads ahead of the network (``overlap``), and on a
    CPU the network runs in onnxruntime when the pass is long enough (``runtime`` "auto",
    the default ``RUNTIME``; see ``tlcore.training.onnx_backbone``); "eager" and
    ``overlap=False`` are the plain loop, for comparisons.
    """
    was_training = model.training
    model.eval()
    features, labels = [], []
    batch_transform = getattr(loader.dataset, "batch_transform", None)
    batches = _loaded_batches(loader, read_threads() if overlap else 1)
    network = None
    try:
        for images, targets in prefetched(batches) if overlap else batches:
            if images.dtype == torch.uint8 and batch_transform is not None:
                images = batch_transform(images)  # a loader built without the dataset's collate
            if network is None:
                network = _network(model, device, runtime or RUNTIME, len(loader.dataset), images)
            features.append(network(images).float().to(device))
            labels.append(targets.to(device))
            if progress is not None:
                progress(len(targets))
    finally:
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
