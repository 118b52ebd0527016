"""The exported graph with its trust built in: logits, calibrated probabilities, unknown score.

An ONNX or TorchScript file is often used where tlcore is not installed, so the
temperature and the "none of these" score are part of the graph, not a recipe to
re-implement: the training photos' unit-length features are a constant inside it
and the graph returns three outputs. The threshold (and the temperature, for the
record) are in the file's ``tlcore.json`` metadata under ``"trust"``: a photo is
"none of these" when ``unknown_score > trust.unknown.threshold``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from tlcore.results.trust import Trust

OUTPUT_NAMES = ("logits", "probabilities", "unknown_score")


class TrustedClassifier(nn.Module):
    """A timm classifier that also returns calibrated probabilities and the kNN distance."""

    def __init__(self, model: nn.Module, temperature: float, bank: torch.Tensor, k: int) -> None:
        super().__init__()
        self.model = model
        self.k = int(k)
        self.register_buffer("inverse_temperature", torch.tensor(1.0 / float(temperature)))
        self.register_buffer("bank_t", F.normalize(bank.float(), dim=1).T.contiguous())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)
        logits = self.model.forward_head(features)
        pooled = F.normalize(self.model.forward_head(features, pre_logits=True), dim=1)
        distances = (2 - 2 * pooled @ self.bank_t).clamp_min(0).sqrt()
        score = distances.topk(self.k, dim=1, largest=False).values[:, -1]
        return logits, (logits * self.inverse_temperature).softmax(dim=1), score


def with_trust(model: nn.Module, trust: Trust | None) -> nn.Module:
    """``model`` wrapped to return all three outputs when a detector was fitted, else as it is."""
    if trust is None or trust.detector is None:
        return model
    wrapped = TrustedClassifier(
        model, trust.calibration.temperature, trust.detector.bank, trust.detector.k
    ).eval()
    wrapped.output_names = list(OUTPUT_NAMES)  # read by graph_export for the ONNX output names
    wrapped.threshold = float(trust.detector.threshold)
    return wrapped


def split_outputs(raw: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(probabilities, unknown scores or None) from what a model or an exported file returned."""
    if isinstance(raw, tuple | list):
        if len(raw) == len(OUTPUT_NAMES):
            return torch.as_tensor(raw[1]).float(), torch.as_tensor(raw[2]).float()
        raw = raw[0]
    return torch.as_tensor(raw).float().softmax(dim=1), None
