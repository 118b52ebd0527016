"""Sentences of a table of labels as embeddings: the bundled MiniLM encoder, frozen, cached.

A table whose item column holds sentences (``tlcore.data.columns``, modality "text") trains
the same shared layer and heads as a table of photos (``tlcore.training.multitask``); only
the backbone differs. Each sentence is tokenised as the text classifier does
(``tlcore.data.text_dataset.tokenize``), run once through the encoder (mean of its last
layer over the real tokens, ``TextClassifier.forward_features``) and kept in the one
embedding cache under its words (``embedding_cache.text_stamp``), so the same sentence in
another file, run or task is not embedded again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL
from tlcore.training import embedding_cache

BATCH_SIZE = 64


class TextEmbedder:
    """A pretrained text encoder (no head) and its tokenizer, through the embedding cache."""

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, weights: str = "bundled",
                 max_tokens: int = 128, device: str = "auto",
                 cache_dir: Path | None = None) -> None:  # fmt: skip
        from tlcore.data.text_dataset import load_tokenizer
        from tlcore.models.text_models import create_text_model
        from tlcore.training.devices import resolve_device

        self.model_name, self.weights = model, weights
        self.device = resolve_device(device)
        self.model = create_text_model(model, None, weights).to(self.device).eval()
        self.tokenizer = load_tokenizer(self.model.text_config["tokenizer"])
        self.max_tokens = int(max_tokens)
        self.data_config = {**self.model.text_config, "max_tokens": self.max_tokens}
        identity = embedding_cache.backbone_identity(model, weights, self.data_config,
                                                     self.device, None)  # fmt: skip
        folder = cache_dir if cache_dir is not None else embedding_cache.folder()
        self.rows = embedding_cache.ItemEmbeddings(folder, identity)

    def _embed_now(self, texts: Sequence[str], tick: Callable[[int], None]) -> torch.Tensor:
        return embed_texts_now(self.model, self.tokenizer, self.max_tokens, texts, tick)

    def embed_texts(self, texts: Sequence[str],
                    progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, int]:  # fmt: skip
        """Every sentence's embedding (cached by its words) and how many were embedded now."""
        texts = [str(t) for t in texts]
        stamps = [embedding_cache.text_stamp(SimpleNamespace(text=t)) for t in texts]
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], len(texts))

        x, embedded = self.rows.embed(
            stamps, lambda order: self._embed_now([texts[i] for i in order], tick)
        )
        return x.float().cpu(), embedded


@torch.no_grad()
def embed_texts_now(model: Any, tokenizer: Any, max_tokens: int, texts: Sequence[str],
                    tick: Callable[[int], None] | None = None) -> torch.Tensor:  # fmt: skip
    """Sentence embeddings straight from ``model`` (no cache): tokenised as the text classifier
    does, padding trimmed per batch, the mean of the last layer over the real tokens."""
    from tlcore.data.text_dataset import TrimPadding, tokenize

    trim = TrimPadding(model.pad_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(texts), BATCH_SIZE):
        ids = trim(tokenize(tokenizer, [str(t) for t in texts[start : start + BATCH_SIZE]],
                            max_tokens))  # fmt: skip
        out.append(model.forward_features(ids.to(device)).float().cpu())
        if tick is not None:
            tick(len(ids))
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.num_features)


def embed_items(embedder: Any, items: Sequence[Any],
                progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, int]:  # fmt: skip
    """The embeddings of a table's items, photos or sentences, by what the embedder reads."""
    from tlcore.training import multitask as mt

    if isinstance(embedder, TextEmbedder):
        return embedder.embed_texts([item.text or "" for item in items], progress)
    return mt.embed_paths(embedder, [item.path for item in items], progress)
