"""A detector as one ONNX file, checked box by box against PyTorch on the run's own photos.

The graph is torchvision's whole Faster R-CNN (normalisation, backbone, pyramid, proposals,
box head, NMS) traced with the TorchScript-based exporter (``dynamo=False``, opset 17), for
ONE photo of a FIXED size: the run's training size. Its input ``image`` is float32
``[3, height, width]``, RGB in [0, 1], already resized to that size (``tlcore.json`` in the
file's metadata says the size); its outputs are ``boxes`` ``[N, 4]`` (xmin, ymin, xmax, ymax
at the training size), ``scores`` ``[N]`` and ``labels`` ``[N]`` (1-based: 0 is the
background). A fixed size keeps timm's TF "same" padding exact; a dynamic one is not
checked, so not offered.

Boxes come out of NMS in an order and number that rounding may change, so the check matches
them instead of comparing arrays: on real photos every box either side scores (above
``MIN_SCORE`` plus the tolerance) must have a counterpart of the same class on the other side
with IoU >= ``IOU_MIN`` and a score within ``SCORE_TOLERANCE``. Otherwise the file is refused
in words (``tlcore.export.exporter`` never hands it over).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.errors import DataError, ModelError
from tlcore.export.format_check import FormatCheck

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from tlcore.runs.run import Run

OPSET = 17
IOU_MIN = 0.9
SCORE_TOLERANCE = 0.02
MIN_SCORE = 0.05  # torchvision's box_score_thresh: nothing below it comes out of either side
CHECK_PHOTOS = 6
OUTPUTS = ("boxes", "scores", "labels")
METADATA_KEY = "tlcore.json"


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4]: [N, M]."""
    import numpy as np

    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def unmatched(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> tuple[int, int, float, float]:  # fmt: skip
    """Boxes of ``ref`` scoring above ``MIN_SCORE + SCORE_TOLERANCE`` with no counterpart in
    ``got`` (same class, IoU >= IOU_MIN, score within SCORE_TOLERANCE): (missing, compared,
    largest score difference, smallest IoU) over those that have one."""
    import numpy as np

    keep = ref["scores"] >= MIN_SCORE + SCORE_TOLERANCE
    boxes, scores, labels = ref["boxes"][keep], ref["scores"][keep], ref["labels"][keep]
    if not len(boxes):
        return 0, 0, 0.0, 1.0
    if not len(got["boxes"]):
        return len(boxes), len(boxes), 0.0, 1.0
    iou = _iou(boxes.astype(np.float64), got["boxes"].astype(np.float64))
    diff = np.abs(scores[:, None] - got["scores"][None, :])
    fits = (iou >= IOU_MIN) & (diff <= SCORE_TOLERANCE) & (labels[:, None] == got["labels"][None])
    found = fits.any(1)
    best = np.where(fits, iou, -1).argmax(1)
    rows = np.nonzero(found)[0]
    worst_diff = float(diff[rows, best[rows]].max()) if len(rows) else 0.0
    worst_iou = float(iou[rows, best[rows]].min()) if len(rows) else 1.0
    return int((~found).sum()), len(boxes), worst_diff, worst_iou


def compare_detections(pairs: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]],
                       seconds: float, size: tuple[int, int]) -> FormatCheck:  # fmt: skip
    """(PyTorch, ONNX Runtime) detections per photo → the check, both ways round."""
    missing = compared = 0
    worst_diff, worst_iou = 0.0, 1.0
    for ref, got in pairs:
        for a, b in ((ref, got), (got, ref)):
            m, n, d, i = unmatched(a, b)
            missing, compared = missing + m, compared + n
            worst_diff, worst_iou = max(worst_diff, d), min(worst_iou, i)
    passed = missing == 0
    where = f"on {len(pairs)} real photos (one photo at a time, fixed input {size[1]}×{size[0]})"
    if passed:
        said = (f"ONNX Runtime finds the same boxes as PyTorch {where}: all {compared} boxes "
                f"scoring at least {MIN_SCORE + SCORE_TOLERANCE:.2f} (either side) found again "
                f"with the same class, IoU at least {worst_iou:.3f} (limit {IOU_MIN}) and scores "
                f"within {worst_diff:.1e} (limit {SCORE_TOLERANCE}).")  # fmt: skip
    else:
        said = (f"ONNX Runtime does NOT find the same boxes as PyTorch {where}: {missing} of "
                f"{compared} boxes have no counterpart of the same class with IoU at least "
                f"{IOU_MIN} and a score within {SCORE_TOLERANCE}, so the file is not offered.")  # fmt: skip
    return FormatCheck(format="onnx", runtime="ONNX Runtime", images=len(pairs), batch_sizes=[1],
                    max_abs_diff=worst_diff, tolerance=SCORE_TOLERANCE,
                    same_top_class=passed, passed=passed, seconds=round(seconds, 2),
                    summary=said)  # fmt: skip


def check_photos(run: Run, size: tuple[int, int], limit: int = CHECK_PHOTOS) -> list[torch.Tensor]:
    """Up to ``limit`` of the run's photos that can still be read (validation first), at the
    training size; DataError in words when none can."""
    from tlcore.runs.boxes_run import boxes_data
    from tlcore.training.detection import photo_tensor

    data = boxes_data(run)
    tensors = []
    for photo in data.split("val") + data.split("train"):
        if len(tensors) >= limit:
            break
        try:
            tensors.append(photo_tensor(photo, size)[0])
        except OSError:
            continue  # moved or deleted since training: try the next photo
    if not tensors:
        raise DataError(f"cannot check the export on real photos: none of run {run.id}'s photos "
                        "can be read any more. Put the dataset back where it was, then export.")  # fmt: skip
    return tensors


def _graph(model: nn.Module) -> nn.Module:
    from torch import nn

    class DetectorGraph(nn.Module):
        """One photo in, (boxes, scores, labels) out: plain tensors an ONNX graph can give."""

        def __init__(self, detector: nn.Module) -> None:
            super().__init__()
            self.detector = detector

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
            found = self.detector([image])[0]
            return found["boxes"], found["scores"], found["labels"]

    return DetectorGraph(model).eval()


def write_onnx(model: nn.Module, example: torch.Tensor, out: Path, meta: dict[str, Any]) -> None:
    """Trace the detector on ``example`` into ``out`` with ``meta`` inside as tlcore.json."""
    import torch

    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the Python package 'onnx': pip install onnx") from None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_graph(model), (example,), str(out), opset_version=OPSET,
                          input_names=["image"], output_names=list(OUTPUTS), dynamo=False)  # fmt: skip
    graph = onnx.load(str(out))
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, default=str)
    onnx.save(graph, str(out))


def onnx_detections(path: Path, images: list[torch.Tensor]) -> list[dict[str, np.ndarray]]:
    """What ONNX Runtime finds in each photo with the file at ``path``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("Checking the ONNX export needs the Python package 'onnxruntime': "
                         "pip install onnxruntime") from None  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for image in images:
        found = session.run(list(OUTPUTS), {"image": image.numpy()})
        out.append(dict(zip(OUTPUTS, found, strict=True)))
    return out


def torch_detections(model: nn.Module, images: list[torch.Tensor]) -> list[dict[str, np.ndarray]]:
    from tlcore.training.detection import detections_of

    return [{k: v.numpy() for k, v in detections_of(model, image).items() if k in OUTPUTS}
            for image in images]  # fmt: skip


def export_box_onnx(model: nn.Module, images: list[torch.Tensor], out: Path,
                    meta: dict[str, Any]) -> FormatCheck:  # fmt: skip
    """Write ``out`` and check it against ``model`` on ``images`` (at the training size)."""
    model = model.eval()
    write_onnx(model, images[0], out, meta)
    started = time.monotonic()
    pairs = list(zip(torch_detections(model, images), onnx_detections(out, images), strict=True))
    size = (int(images[0].shape[-2]), int(images[0].shape[-1]))
    return compare_detections(pairs, time.monotonic() - started, size)
