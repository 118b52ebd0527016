"""Probabilities that can be believed: temperature scaling and the calibration error.

A fine-tuned network's softmax is rarely honest: a head trained for a few epochs
says "60 %" where it is right 95 % of the time, a long full fine-tune says "99 %"
where it is right 80 % of the time. Temperature scaling (Guo et al. 2017, "On
Calibration of Modern Neural Networks") divides every logit by one number ``T``
fitted on the validation photos: the top class never changes, only how sure the
model says it is. The expected calibration error (ECE) measures the gap between
the confidence shown and the accuracy achieved, bin by bin.

Because ``T`` is fitted on the same validation photos that judge it, the "after"
figure is cross-fitted: each photo is scored with a temperature fitted on the
other photos, so the number shown is not flattered by the fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

BINS = 10
FOLDS = 5
MIN_T, MAX_T = 0.05, 20.0


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The ``T`` that minimises the cross-entropy of ``logits / T`` (1.0 when there is no data)."""
    logits = logits.detach().float().cpu()
    targets = torch.as_tensor(targets, dtype=torch.long).cpu()
    if len(targets) == 0:
        return 1.0
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    value = float(log_t.detach().exp())
    if not MIN_T <= value <= MAX_T or value != value:  # a degenerate fit: keep it in bounds
        value = min(MAX_T, max(MIN_T, value if value == value else 1.0))
    return value


def reliability_bins(
    probabilities: torch.Tensor, targets: torch.Tensor, bins: int = BINS
) -> list[dict[str, float]]:
    """Photos grouped by the confidence of their top class: how sure vs how often right."""
    probs = probabilities.detach().float().cpu()
    targets = torch.as_tensor(targets, dtype=torch.long).cpu()
    if len(targets) == 0:
        return []
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).float()
    edges = torch.linspace(0, 1, bins + 1)
    out = []
    for i in range(bins):
        low, high = float(edges[i]), float(edges[i + 1])
        inside = (confidence > low) & (confidence <= high) if i else confidence <= high
        count = int(inside.sum())
        out.append(
            {
                "low": low,
                "high": high,
                "count": count,
                "confidence": float(confidence[inside].mean()) if count else 0.0,
                "accuracy": float(correct[inside].mean()) if count else 0.0,
            }
        )
    return out


def expected_calibration_error(
    probabilities: torch.Tensor, targets: torch.Tensor, bins: int = BINS
) -> float:
    """Average gap between confidence and accuracy, weighted by photos per bin (0 = honest)."""
    rows = reliability_bins(probabilities, targets, bins)
    total = sum(r["count"] for r in rows)
    if not total:
        return 0.0
    return sum(r["count"] / total * abs(r["confidence"] - r["accuracy"]) for r in rows)


def cross_fitted_probabilities(
    logits: torch.Tensor, targets: torch.Tensor, folds: int = FOLDS, seed: int = 0
) -> torch.Tensor:
    """Each photo's probabilities with a temperature fitted on the other folds only."""
    logits = logits.detach().float().cpu()
    targets = torch.as_tensor(targets, dtype=torch.long).cpu()
    n = len(targets)
    if n < 2 * folds:
        folds = max(2, n // 2) if n >= 4 else 1
    if folds < 2:
        return (logits / fit_temperature(logits, targets)).softmax(dim=1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out = torch.empty_like(logits)
    for held in order.chunk(folds):
        rest = torch.ones(n, dtype=torch.bool)
        rest[held] = False
        t = fit_temperature(logits[rest], targets[rest])
        out[held] = (logits[held] / t).softmax(dim=1)
    return out


@dataclass
class Calibration:
    """The fitted temperature and what it changed, measured on the validation photos."""

    temperature: float = 1.0
    images: int = 0
    ece_before: float | None = None
    ece_after: float | None = None  # cross-fitted: each photo scored with a T fitted without it
    nll_before: float | None = None
    nll_after: float | None = None
    bins_before: list[dict[str, float]] = field(default_factory=list)
    bins_after: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def text(self) -> str:
        """One line for a terminal or a model card."""
        if self.ece_before is None or self.ece_after is None:
            return f"temperature {self.temperature:.3f} (no validation photos to measure it on)"
        return (
            f"temperature {self.temperature:.3f}: expected calibration error "
            f"{self.ece_before:.1%} before, {self.ece_after:.1%} after "
            f"(on {self.images} validation photos)"
        )


def calibrate(logits: torch.Tensor, targets: torch.Tensor) -> Calibration:
    """Fit ``T`` on validation logits and measure ECE and loss before and after."""
    logits = logits.detach().float().cpu()
    targets = torch.as_tensor(targets, dtype=torch.long).cpu()
    if len(targets) == 0:
        return Calibration()
    t = fit_temperature(logits, targets)
    before = logits.softmax(dim=1)
    after = cross_fitted_probabilities(logits, targets)
    return Calibration(
        temperature=t,
        images=len(targets),
        ece_before=expected_calibration_error(before, targets),
        ece_after=expected_calibration_error(after, targets),
        nll_before=float(F.cross_entropy(logits, targets)),
        nll_after=float(F.nll_loss(after.clamp_min(1e-12).log(), targets)),
        bins_before=reliability_bins(before, targets),
        bins_after=reliability_bins(after, targets),
    )
