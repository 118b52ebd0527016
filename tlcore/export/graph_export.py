"""ONNX and TorchScript files of a trained model, each checked against PyTorch on real photos.

An exported graph that silently computes something else is worse than none, so
every export is run at once on real images (the run's own validation photos,
preprocessed exactly as the ``Predictor`` does) and its class probabilities are
compared with the PyTorch model's: the largest absolute difference must stay
below ``TOLERANCE``. The images go through in two batch sizes, so a batch axis
that is not really dynamic fails the check instead of the user's first batch.

ONNX uses ``torch.onnx.export(dynamo=False)``: the TorchScript-based exporter
works offline with the ``onnx`` package alone, while the newer dynamo exporter
needs ``onnxscript`` as well.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcore.errors import ModelError
from tlcore.export.format_check import FormatCheck
from tlcore.export.tasks import export_task, model_task

TOLERANCE = 1e-4
ONNX_OPSET = 17
OUTPUT_NAME = "logits"  # the input's name is the task's (tlcore.export.tasks)
METADATA_KEY = "tlcore.json"  # ONNX metadata_props key / TorchScript extra file


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """torch.jit and the TorchScript-based ONNX exporter warn that they are deprecated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*[Tt]race.*")
        yield


def _require(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(
            f"{purpose} needs the Python package '{module}', which is not installed: "
            f"pip install {module}"
        ) from None


@torch.no_grad()
def _reference(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """PyTorch's (calibrated) probabilities and, with a detector, its unknown scores."""
    from tlcore.export.trusted_graph import split_outputs

    was_training = model.training
    model.eval()
    try:
        return split_outputs(model(images))
    finally:
        model.train(was_training)


def _batch_sizes(n: int) -> list[int]:
    """Single photos and the whole set (differing from the export's batch of 2)."""
    return [1, n] if n > 1 else [1]


def score_errors(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """How far each "none of these" score is from PyTorch's, in the units that measure the
    arithmetic: the score is ``sqrt(2 - 2 cos)``, so for a photo next to a training photo
    (a score near 0) a rounding of 1e-7 in the cosine shows as 5e-4 in the score. The
    error is the smaller of the scores' difference and their squares' difference."""
    got, expected = got.double(), expected.double()
    return torch.minimum((got - expected).abs(), (got.square() - expected.square()).abs())


@torch.no_grad()
def compare(
    fmt: str,
    runtime: str,
    run_batch: Callable[[torch.Tensor], Any],
    model: nn.Module,
    images: torch.Tensor,
    tolerance: float = TOLERANCE,
) -> FormatCheck:
    """Probabilities (and unknown decisions) of ``run_batch(x)`` vs the PyTorch model.

    A photo whose PyTorch score lies within ``tolerance`` of the threshold may fall on
    either side of it in another runtime's arithmetic; its decision is not compared (its
    score still is, through ``score_errors``)."""
    from tlcore.export.trusted_graph import split_outputs

    started = time.perf_counter()
    expected, expected_score = _reference(model, images)
    threshold = getattr(model, "threshold", None)
    worst, same = 0.0, True
    score_worst, same_unknown = 0.0, True
    sizes = _batch_sizes(len(images))
    for size in sizes:
        parts = [
            split_outputs(run_batch(images[i : i + size])) for i in range(0, len(images), size)
        ]
        got = torch.cat([probs for probs, _ in parts])
        if expected_score is not None and threshold is not None:
            scores = torch.cat([score for _, score in parts])
            score_worst = max(score_worst, float(score_errors(scores, expected_score).max()))
            decided = (expected_score - threshold).abs() > tolerance  # not on the threshold
            same_unknown = same_unknown and bool(
                torch.equal((scores > threshold)[decided], (expected_score > threshold)[decided])
            )
        if got.shape != expected.shape:
            raise ModelError(
                f"the exported {fmt} model returned shape {tuple(got.shape)} for a batch of "
                f"{size}, expected {tuple(expected.shape)}."
            )
        worst = max(worst, float((got - expected).abs().max()))
        same = same and bool(torch.equal(got.argmax(1), expected.argmax(1)))
    return FormatCheck(
        format=fmt,
        runtime=runtime,
        images=len(images),
        batch_sizes=sizes,
        max_abs_diff=worst,
        tolerance=tolerance,
        same_top_class=same,
        passed=worst < tolerance and same and same_unknown and score_worst < tolerance,
        seconds=time.perf_counter() - started,
        unknown_max_diff=score_worst if expected_score is not None else None,
        same_unknown=same_unknown if expected_score is not None else None,
    )


def export_onnx(
    model: nn.Module, images: torch.Tensor, out: Path, metadata: dict[str, Any]
) -> FormatCheck:
    """Write ``out`` (.onnx, batch axis dynamic, metadata inside) and check it with onnxruntime."""
    onnx = _require("onnx", "ONNX export")
    ort = _require("onnxruntime", "Checking the ONNX export")
    model = model.eval()
    example = images[: min(2, len(images))]
    exported = export_task(model_task(metadata))  # photos, or token ids of a text model
    input_name, input_axes = exported.input_name, dict(exported.input_axes)
    output_names = list(getattr(model, "output_names", [OUTPUT_NAME]))  # + trust's outputs
    try:
        with _quiet_exporters(), torch.no_grad():
            torch.onnx.export(
                model,
                (example,),
                str(out),
                dynamo=False,
                input_names=[input_name],
                output_names=output_names,
                dynamic_axes={input_name: input_axes, **{n: {0: "batch"} for n in output_names}},
                opset_version=ONNX_OPSET,
            )
    except Exception as exc:  # noqa: BLE001 - exporter errors come in many types
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        hint = ""
        if "adaptive_avg_pool2d" in first:  # e.g. VGG below 224 px stretches a small feature map
            hint = (
                " At this image size the model resizes a feature map by an uneven factor, "
                "which ONNX cannot express: train at the model's own size (224 px for VGG) "
                "or export TorchScript."
            )
        raise ModelError(
            f"ONNX export of this model failed: {type(exc).__name__}: {first}{hint}"
        ) from exc
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(graph, str(out))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    def run_batch(batch: torch.Tensor) -> Any:
        outputs = session.run(output_names, {input_name: batch.cpu().numpy()})
        return outputs[0] if len(outputs) == 1 else outputs

    runtime = f"ONNX Runtime {ort.__version__}"
    return compare("onnx", runtime, run_batch, model, images)


def export_torchscript(
    model: nn.Module, images: torch.Tensor, out: Path, metadata: dict[str, Any]
) -> FormatCheck:
    """Trace the model to ``out`` (.pt, ``tlcore.json`` as an extra file) and check the reload."""
    model = model.eval()
    example = images[: min(2, len(images))]
    try:
        with _quiet_exporters(), torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
            torch.jit.save(traced, str(out), _extra_files={METADATA_KEY: json.dumps(metadata)})
            reloaded = torch.jit.load(str(out), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - tracer errors come in many types
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelError(f"TorchScript export failed: {type(exc).__name__}: {first}") from exc
    reloaded.eval()

    def run_batch(batch: torch.Tensor) -> torch.Tensor:
        with _quiet_exporters(), torch.no_grad():
            return reloaded(batch)

    return compare(
        "torchscript", f"TorchScript (torch {torch.__version__})", run_batch, model, images
    )
