"""A detector's boxes for photos, from a run's model or an exported detector bundle.

``detect`` is the one way a trained Faster R-CNN turns a photo into boxes in the photo's own
pixels (the run's ``tlcore predict``, its validation scores, the bundle and the ONNX check all
call it). ``BoxPredictor`` is what ``tlcore.load(bundle)`` gives for a detector bundle (its
``tlcore.json`` says task "image-boxes"; ``tlcore.results.tasks`` dispatches on it): it sits
here, below ``tlcore.export.box_bundle`` which writes the bundle, so the loader of every
bundle (``tlcore.runs.scoring.load_model``) reaches it without importing upward.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.errors import ModelError, TLCoreError

if TYPE_CHECKING:
    from PIL import Image
    from torch import nn

BOX_BUNDLE_FORMAT = "tlcore-detector-bundle"
BOX_FORMAT_VERSION = 1
META_FILE = "tlcore.json"
WEIGHTS_FILE = "model.safetensors"
MAX_META_BYTES = 4 * 1024**2


def detect(model: nn.Module, classes: list[str], size: tuple[int, int],
           image: Image.Image, min_score: float = 0.5) -> list[dict[str, Any]]:  # fmt: skip
    """The boxes ``model`` finds in ``image`` (a PIL photo), [{label, score, xmin, ymin, xmax,
    ymax}] in the photo's own pixels, best first."""
    from PIL import Image as PILImage
    from torchvision.transforms.functional import pil_to_tensor

    from tlcore.training.detection import detections_of

    width, height = image.size
    resized = image.convert("RGB").resize((size[1], size[0]), PILImage.BILINEAR)
    device = next(model.parameters()).device
    found = detections_of(model, (pil_to_tensor(resized).float() / 255).to(device))
    sx, sy = width / size[1], height / size[0]
    return [{"label": classes[int(label) - 1], "score": round(float(score), 4),
             "xmin": round(float(b[0]) * sx, 1), "ymin": round(float(b[1]) * sy, 1),
             "xmax": round(float(b[2]) * sx, 1), "ymax": round(float(b[3]) * sy, 1)}
            for b, score, label in zip(found["boxes"], found["scores"], found["labels"],
                                       strict=True) if float(score) >= min_score]  # fmt: skip


@dataclass
class BoxAnswer:
    """One photo's boxes from ``BoxPredictor.predict_files`` (what ``tlcore predict BUNDLE``
    prints), or ``error`` when the photo could not be read."""

    path: str
    boxes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    unknown: bool = False  # "none of these" is not measured for a detector
    unknown_score: float | None = None
    probability: float | None = None

    @property
    def label(self) -> str:
        """The counts in words ("14 RBC, 1 WBC"), the CSV's label cell."""
        from tlcore.results.box_evaluation import counts_in_words

        return "" if self.error else counts_in_words([b["label"] for b in self.boxes])

    @property
    def top(self) -> list[tuple[str, float]]:
        return [(b["label"], b["score"]) for b in self.boxes]

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "boxes": self.boxes}


@dataclass
class BoxPredictor:
    """A detector read from a bundle: ``predict(paths)`` finds boxes as ``tlcore predict RUN``
    does; ``predict_files`` answers the generic ``tlcore predict BUNDLE`` path."""

    model: nn.Module
    classes: list[str]
    size: tuple[int, int]
    meta: dict[str, Any]
    unknown: Any = None  # no "none of these" detector: boxes under the threshold are dropped
    trust: Any = None

    @property
    def source(self) -> str:
        return f"detector bundle of run {self.meta.get('run_id', '?')}"

    def predict(self, paths: list[str], min_score: float = 0.5) -> list[dict[str, Any]]:
        """For each photo: its path and boxes [{label, score, xmin, ymin, xmax, ymax}] in its
        own pixels, as ``tlcore predict`` gives them for the run."""
        from PIL import Image

        heads = self.model.roi_heads  # they drop boxes under their own floor before min_score
        heads.score_thresh = min(self.meta.get("score_floor", 0.05), min_score)
        answers = []
        for path in paths:
            with Image.open(path) as im:
                boxes = detect(self.model, self.classes, self.size, im, min_score)
            answers.append({"path": str(path), "boxes": boxes})
        return answers

    def predict_files(self, paths: list[str], min_score: float = 0.5,
                      **_ignored: Any) -> list[BoxAnswer]:  # fmt: skip
        """Every photo's boxes; a photo that cannot be read is an answer with its ``error``
        (the others go on). ``k``/``unknown_threshold`` of label models mean nothing here."""
        from tlcore.data.images import load_rgb

        answers = []
        for path in paths:
            try:  # upright per EXIF, at its own size: boxes in the pixels one sees
                image = load_rgb(path, max_side=None)
            except (TLCoreError, OSError, ValueError) as exc:
                answers.append(BoxAnswer(str(path), error=str(exc)))
                continue
            self.model.roi_heads.score_thresh = min(self.meta.get("score_floor", 0.05), min_score)
            answers.append(BoxAnswer(str(path), detect(self.model, self.classes, self.size,
                                                       image, min_score)))  # fmt: skip
        return answers

    @classmethod
    def from_bundle(cls, path: str | Path, device: str = "cpu") -> BoxPredictor:
        detector = load_box_bundle(path)
        if device != "cpu":
            detector.model.to(device)
        return detector


def _read(path: Path) -> tuple[bytes, bytes]:
    """(tlcore.json, weights) of a bundle folder or zip; ModelError in words."""
    from tlcore.data.archive import check_archive, read_member_safely

    if path.is_dir():
        meta, weights = path / META_FILE, path / WEIGHTS_FILE
        if not meta.is_file() or not weights.is_file():
            raise ModelError(f"{path} is not a detector bundle: it needs {META_FILE} and "
                             f"{WEIGHTS_FILE}.")  # fmt: skip
        if meta.stat().st_size > MAX_META_BYTES:
            raise ModelError(f"{path}: its {META_FILE} is too large to be one tlcore wrote.")
        return meta.read_bytes(), weights.read_bytes()
    if not (path.is_file() and zipfile.is_zipfile(path)):
        raise ModelError(f"{path} is neither a bundle folder nor a .zip bundle: export one with "
                         "`tlcore export RUN --format bundle --out model.zip`.")  # fmt: skip
    with zipfile.ZipFile(path) as zf:
        check_archive(zf, path.name, path.stat().st_size)
        try:
            return (read_member_safely(zf, META_FILE, max_bytes=MAX_META_BYTES),
                    read_member_safely(zf, WEIGHTS_FILE))  # fmt: skip
        except KeyError:
            raise ModelError(f"{path} is not a detector bundle: it needs {META_FILE} and "
                             f"{WEIGHTS_FILE} at its top.") from None  # fmt: skip


def load_box_bundle(path: str | Path) -> BoxPredictor:
    """The detector of a bundle folder or .zip, ready to predict (CPU, eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from tlcore.models.detector import anchors_from_meta, build_detector

    path = Path(str(path))
    raw_meta, raw_weights = _read(path)
    try:
        meta = json.loads(raw_meta.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{path}: its {META_FILE} is not readable JSON ({exc}).") from None
    if not isinstance(meta, dict) or meta.get("format") != BOX_BUNDLE_FORMAT:
        raise ModelError(f"{path} is not a detector bundle: its {META_FILE} does not say "
                         f"format {BOX_BUNDLE_FORMAT!r}.")  # fmt: skip
    if int(meta.get("format_version", 0)) > BOX_FORMAT_VERSION:
        raise ModelError(f"{path} was written by a newer tlcore: upgrade tlcore to load it.")
    try:
        classes = [str(c) for c in meta["classes"]]
        size = (int(meta["size"][0]), int(meta["size"][1]))
        anchors = anchors_from_meta(meta)
        model = build_detector(str(meta["backbone"]), classes, str(meta["pretrained_weights"]),
                               size, [], load=False)  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"{path}: its {META_FILE} lacks a usable {exc} field.") from None
    model.rpn.anchor_generator = anchors
    meta["score_floor"] = float(model.roi_heads.score_thresh)  # the heads' own, as built
    try:
        state = load(raw_weights)
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"{path}: its weights do not fit the detector it describes ({first})."
                         ) from None  # fmt: skip
    return BoxPredictor(model.eval(), classes, size, meta)
