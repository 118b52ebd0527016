"""Fitting, keeping and reading what makes a prediction trustworthy: ``T`` and "none of these".

``fit_trust`` works on what a model said about photos (the training photos' features
become the neighbours of the unknown-ness score, the validation outputs fit the
temperature and set the threshold, outside photos measure how well the unknown photos
are found), and returns one ``Trust``. It travels as a JSON block (``Trust.meta``: in a run's
``trust-<checkpoint>.json`` and in a bundle's ``tlcore.json`` under ``"trust"``)
plus one tensor file with the training photos' unit-length features
(``unknown.safetensors``), so a bundle predicts "none of these" without its run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from tlcore.data.progress import Tracker
from tlcore.errors import ModelError, TLCoreError
from tlcore.results.calibration import Calibration, calibrate
from tlcore.results.unknown import (
    UnknownDetector,
    auroc,
    fit_unknown_detector,
)

TRUST_KEY = "trust"
UNKNOWN_FILE = "unknown.safetensors"
BANK_TENSOR = "bank"
REFERENCE_PHOTOS = 40  # outside photos scored to measure the detector (cheap, and honest)
MAX_SCORES = 1000  # validation scores kept for the Predict page's "accepted at X" line


@dataclass
class Trust:
    """A model's temperature, its unknown detector, and how well each was measured to work."""

    calibration: Calibration
    detector: UnknownDetector | None
    reference: dict[str, Any] = field(default_factory=dict)  # photos, source, auroc, flagged
    known_flagged: float | None = None  # share of validation photos over the threshold
    val_scores: list[float] = field(default_factory=list)  # for the Predict page's slider

    def meta(self) -> dict[str, Any]:
        """The JSON block (the detector's bank goes to ``UNKNOWN_FILE``)."""
        unknown = None
        if self.detector is not None:
            unknown = {
                **self.detector.meta(),
                "file": UNKNOWN_FILE,
                "known_flagged": self.known_flagged,
                "reference": self.reference,
                "val_scores": self.val_scores,
            }
        return {"calibration": self.calibration.to_dict(), "unknown": unknown}

    def text(self) -> str:
        lines = [f"Calibration: {self.calibration.text()}."]
        if self.detector is not None:
            ref = self.reference
            found = ""
            if ref.get("photos"):
                found = (
                    f"; on {ref['photos']} photos of {ref.get('source', 'other data')} it finds "
                    f"unknown photos with AUROC {ref['auroc']:.3f} and flags "
                    f"{ref['flagged']:.0%} of them"
                )
            lines.append(
                f"None of these: distance to the nearest training photo above "
                f"{self.detector.threshold:.3f} (accepts {self.detector.accept:.0%} of "
                f"validation photos){found}."
            )
        return "\n".join(lines)


class ReadsFeatures(Protocol):
    """A ``Predictor`` (or ``TextPredictor``), seen from here: predict imports this module."""

    def logits_and_features(self, items: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]: ...


def read_features(predictor: ReadsFeatures, items: Sequence[str], tracker: Tracker) -> torch.Tensor:
    """Pooled features of ``items`` in chunks, so the count moves while a long list is read."""
    parts = [predictor.logits_and_features(chunk)[1] for chunk in tracker.chunks(list(items))]
    return torch.cat(parts) if parts else torch.empty(0, 0)


def fit_trust(
    val_logits: torch.Tensor,
    val_features: torch.Tensor,
    targets: torch.Tensor,
    train_features: torch.Tensor | None = None,
    reference_features: torch.Tensor | None = None,
    reference_source: str = "",
) -> Trust:
    """Fit the temperature on the validation outputs and, given the training items' features,
    the "none of these" detector; ``reference_features`` (items of none of the classes)
    measure how well it finds them. Works on numbers a model already produced: the
    validation items are read once per checkpoint (``tlcore.runs.outputs``)."""
    calibration = calibrate(val_logits, targets.long())
    if train_features is None or len(train_features) == 0:
        return Trust(calibration=calibration, detector=None)
    detector = fit_unknown_detector(train_features, val_features)
    known = detector.scores(val_features) if len(val_features) else torch.empty(0)
    out = Trust(
        calibration=calibration,
        detector=detector,
        known_flagged=float(detector.is_unknown(known).float().mean()) if len(known) else None,
        val_scores=[round(float(s), 5) for s in known[:: max(1, len(known) // MAX_SCORES)]],
    )
    if reference_features is not None and len(reference_features):
        outside = detector.scores(reference_features)
        out.reference = {
            "photos": len(reference_features),
            "source": reference_source,
            "auroc": auroc(known, outside) if len(known) else None,
            "flagged": float(detector.is_unknown(outside).float().mean()),
        }
    return out


# -- keeping it: a JSON block and one tensor file ---------------------------------------------


def write_unknown_file(trust: Trust, path: Path) -> None:
    """The detector's bank as safetensors (written to a temporary name, then renamed)."""
    import os

    from safetensors.torch import save_file

    if trust.detector is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({BANK_TENSOR: trust.detector.bank.contiguous()}, str(tmp))
    os.replace(tmp, path)


def trust_problems(block: Any) -> list[str]:
    """What is wrong with a ``"trust"`` block from a file someone handed over (empty if fine)."""
    if block is None:
        return []
    if not isinstance(block, dict):
        return [f"trust must be an object, got {type(block).__name__}"]
    problems = []
    cal = block.get("calibration")
    t = cal.get("temperature") if isinstance(cal, dict) else None
    if not (isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t > 0):
        problems.append(f"trust.calibration.temperature must be a number > 0, got {t!r}")
    unknown = block.get("unknown")
    if unknown is not None:
        if not isinstance(unknown, dict):
            return [*problems, "trust.unknown must be an object or null"]
        thr = unknown.get("threshold")  # a distance: below 0 every photo is "none of these"
        if not (isinstance(thr, int | float) and not isinstance(thr, bool) and math.isfinite(thr)
                and thr >= 0):  # fmt: skip
            problems.append(f"trust.unknown.threshold must be a number >= 0, got {thr!r}")
        if unknown.get("method", "knn") != "knn":
            problems.append(f"trust.unknown.method {unknown.get('method')!r} is not known")
        k = unknown.get("k", 1)
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
            problems.append(f"trust.unknown.k must be a whole number >= 1, got {k!r}")
        name = unknown.get("file", UNKNOWN_FILE)
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            problems.append(f"trust.unknown.file must be a plain file name, got {name!r}")
    return problems


def trust_from_meta(block: Any, bank: torch.Tensor | None, label: str) -> Trust | None:
    """A ``Trust`` from its JSON block and bank; ModelError listing every problem."""
    if block is None:
        return None
    problems = trust_problems(block)
    unknown = block.get("unknown") if isinstance(block, dict) else None
    if unknown is not None and not problems:
        dim = unknown.get("dim")
        if bank is None or bank.dim() != 2 or len(bank) == 0:
            problems.append(f"its {unknown.get('file', UNKNOWN_FILE)} holds no training features")
        elif isinstance(dim, int) and dim and bank.shape[1] != dim:
            problems.append(f"its training features have {bank.shape[1]} values, not {dim}")
    if problems:
        raise ModelError(f"{label} has unusable trust settings: " + "; ".join(problems) + ".")
    detector = None
    if unknown is not None and bank is not None:
        detector = UnknownDetector.from_meta(unknown, bank.float())
    return Trust(
        calibration=Calibration.from_dict(block.get("calibration") or {}),
        detector=detector,
        reference=dict(unknown.get("reference") or {}) if unknown else {},
        known_flagged=unknown.get("known_flagged") if unknown else None,
        val_scores=list(unknown.get("val_scores") or []) if unknown else [],
    )


def read_unknown_bank(data: bytes | Path, label: str) -> torch.Tensor:
    """The bank tensor from a safetensors file or its bytes."""
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    try:
        tensors = load(data) if isinstance(data, bytes) else load_file(str(data))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ModelError(f"{label}: cannot read the unknown-detector features ({exc}).") from None
    if BANK_TENSOR not in tensors:
        raise ModelError(f"{label}: the unknown-detector file holds no '{BANK_TENSOR}' tensor.")
    return tensors[BANK_TENSOR]


def read_bundle_trust(bundle: str | Path, meta: dict[str, Any]) -> Trust | None:
    """The trust block of a bundle (folder or .zip) with its bank; None for an older bundle."""
    import zipfile

    from tlcore.data.archive import read_member_safely
    from tlcore.results.bundle_format import _zip_prefix

    block = meta.get(TRUST_KEY)
    if block is None:
        return None
    label = str(bundle)
    problems = trust_problems(block)
    if problems:
        raise ModelError(f"{label} has unusable trust settings: " + "; ".join(problems) + ".")
    unknown = block.get("unknown")
    bank = None
    if unknown is not None:
        name = unknown.get("file", UNKNOWN_FILE)
        path = Path(str(bundle))
        try:
            if path.is_dir():
                if not (path / name).is_file():
                    raise ModelError(f"{label} is not a usable tlcore bundle: {name} is missing.")
                bank = read_unknown_bank(path / name, label)
            else:
                with zipfile.ZipFile(path) as zf:
                    prefix = _zip_prefix(zf.namelist()) or ""
                    bank = read_unknown_bank(read_member_safely(zf, prefix + name), label)
        except KeyError:
            raise ModelError(f"{label} is not a usable tlcore bundle: {name} is missing.") from None
        except (OSError, zipfile.BadZipFile, TLCoreError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"{label}: cannot read {name} ({exc}).") from None
    return trust_from_meta(block, bank, label)
