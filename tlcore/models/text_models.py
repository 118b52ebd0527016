"""Text backbones: a BERT-family encoder plus a new head, shaped like a timm model.

The trainer, freezing, the fast path, checkpoints and export all speak timm's
small interface (``forward_features`` / ``forward_head(pre_logits=)``,
``get_classifier``, ``reset_classifier``, ``group_matcher``). A
``TextClassifier`` speaks it too, so a sentence classifier goes through the same
engine as a photo classifier; only the input differs: a batch of token ids
(``[batch, tokens]``, int64, padded with the tokenizer's pad id) instead of
pixels. The attention mask is the ids that are not padding, so one tensor is the
whole input (for the DataLoader, ONNX and TorchScript alike).

Layer groups, input to output: ``embeddings``, one group per transformer layer
(``layers.0`` ...), ``head``. Sentence pooling (the mean over the tokens, then
unit length, as sentence-transformers does for all-MiniLM-L6-v2) has no weights,
so it is part of the forward pass rather than a group. Which encoders exist and
whether their weights are here is ``tlcore.models.text_catalog``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlcore.errors import ModelError, WeightsError
from tlcore.models.text_catalog import (  # noqa: F401 - re-exported for callers of this module
    DEFAULT_TEXT_MODEL,
    TEXT_CATALOG,
    _names,
    check_model_fits_data,
    is_text_model,
    model_folder,
    text_availability,
    text_catalog_rows,
    text_entry,
)

DEFAULT_MAX_TOKENS = 128


def _pools_to_unit_length(folder: str) -> bool:
    """sentence-transformers folders list a Normalize module when embeddings are unit length."""
    modules = Path(folder) / "modules.json"
    try:
        return any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))
    except (OSError, ValueError, AttributeError):
        return False


def _encoder_parts(encoder: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """(embeddings, transformer layers) of a BERT-like (``encoder.layer``) or DistilBERT model."""
    stack = getattr(encoder, "encoder", None) or getattr(encoder, "transformer", None)
    layers = getattr(stack, "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(encoder, "embeddings"):
        raise ModelError(f"{type(encoder).__name__} is not a BERT-family encoder tlcore knows.")
    return encoder.embeddings, layers


class TextClassifier(nn.Module):
    """Token ids -> encoder -> mean pooling -> (dropout) -> linear head, timm-style."""

    def __init__(self, encoder: nn.Module, num_classes: int, *, name: str, source: str,
                 pad_id: int, normalize: bool, drop_rate: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # BERT's [CLS] pooler is not used by mean pooling
        embeddings, layers = _encoder_parts(encoder)
        # The groups the trainer freezes are these two attributes (and the head); the
        # encoder that runs them is kept outside the module tree so each weight has one name.
        self.embeddings = embeddings
        self.layers = layers
        object.__setattr__(self, "_encoder", encoder)
        self.num_features = int(encoder.config.hidden_size)
        self.num_classes = int(num_classes)
        self.drop_rate = float(drop_rate)
        self.pad_id = int(pad_id)
        self.normalize = bool(normalize)
        self.head = nn.Linear(self.num_features, self.num_classes)
        self.pretrained_cfg = {"architecture": name, "classifier": "head"}
        self.text_config = {"tokenizer": source, "pad_id": self.pad_id,
                            "max_tokens": DEFAULT_MAX_TOKENS}  # fmt: skip

    # -- timm's interface ----------------------------------------------------------------
    def forward_features(self, ids: torch.Tensor) -> torch.Tensor:
        """The sentence embedding: the mean of the last layer over the real (non-pad) tokens."""
        mask = ids != self.pad_id
        hidden = self._encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return self._pool(hidden, mask)

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean of ``hidden`` over the real tokens (unit length when the model says so)."""
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    # -- the frozen bottom run once (tlcore.training.frozen_layers) ---------------------------
    def forward_prefix(self, ids: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states after the embeddings and the first ``depth`` layers, and the token mask.

        Attention never looks at padding, so a real token's state here does not depend on
        how much padding its batch had: each sentence's states can be cached alone."""
        mask = ids != self.pad_id
        hidden = self.embeddings(ids)
        return self._run_layers(hidden, mask, 0, depth), mask

    def forward_from(self, hidden: torch.Tensor, mask: torch.Tensor, depth: int) -> torch.Tensor:
        """``forward_features`` resumed after layer ``depth``: the rest of the layers, pooled."""
        return self._pool(self._run_layers(hidden, mask, depth, len(self.layers)), mask)

    def frozen_depth(self, trainable: set[str]) -> int:
        """How many transformer layers sit below every parameter in ``trainable`` (-1 when
        the embeddings train): the part whose output never changes during the run."""
        if any(name.startswith("embeddings.") for name in trainable):
            return -1
        for i in range(len(self.layers)):
            if any(name.startswith(f"layers.{i}.") for name in trainable):
                return i
        return len(self.layers)

    def _run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int,
                    stop: int) -> torch.Tensor:  # fmt: skip
        """Layers ``start``..``stop - 1`` with the attention mask the encoder itself builds."""
        if start >= stop:
            return hidden
        from transformers.masking_utils import create_bidirectional_mask

        attention = create_bidirectional_mask(
            config=self._encoder.config, inputs_embeds=hidden, attention_mask=mask.long()
        )
        for layer in self.layers[start:stop]:
            hidden = layer(hidden, attention)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return hidden

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.head(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(ids))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.num_features, self.num_classes)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return {"embeddings": r"^embeddings", "blocks": r"^layers\.(\d+)"}

    def train(self, mode: bool = True) -> TextClassifier:
        """Frozen parts run as at inference (no dropout), like frozen BatchNorm in photo models:
        their output is then what the fast path caches."""
        super().train(mode)
        if mode:
            for part in (self.embeddings, *self.layers):
                if not any(p.requires_grad for p in part.parameters()):
                    part.eval()
        return self


def create_text_model(
    name: str,
    num_classes: int | None,
    weights: str = "bundled",
    drop_rate: float = 0.0,
    folder: str | Path | None = None,
) -> TextClassifier:
    """A text encoder with pretrained weights ('bundled'/'hub') or none ('scratch': the
    architecture only, for loading a checkpoint), plus a new head for ``num_classes``.

    ``folder`` (with 'scratch') builds from a saved config and tokenizer instead, as an
    exported bundle's ``encoder/`` holds them, so a bundle needs no other download."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    entry = text_entry(name)
    if entry is None:
        raise ModelError(f"{name!r} is not a text model: choose one of {_names()}.")
    if weights not in ("bundled", "hub", "scratch"):
        raise WeightsError(
            f"Text models load 'bundled', 'hub' or 'scratch' weights (got {weights!r}); "
            "to use a trained text model, load its run or exported bundle."
        )
    if weights == "bundled" and not entry.bundled:
        weights = "hub"
    folder = str(folder) if folder is not None else model_folder(name, weights)
    hf_logging.set_verbosity_error()  # "some weights unused (pooler)" is expected, not news
    hf_logging.disable_progress_bar()
    try:
        if weights == "scratch":
            encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder))
        else:
            encoder = AutoModel.from_pretrained(folder)
    except OSError as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise WeightsError(
            f"Could not load {name} ({first}). Hub models need the internet once, or a copy "
            f"in the Hugging Face cache; {DEFAULT_TEXT_MODEL} works offline."
        ) from None
    pad_id = encoder.config.pad_token_id if encoder.config.pad_token_id is not None else 0
    model = TextClassifier(encoder, num_classes or 2, name=name, source=folder, pad_id=pad_id,
                           normalize=_pools_to_unit_length(folder), drop_rate=drop_rate)  # fmt: skip
    return model


def text_model_with_report(
    name: str, num_classes: int | None, weights: str = "bundled", drop_rate: float = 0.0
) -> tuple[TextClassifier, Any]:
    """``create_text_model`` plus the loading report the image factory gives (``build_model``)."""
    from tlcore.models.weights import WeightsReport

    model = create_text_model(name, num_classes, weights, drop_rate)
    source = (
        "scratch" if weights == "scratch" else ("bundled" if _is_bundled(name, weights) else "hub")
    )
    where = model.text_config["tokenizer"]
    message = (
        "All weights start at random (a checkpoint is loaded next)."
        if source == "scratch"
        else f"Loaded the pretrained {name} encoder from {where}."
    )
    report = WeightsReport(source=source, loaded=len(model.state_dict()) - 2, messages=[message],
                           head_reset=True)  # fmt: skip
    report.messages.append(f"New classifier for {model.num_classes} classes (random init).")
    model.weights_report = report
    return model, report


def _is_bundled(name: str, weights: str) -> bool:
    entry = text_entry(name)
    return bool(entry and entry.bundled and weights != "hub")
