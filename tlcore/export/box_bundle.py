"""A detection run packed to travel: the detector's weights, what it needs to be rebuilt, and a
model card with the mAP it measured, read back by ``load_box_bundle`` (``tlcore.load``) to
find the same boxes (``tlcore.results.box_predict``).

The folder holds ``model.safetensors`` (every tensor of the Faster R-CNN), ``tlcore.json``
(the backbone, the classes in order, the training size the photos are resized to, the
anchor sizes, the settings, the data and the metrics from the run's status) and a
``README.md`` model card. Its ``format`` is not the photo-label bundle's, so a loader of
label bundles refuses it in words instead of building the wrong model.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.data.markdown import md
from tlcore.results.box_predict import (  # the reader sits below, for tlcore.load(bundle)
    BOX_BUNDLE_FORMAT,
    BOX_FORMAT_VERSION,
    META_FILE,
    WEIGHTS_FILE,
    BoxPredictor,
    load_box_bundle,
)

__all__ = ["BoxPredictor", "box_metadata", "box_model_card", "load_box_bundle",
           "write_box_bundle"]  # fmt: skip

if TYPE_CHECKING:
    from tlcore.runs.run import Run

CARD_FILE = "README.md"


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

    from tlcore.models.detector import anchors_meta
    from tlcore.runs.boxes_run import load_detector

    model, _, _ = load_detector(run, checkpoint)
    meta = box_metadata(run, checkpoint)
    meta.update(anchors_meta(model))
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
        "import tlcore",
        "detector = tlcore.load('bundle.zip')",
        "detector.predict(['photo.jpg'])  # [{path, boxes: [{label, score, xmin, ...}]}]",
        "```",
        "",
    ]
    return "\n".join(lines)
