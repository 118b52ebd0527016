"""A trained model you can hand new photos to: ``Predictor``.

Prediction must see images exactly as validation did during training, or the
accuracy people saw on the Train page would not hold on their own photos. So the
preprocessing is rebuilt from the same pieces the trainer uses
(``resolve_data_config`` from the model + the run's ``img_size``, then
``build_transform(train=False)``), and images are read with ``load_rgb`` (EXIF
rotation, colour modes), never with a separate code path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from tlcore.data.decoded_cache import decode_side
from tlcore.data.images import load_rgb
from tlcore.errors import DataError, ModelError, TLCoreError
from tlcore.results.trust import Trust, read_bundle_trust
from tlcore.results.unknown import UnknownDetector

CHECKPOINTS = ("best", "last")
BATCH_SIZE = 32
MAX_FILE_BYTES = 50_000_000  # far above any photo; refuses a mislabelled video or disk image

ImageLike = Image.Image | str | Path
CSV_COLUMNS = ("path", "label", "probability", "unknown", "unknown_score", "top", "error")


@dataclass
class Prediction:
    """One image's outcome: the top classes, or why it could not be read."""

    path: str
    label: str | None = None
    probability: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    unknown: bool | None = None  # "none of these": None when the model has no detector
    unknown_score: float | None = None  # distance to the nearest training photo

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {
            "path": self.path,
            "label": self.label,
            "probability": self.probability,
            "unknown": self.unknown,
            "unknown_score": self.unknown_score,
            "top": [{"label": name, "probability": p} for name, p in self.top],
        }


class Predictor:
    """A model in eval mode, its class names and its evaluation preprocessing."""

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        img_size: int | None,
        *,
        model_name: str = "",
        weights: str = "bundled",
        source: str = "",
        device: str = "cpu",
    ) -> None:
        from tlcore.data.dataset import build_transform, resolve_data_config

        self._hold(model, classes, img_size, model_name, weights, source, device)
        self.data_config = resolve_data_config(self.model, img_size)
        self.transform: Callable[[Image.Image], torch.Tensor] = build_transform(
            self.data_config, train=False
        )

    def _hold(self, model: nn.Module, classes: Sequence[str], img_size: int | None,
              model_name: str, weights: str, source: str, device: str) -> None:  # fmt: skip
        """What every predictor keeps, photos or texts (``TextPredictor`` shares it)."""
        from tlcore.training.devices import resolve_device

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.classes = list(classes)
        self.img_size = img_size
        self.model_name = model_name
        self.weights = weights  # where the backbone's pretrained weights came from
        self.source = source  # "run <id> (best)" or a bundle folder, for captions
        # trust (tlcore.results.calibration / .unknown): set from the run or the bundle
        self.temperature = 1.0  # logits are divided by it before the softmax
        self.trust: Trust | None = None
        self.unknown: UnknownDetector | None = None
        n_out = getattr(self.model, "num_classes", len(self.classes))
        if n_out != len(self.classes):
            raise ModelError(
                f"The model has {n_out} outputs but {len(self.classes)} class names were given."
            )

    # -- building ------------------------------------------------------------------------
    @classmethod
    def from_bundle(cls, bundle: str | Path, device: str = "cpu") -> Predictor:
        """An exported bundle (folder or .zip, see ``tlcore.export.bundle``), without its run.

        The preprocessing comes from the bundle's ``tlcore.json``, not from this
        machine's timm defaults, so predictions match the ones made at export.
        """
        from tlcore.data.dataset import build_transform
        from tlcore.results.bundle_format import preprocessing_config, read_bundle

        meta, state = read_bundle(bundle)
        if meta.get("modality") == "text":  # loaded by tlcore.load / runs.scoring.load_model
            raise ModelError(
                f"{bundle} holds a text model: load it with tlcore.load (or "
                "TextPredictor.from_text_bundle)."
            )
        name, classes = meta["architecture"], list(meta["classes"])
        model = _model_from_state(name, len(classes), state, str(bundle))
        predictor = cls(
            model,
            classes,
            meta.get("img_size"),
            model_name=name,
            weights=meta.get("pretrained_weights", "bundled"),
            source=str(bundle),
            device=device,
        )
        predictor.data_config = preprocessing_config(meta)
        predictor.transform = build_transform(predictor.data_config, train=False)
        return predictor.set_trust(read_bundle_trust(bundle, meta))

    def set_trust(self, trust: Trust | None) -> Predictor:
        """Use a fitted temperature and "none of these" detector from now on (None: neither)."""
        self.trust = trust
        self.temperature = trust.calibration.temperature if trust is not None else 1.0
        self.unknown = trust.detector if trust is not None else None
        return self

    # -- predicting ----------------------------------------------------------------------
    def preprocess(self, image: ImageLike) -> torch.Tensor:
        """CHW tensor as validation saw it; DataError for an unreadable file."""
        if isinstance(image, Image.Image):
            return self.transform(image.convert("RGB"))
        # a phone photo is decoded at a reduced scale, as training read it (decode_side)
        return self.transform(load_rgb(image, min_side=decode_side(self.transform)))

    @torch.no_grad()
    def logits(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Raw scores (N, classes) on the CPU, in batches so a folder fits in memory."""
        from tlcore.training.devices import autocast, to_device

        out = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = torch.stack([self.preprocess(im) for im in images[start : start + BATCH_SIZE]])
            with autocast(self.device):
                out.append(self.model(to_device(batch, self.device)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, len(self.classes))

    def predict(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Calibrated class probabilities (N, classes), rows summing to 1, in class order."""
        return (self.logits(images) / self.temperature).softmax(dim=1)

    @torch.no_grad()
    def logits_and_features(self, images: Sequence[ImageLike]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw scores and pooled backbone features from one pass (both on the CPU)."""
        from tlcore.training.devices import autocast, to_device

        logits, feats = [], []
        for start in range(0, len(images), BATCH_SIZE):
            batch = torch.stack([self.preprocess(im) for im in images[start : start + BATCH_SIZE]])
            with autocast(self.device):
                x = self.model.forward_features(to_device(batch, self.device))
                feats.append(self.model.forward_head(x, pre_logits=True).float().cpu())
                logits.append(self.model.forward_head(x).float().cpu())
        if not logits:
            return torch.empty(0, len(self.classes)), torch.empty(0, 0)
        return torch.cat(logits), torch.cat(feats)

    def predict_with_unknown(
        self, images: Sequence[ImageLike]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Calibrated probabilities and unknown-ness scores (None without a detector)."""
        if self.unknown is None:
            return self.predict(images), None
        logits, feats = self.logits_and_features(images)
        return (logits / self.temperature).softmax(dim=1), self.unknown.scores(feats)

    @property
    def unknown_threshold(self) -> float | None:
        return None if self.unknown is None else self.unknown.threshold

    @torch.no_grad()
    def embed(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Pooled backbone features (N, D): what the head sees, for the embedding map."""
        out = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = torch.stack([self.preprocess(im) for im in images[start : start + BATCH_SIZE]])
            feats = self.model.forward_features(batch.to(self.device))
            out.append(self.model.forward_head(feats, pre_logits=True).float().cpu())
        return torch.cat(out) if out else torch.empty(0, 0)

    def top_k(self, probabilities: torch.Tensor, k: int = 3) -> list[list[tuple[str, float]]]:
        """(class name, probability) pairs, most likely first, for each row."""
        k = max(1, min(int(k), len(self.classes)))
        values, indices = probabilities.topk(k, dim=1)
        return [
            [(self.classes[int(i)], float(v)) for v, i in zip(vs, ix, strict=True)]
            for vs, ix in zip(values, indices, strict=True)
        ]

    def predict_files(
        self,
        paths: Sequence[str | Path],
        k: int = 3,
        names: Sequence[str] | None = None,
        unknown_threshold: float | None = None,
    ) -> list[Prediction]:
        """One Prediction per path, in order; unreadable files get an error, the rest a label.

        Files are decoded a batch at a time, so one corrupt upload cannot spoil the
        others and a large folder never sits in memory at once. ``unknown_threshold``
        replaces the one set on validation (a higher one calls fewer photos unknown).
        """
        names = list(names) if names is not None else [str(p) for p in paths]
        results = [Prediction(path=n) for n in names]
        for start in range(0, len(paths), BATCH_SIZE):
            good: list[tuple[int, Image.Image]] = []
            for i in range(start, min(start + BATCH_SIZE, len(paths))):
                try:
                    good.append((i, read_for_prediction(paths[i])))
                except TLCoreError as exc:
                    results[i].error = str(exc)
            if not good:
                continue
            probs, scores = self.predict_with_unknown([im for _, im in good])
            for row, ((i, _), top) in enumerate(zip(good, self.top_k(probs, k), strict=True)):
                results[i].top = top
                results[i].label, results[i].probability = top[0]
                if scores is not None and self.unknown is not None:
                    score = scores[row : row + 1]
                    results[i].unknown_score = float(score[0])
                    results[i].unknown = bool(self.unknown.is_unknown(score, unknown_threshold)[0])
        return results


def read_for_prediction(path: str | Path) -> Image.Image:
    """``load_rgb`` behind a file-size limit: a huge upload is refused before it is decoded."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # load_rgb says what is wrong with a missing file
    if size > MAX_FILE_BYTES:
        raise DataError(
            f"{path.name}: {size / 1e6:.0f} MB is too large for one image "
            f"(limit {MAX_FILE_BYTES // 1_000_000} MB); resize it first."
        )
    return load_rgb(path)


def model_with_weights(name: str, num_classes: int, weights_path: Path) -> nn.Module:
    """The architecture with a head for ``num_classes``, then every tensor from the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_path))
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModelError(
            f"the model weights {weights_path} are damaged or not a safetensors file ({first}): "
            "export or predict with the other checkpoint (--checkpoint last/best), or retrain."
        ) from None
    return _model_from_state(name, num_classes, state, str(weights_path))


def _model_from_state(
    name: str, num_classes: int, state: dict[str, torch.Tensor], label: str
) -> nn.Module:
    """A fresh ``name`` with ``num_classes`` outputs holding exactly the tensors in ``state``."""
    from tlcore.models.factory import create_model

    model = create_model(name, num_classes, weights="scratch")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(
            f"the weights in {label} do not fit {name} with {num_classes} classes: {first}"
        ) from None
    return model


def predictions_csv(results: Sequence[Prediction]) -> str:
    """One row per input: path, label, probability, unknown, unknown_score, top, error."""
    from tlcore.data.csv_safe import csv_text  # names that would run as a formula stay text

    rows = []
    for r in results:
        top = "; ".join(f"{name} {p:.4f}" for name, p in r.top)
        prob = "" if r.probability is None else f"{r.probability:.6f}"
        unknown = "" if r.unknown is None else str(r.unknown).lower()
        score = "" if r.unknown_score is None else f"{r.unknown_score:.6f}"
        rows.append([r.path, r.label or "", prob, unknown, score, top, r.error or ""])
    return csv_text(CSV_COLUMNS, rows)


def read_upload(name: str, data: bytes) -> Image.Image:
    """An uploaded image read exactly like a file on disk (size limit, EXIF, colour modes)."""
    from tlcore.data.sources import safe_name

    with tempfile.TemporaryDirectory(prefix="tlcore-upload-") as tmp:
        path = Path(tmp) / safe_name(name or "upload.jpg", "file name")
        path.write_bytes(data)
        return read_for_prediction(path)


def predict_uploads(
    predictor: Predictor, files: Sequence[tuple[str, bytes]], k: int = 3
) -> list[Prediction]:
    """Predictions for uploaded files (name, bytes); a ``.zip`` is unpacked safely first.

    The browser's names are kept for the table but never used as paths: each file
    is written under a fresh temporary folder with a cleaned name.
    """
    from tlcore.data.archive import extract_zip_safely
    from tlcore.data.images import images_in
    from tlcore.data.sources import safe_name

    results: list[Prediction] = []
    with tempfile.TemporaryDirectory(prefix="tlcore-predict-") as tmp:
        for n, (name, data) in enumerate(files):
            target = Path(tmp) / str(n) / safe_name(name or "upload", "file name")
            target.parent.mkdir(parents=True)
            target.write_bytes(data)
            if target.suffix.lower() != ".zip":
                results.extend(predictor.predict_files([target], k=k, names=[name]))
                continue
            try:
                folder = extract_zip_safely(target, target.parent / "unzipped")
            except TLCoreError as exc:
                results.append(Prediction(path=name, error=str(exc)))
                continue
            images = images_in([folder])
            if not images:
                results.append(Prediction(path=name, error=f"{name}: no images inside."))
                continue
            names = [f"{name}/{p.relative_to(folder).as_posix()}" for p in images]
            results.extend(predictor.predict_files(images, k=k, names=names))
    return results
