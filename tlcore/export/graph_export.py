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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcore.errors import ModelError

TOLERANCE = 1e-4
ONNX_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "image", "logits"
METADATA_KEY = "tlcore.json"  # ONNX metadata_props key / TorchScript extra file


@dataclass
class FormatCheck:
    """How closely an exported file reproduces PyTorch, measured on real images."""

    format: str
    runtime: str
    images: int
    batch_sizes: list[int]
    max_abs_diff: float
    tolerance: float
    same_top_class: bool
    passed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """One sentence for the page and the terminal."""
        verdict = "matches" if self.passed else "does NOT match"
        top = "the same" if self.same_top_class else "a different"
        return (
            f"{self.runtime} {verdict} PyTorch on {self.images} real photos "
            f"(batches of {' and '.join(map(str, self.batch_sizes))}): largest probability "
            f"difference {self.max_abs_diff:.1e} (limit {self.tolerance:.0e}), {top} top class "
            f"for every photo."
        )


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
def _reference(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(images).float().softmax(dim=1)
    finally:
        model.train(was_training)


def _batch_sizes(n: int) -> list[int]:
    """Single photos and the whole set (differing from the export's batch of 2)."""
    return [1, n] if n > 1 else [1]


@torch.no_grad()
def compare(
    fmt: str,
    runtime: str,
    run_batch: Any,
    model: nn.Module,
    images: torch.Tensor,
    tolerance: float = TOLERANCE,
) -> FormatCheck:
    """Probabilities of ``run_batch(x) -> logits`` vs the PyTorch model, batch by batch."""
    started = time.perf_counter()
    expected = _reference(model, images)
    worst, same = 0.0, True
    sizes = _batch_sizes(len(images))
    for size in sizes:
        got = torch.cat(
            [
                torch.as_tensor(run_batch(images[i : i + size])).float().softmax(dim=1)
                for i in range(0, len(images), size)
            ]
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
        passed=worst < tolerance and same,
        seconds=time.perf_counter() - started,
    )


def export_onnx(
    model: nn.Module, images: torch.Tensor, out: Path, metadata: dict[str, Any]
) -> FormatCheck:
    """Write ``out`` (.onnx, batch axis dynamic, metadata inside) and check it with onnxruntime."""
    onnx = _require("onnx", "ONNX export")
    ort = _require("onnxruntime", "Checking the ONNX export")
    model = model.eval()
    example = images[: min(2, len(images))]
    try:
        with _quiet_exporters(), torch.no_grad():
            torch.onnx.export(
                model,
                (example,),
                str(out),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
    except Exception as exc:  # noqa: BLE001 - exporter errors come in many types
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelError(
            f"ONNX export of this model failed: {type(exc).__name__}: {first}"
        ) from exc
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(graph, str(out))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    def run_batch(batch: torch.Tensor) -> Any:
        return session.run([OUTPUT_NAME], {INPUT_NAME: batch.cpu().numpy()})[0]

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
