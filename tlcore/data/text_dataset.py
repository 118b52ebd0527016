"""Tensors for text: each example's token ids, tokenized once, padded per batch.

A model's tokenizer (from its ``text_config``: where it lives, the pad id, how
many word pieces to read) turns every sentence into ids when the dataset is
built; a thousand sentences take a fraction of a second with a fast tokenizer,
so there is nothing to cache between epochs. Items are padded to
``max_tokens`` so PyTorch's default collate can stack them, and the loader's
``batch_transform`` then cuts the columns that are padding in every row, so a
batch of short reviews costs what short reviews cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from tlcore.data.manifest import Manifest
from tlcore.errors import DataError

MIN_TOKENS, MAX_TOKENS = 8, 512


def load_tokenizer(source: str) -> Any:
    """The fast (Rust) tokenizer saved with a model folder or named on the hub (cache first)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, use_fast=True)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DataError(f"Could not load the tokenizer from {source}: {first}") from None


class TrimPadding:
    """Drop the trailing columns that are padding in every row of a batch (a picklable callable)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        used = (ids != self.pad_id).any(0).nonzero()
        return ids[:, : int(used.max()) + 1] if len(used) else ids[:, :1]


def tokenize(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> torch.Tensor:
    """Token ids ``[len(texts), max_tokens]`` (int64), truncated and padded with the pad id."""
    if not MIN_TOKENS <= int(max_tokens) <= MAX_TOKENS:
        raise DataError(f"max_tokens must be from {MIN_TOKENS} to {MAX_TOKENS}, got {max_tokens}.")
    if not texts:
        return torch.empty(0, int(max_tokens), dtype=torch.long)
    encoded = tokenizer(list(texts), padding="max_length", truncation=True,
                        max_length=int(max_tokens), return_tensors="pt")  # fmt: skip
    return encoded["input_ids"].long()


class TextDataset(Dataset):
    """(token ids ``[max_tokens]``, label) pairs for one split of a text manifest."""

    def __init__(self, manifest: Manifest, split: str, text_config: dict[str, Any],
                 tokenizer: Any = None) -> None:  # fmt: skip
        self.manifest = manifest
        self.split = split
        self.items = manifest.items_for(split)
        self.classes = list(manifest.classes)
        self.texts = [item.text or "" for item in self.items]
        tokenizer = tokenizer or load_tokenizer(text_config["tokenizer"])
        self.ids = tokenize(tokenizer, self.texts, text_config["max_tokens"])
        self.targets = torch.tensor([item.label for item in self.items], dtype=torch.long)
        self.batch_transform = TrimPadding(int(text_config["pad_id"]))

    @property
    def labels(self) -> list[int]:
        return self.targets.tolist()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.ids[index], int(self.targets[index])


def text_datasets(
    manifest: Manifest, text_config: dict[str, Any]
) -> tuple[TextDataset, TextDataset]:
    """Train and validation datasets sharing one tokenizer."""
    tokenizer = load_tokenizer(text_config["tokenizer"])
    return (
        TextDataset(manifest, "train", text_config, tokenizer),
        TextDataset(manifest, "val", text_config, tokenizer),
    )
