"""A pretrained backbone that embeds photos (its head unused), through the one embedding cache.

Few-shot, zero-shot and the data doctor look at photos through a frozen pretrained
backbone and its evaluation preprocessing. Their embeddings go through
``tlcore.training.embedding_cache`` under the same key as the trainer's fast path,
so each photo is embedded once per backbone and size, whichever of them asks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from tlcore.data.manifest import Manifest
from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.data.task import task_of
from tlcore.training import embedding_cache, features

BATCH_SIZE = 32


class _ImageListDataset(torch.utils.data.Dataset):
    """Preprocessed PIL images (already read) with placeholder labels, for ``features.embed``."""

    def __init__(self, images: Sequence[Image.Image], transform: Any) -> None:
        self.images, self.transform = list(images), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index].convert("RGB")), -1


class Embedder:
    """A pretrained backbone (its head unused) and its evaluation preprocessing."""

    def __init__(
        self,
        model: str = "tf_efficientnet_lite0",
        weights: str = "bundled",
        img_size: int | None = None,
        device: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        from tlcore.data.dataset import build_transform, resolve_data_config
        from tlcore.models.factory import create_model
        from tlcore.training.devices import resolve_device

        self.model_name, self.weights = model, weights
        self.device = resolve_device(device)
        self.model = create_model(model, None, weights).to(self.device).eval()
        self.data_config = resolve_data_config(self.model, img_size)
        self.transform = build_transform(self.data_config, train=False)
        self.cache_dir = cache_dir if cache_dir is not None else embedding_cache.folder()
        self.rows = embedding_cache.ItemEmbeddings(self.cache_dir, self.identity())

    def _loader(self, dataset: torch.utils.data.Dataset) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, num_workers=0)

    def embed_manifest(
        self, manifest: Manifest, split: str, what: str, progress: ProgressCallback | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Embeddings (on the CPU) and labels of one split, and how many photos were embedded
        now (the others read from the cache). ``progress`` hears "``what``: k of N"."""
        from tlcore.data.dataset import ManifestDataset

        dataset = ManifestDataset(manifest, split, self.transform)
        labels = torch.tensor(dataset.labels, dtype=torch.long)
        if len(dataset) == 0:
            return torch.empty(0, 0), labels, 0
        tracker = Tracker(what, len(dataset), progress)

        def embed_order(order: list[int]) -> torch.Tensor:
            if len(order) < len(dataset):  # the rows in the cache: all at once
                tracker.advance(len(dataset) - len(order))
            subset = torch.utils.data.Subset(dataset, order)
            return features.embed(self.model, self._loader(subset), self.device, tracker.advance)[0]

        stamps = embedding_cache.item_stamps(task_of(manifest), dataset.items)
        x, embedded = self.rows.embed(stamps, embed_order)
        if not embedded:  # everything was in the cache
            tracker.advance(len(dataset))
        return x.cpu(), labels, embedded

    def embed_split(
        self, manifest: Manifest, split: str, progress: ProgressCallback | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and labels of one split; read from the cache when seen before.

        ``progress`` hears "Embedding the train photos: k of N" (one Embedder serves every
        session of the app, so the callback comes with the call, not the object).
        """
        x, y, _ = self.embed_manifest(manifest, split, f"Embedding the {split} photos", progress)
        return x, y

    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embeddings of images in memory (uploads); not cached, they are usually new."""
        if not images:
            return torch.empty(0, 0)
        x, _ = features.embed(
            self.model, self._loader(_ImageListDataset(images, self.transform)), self.device
        )
        return x.cpu()

    def identity(self) -> dict[str, Any]:
        """Everything besides the photos that changes an embedding (the cache key)."""
        return embedding_cache.backbone_identity(
            self.model_name, self.weights, self.data_config, self.device, seed=None
        )
