"""DataLoaders that fit the machine, built once per dataset and reused every epoch.

Rebuilding a DataLoader each epoch restarts its worker processes and drops
what they hold; here each dataset gets one loader whose sampler is told the
epoch's order, with persistent workers, pinned memory on CUDA and (unless the
config says ``decoded_cache = "off"``) images decoded once by
``tlcore.data.decoded_cache``. Training and validation batches are normalized
whole (``NormalizeBatch``) instead of image by image; the embedding pass of
the fast path (``decoded=False``) reads each image once, so it skips the cache.

Worker count ("auto" = ``num_workers is None``): on CUDA the CPU only feeds the
GPU, so one worker a core (at most 8); on CPU the model's own math already uses
every core, so workers start only on machines with 4+ cores. Datasets of a few
batches get none: starting processes would cost more than it saves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler, default_collate

MIN_BATCHES_FOR_WORKERS = 4


def auto_num_workers(device: torch.device, n_items: int, batch_size: int) -> int:
    """Data-loading processes that help on this machine for a dataset of ``n_items``."""
    if n_items < MIN_BATCHES_FOR_WORKERS * batch_size:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    if device.type == "cuda":
        return min(cores, 8)
    return min(4, cores // 4)


class OrderSampler(Sampler[int]):
    """Yields ``order`` (set before each epoch); all indices in turn when it is None."""

    def __init__(self, n_items: int, order: Sequence[int] | None = None) -> None:
        self.n_items = n_items
        self.order = order

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n_items) if self.order is None else self.order)

    def __len__(self) -> int:
        return self.n_items if self.order is None else len(self.order)


class BatchCollate:
    """``default_collate``, then the dataset's ``batch_transform`` on the stacked images."""

    def __init__(self, batch_transform: Any) -> None:
        self.batch_transform = batch_transform

    def __call__(self, batch: list[Any]) -> Any:
        images, labels = default_collate(batch)
        return self.batch_transform(images), labels


def collate_fn(dataset: Any) -> Any:
    """The collate a loader over ``dataset`` needs (None: PyTorch's default)."""
    batch_transform = getattr(dataset, "batch_transform", None)
    return BatchCollate(batch_transform) if batch_transform is not None else None


class EpochLoaders:
    """One DataLoader per dataset, kept for the trainer's life; ``get`` sets the epoch order."""

    def __init__(
        self,
        batch_size: int,
        device: torch.device,
        num_workers: int | None = None,
        decoded_cache: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.device = device
        self.num_workers = num_workers
        self.decoded_cache = decoded_cache
        self.cache_dir = cache_dir
        self._loaders: dict[tuple[int, bool], tuple[Any, DataLoader, OrderSampler]] = {}

    def get(
        self, dataset: Any, order: Sequence[int] | None = None, *, decoded: bool = True
    ) -> DataLoader:
        """The dataset's loader, yielding ``order`` this time (images cached when ``decoded``)."""
        key = (id(dataset), decoded)
        if key not in self._loaders:
            self._loaders[key] = (dataset, *self._build(dataset, decoded))
        _, loader, sampler = self._loaders[key]
        sampler.order = order
        return loader

    def _build(self, dataset: Any, decoded: bool) -> tuple[DataLoader, OrderSampler]:
        from tlcore.data.dataset import ManifestDataset, with_batch_normalize, with_decoded_cache

        workers = self.num_workers
        if workers is None:
            workers = auto_num_workers(self.device, len(dataset), self.batch_size)
        if isinstance(dataset, ManifestDataset):
            if not decoded or self.decoded_cache == "off":
                dataset = with_batch_normalize(dataset)
            else:
                dataset = with_decoded_cache(dataset, self.decoded_cache, self.cache_dir)
                if workers > 0:  # workers cannot store what they decode: decode now, in threads
                    dataset.decoded.fill()
        sampler = OrderSampler(len(dataset))
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate_fn(dataset),
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )
        return loader, sampler

    def close(self) -> None:
        """Stop worker processes and drop decoded images now rather than at garbage collection."""
        for _, loader, _ in self._loaders.values():
            iterator = getattr(loader, "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()
            decoded = getattr(loader.dataset, "decoded", None)
            if decoded is not None:
                decoded.close()
        self._loaders.clear()
