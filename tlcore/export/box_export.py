"""A detection run's export: the bundle (``box_bundle``) or ONNX checked box by box
(``box_onnx``), built inside the exporter's hidden stage folder (``tlcore.export.exporter``
zips, marks and moves it into place, and refuses a graph whose check failed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.export.box_bundle import box_metadata, write_box_bundle
from tlcore.export.box_onnx import check_photos, export_box_onnx

if TYPE_CHECKING:
    from tlcore.data.progress import Steps
    from tlcore.export.format_check import FormatCheck
    from tlcore.runs.run import Run


def build_box_export(fmt: str, run: Run, checkpoint: str, stage: Path,
                     steps: Steps) -> tuple[Path, FormatCheck | None, dict[str, Any]]:  # fmt: skip
    """Write ``fmt`` ("bundle" or "onnx") of ``run`` inside ``stage``; (path, check, details)."""
    from tlcore.models.detector import anchors_meta
    from tlcore.runs.boxes_run import load_detector

    if fmt == "bundle":
        steps.start("writing the weights, the settings and the model card")
        meta = write_box_bundle(run, checkpoint, stage / "bundle")
        metrics = {k: meta["metrics"].get(k) for k in ("map50", "map")}
        return stage / "bundle", None, {"metrics": {"images": meta["data"]["photos"], **metrics}}
    steps.start("reading the photos to check it on")
    model, _, size = load_detector(run, checkpoint)
    images = check_photos(run, size)
    meta = {**box_metadata(run, checkpoint), "input": "image: float32 [3, height, width], RGB "
            "in [0, 1], resized to size (height, width)",
            **anchors_meta(model)}  # fmt: skip
    steps.start("writing the ONNX file and checking it against PyTorch")
    path = stage / "model.onnx"
    return path, export_box_onnx(model, images, path, meta), {}
