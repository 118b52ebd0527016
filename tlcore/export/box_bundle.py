"""A detection run packed to travel: the detector's weights, what it needs to be rebuilt, and a
model card with the mAP it measured, read back by ``load_box_bundle`` to find the same boxes.

The folder holds ``model.safetensors`` (every tensor of the Faster R-CNN), ``tlcore.json``
(the backbone, the classes in order, the training size the photos are resized to, the
anchor sizes, the settings, the data and the metrics from the run's status) and a
``README.md`` model card. Its ``format`` is not the photo-label bundle's, so a loader of
label bundles refuses it in words instead of building the wrong model.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.data.markdown import md
from tlcore.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

    from tlcore.runs.run import Run

BOX_BUNDLE_FORMAT = "tlcore-detector-bundle"
BOX_FORMAT_VERSION = 1
META_FILE = "tlcore.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
MAX_META_BYTES = 4 * 1024**2


def box_metadata(run: Run, checkpoint: str) -> dict[str, Any]:
    """What rebuilding the detector needs, with the run's data, settings and measured mAP."""
    from tlcore.data.box_report import training_size
    from tlcore.runs.boxes_run import boxes_data, detection_settings
    from tlcore.runs.files import now_iso
    from tlcore.runs.run import package_versions

    data, settings = boxes_data(run), detection_settings(run)
    size = training_size(data, settings.long_side)
    status = run.status()
    per_class = Counter(b.label for p in data.photos for b in p.boxes)
    splits = Counter(p.split or "none" for p in data.photos)
    return {
        "format": BOX_BUNDLE_FORMAT,
        "format_version": BOX_FORMAT_VERSION,
        "task": {"modality": "image", "target": "boxes"},
        "architecture": "fasterrcnn",
        "backbone": settings.model,
        "pretrained_weights": settings.weights,
        "classes": list(data.classes),
        "size": [int(size[0]), int(size[1])],  # (height, width) every photo is resized to
        "input": "RGB floats in [0, 1], resized to size; the model normalises them itself",
        "settings": settings.to_dict(),
        "data": {
            "source": Path(str(run.record.get("data", {}).get("source", ""))).name,
            "format": data.format,
            "photos": len(data.photos),
            "boxes_per_class": dict(per_class.most_common()),
            "split": dict(splits),
            "split_source": data.split_source,
        },  # fmt: skip
        "metrics": {k: status.get(k) for k in ("map50", "map", "ap50_per_class", "ap_per_class")},
        "run_id": run.id,
        "checkpoint": checkpoint,
        "created": now_iso(),
        "versions": package_versions(),
    }


def write_box_bundle(run: Run, checkpoint: str, folder: Path) -> dict[str, Any]:
    """The bundle of ``run``'s ``checkpoint`` into ``folder``; its tlcore.json."""
    from safetensors.torch import save_file

    from tlcore.runs.boxes_run import load_detector

    model, _, _ = load_detector(run, checkpoint)
    meta = box_metadata(run, checkpoint)
    meta["anchor_sizes"] = [int(s[0]) for s in model.rpn.anchor_generator.sizes]
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"run_id": run.id})
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
    (folder / CARD_FILE).write_text(box_model_card(meta), encoding="utf-8")
    return meta


def _ap(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3f}"


def box_model_card(meta: dict[str, Any]) -> str:
    """The README.md: what it finds, on what data, with which settings, and how well (every
    name from the data escaped: class names come from annotation files)."""
    m, d, s = meta.get("metrics") or {}, meta.get("data") or {}, meta.get("settings") or {}
    at50, over = m.get("ap50_per_class") or {}, m.get("ap_per_class") or {}
    classes = meta.get("classes", [])
    lines = [
        f"# Object detector: {', '.join(md(c) for c in classes)}",
        "",
        f"Faster R-CNN on {md(meta.get('backbone'))} ({md(meta.get('pretrained_weights'))} "
        f"weights), trained by tlcore (run {md(meta.get('run_id'))}, "
        f"{md(meta.get('checkpoint'))} checkpoint). Photos are resized to "
        f"{meta['size'][1]}×{meta['size'][0]} pixels; boxes come back in the photo's own pixels.",
        "",
        "## Measured on the validation photos",
        "",
        f"- mAP@0.5: **{_ap(m.get('map50'))}**",
        f"- mAP@0.5:0.95: **{_ap(m.get('map'))}**",
        "",
        "| class | boxes in the data | AP@0.5 | AP@0.5:0.95 |",
        "| --- | ---: | ---: | ---: |",
    ]
    per_class = d.get("boxes_per_class") or {}
    for c in classes:
        lines.append(
            f"| {md(c)} | {per_class.get(c, 0)} | {_ap(at50.get(c))} | {_ap(over.get(c))} |"
        )
    split = ", ".join(f"{n} {md(k)}" for k, n in (d.get("split") or {}).items())
    lines += [
        "",
        "## Data",
        "",
        f"{d.get('photos', 0)} photos from {md(d.get('source'))} ({md(d.get('format'))} "
        f"annotations); split: {split} ({md(d.get('split_source'))}).",
        "",
        "## Settings",
        "",
        *(f"- {md(k)}: {md(v)}" for k, v in s.items()),
        "",
        "## Use",
        "",
        "```python",
        "from tlcore.export.box_bundle import load_box_bundle",
        "detector = load_box_bundle('bundle.zip')",
        "detector.predict(['photo.jpg'])  # [{path, boxes: [{label, score, xmin, ...}]}]",
        "```",
        "",
    ]
    return "\n".join(lines)


# -- reading it back ------------------------------------------------------------------------


@dataclass
class BoxBundle:
    """A detector read from a bundle: ``predict(paths)`` finds boxes as ``tlcore predict`` does."""

    model: nn.Module
    classes: list[str]
    size: tuple[int, int]
    meta: dict[str, Any]

    def predict(self, paths: list[str], min_score: float = 0.5) -> list[dict[str, Any]]:
        """For each photo: its path and boxes [{label, score, xmin, ymin, xmax, ymax}] in its
        own pixels, as ``tlcore predict`` gives them for the run."""
        from PIL import Image

        from tlcore.runs.boxes_run import detect

        heads = self.model.roi_heads  # they drop boxes under their own floor before min_score
        heads.score_thresh = min(self.meta.get("score_floor", 0.05), min_score)
        answers = []
        for path in paths:
            with Image.open(path) as im:
                boxes = detect(self.model, self.classes, self.size, im, min_score)
            answers.append({"path": str(path), "boxes": boxes})
        return answers


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


def load_box_bundle(path: str | Path) -> BoxBundle:
    """The detector of a bundle folder or .zip, ready to predict (CPU, eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    from tlcore.models.detector import build_detector

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
        anchors = tuple((int(s),) for s in meta["anchor_sizes"])
        model = build_detector(str(meta["backbone"]), classes, str(meta["pretrained_weights"]),
                               size, [], load=False)  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"{path}: its {META_FILE} lacks a usable {exc} field.") from None
    model.rpn.anchor_generator = AnchorGenerator(anchors, ((0.5, 1.0, 2.0),) * len(anchors))
    meta["score_floor"] = float(model.roi_heads.score_thresh)  # the heads' own, as built
    try:
        state = load(raw_weights)
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"{path}: its weights do not fit the detector it describes ({first})."
                         ) from None  # fmt: skip
    return BoxBundle(model.eval(), classes, size, meta)
