"""The frozen backbone's pooled features through onnxruntime, the fastest CPU runtime measured.

On a CPU the embedding pass is the network: ``benchmarks/bench_embedding_pass.py``
timed PyTorch eager, channels-last, ``torch.compile`` (it needs a C++ compiler,
``devices.missing_compiler``) and onnxruntime on the same decoded tensors, and
onnxruntime ran ``tf_efficientnet_lite0`` about four times faster than eager on two
cores, with the same features to ~1e-5. The graph costs an export (seconds), so it
is exported once per backbone weights and input size, kept in memory for the
model's life and on disk beside the embeddings, and only used where the pass is
long enough to pay for a fresh export (``worth_exporting``). Anything the exporter
or onnxruntime refuses falls back to eager PyTorch: the runtime is an optimisation,
never a new way to fail.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("tlcore.training.onnx_backbone")

OPSET = 17
# A fresh export costs about what onnxruntime saves over eager PyTorch on this many
# photos at 224 px (2 cores: ~3 s against ~28 ms a photo, ``bench_embedding_pass``); the
# graph is then kept on disk, so every later pass of the same backbone and size is free.
EXPORT_PAYS_AFTER = 64
_REFERENCE_PIXELS = 224 * 224

_sessions: weakref.WeakKeyDictionary[nn.Module, tuple[str, Callable]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class _PooledFeatures(nn.Module):
    """What ``features.embed`` computes: pooled pre-logit features of a batch."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(images), pre_logits=True)


def weights_digest(model: nn.Module, shape: tuple[int, ...]) -> str:
    """The graph's identity: class, input size, every weight and buffer, the versions."""
    digest = hashlib.blake2b(digest_size=16)
    import onnxruntime

    digest.update(f"{type(model).__qualname__}|{tuple(shape[1:])}|{torch.__version__}|"
                  f"{onnxruntime.__version__}|{OPSET}".encode())  # fmt: skip
    head = getattr(model, "get_classifier", lambda: None)()
    unused = (
        {t.data_ptr() for t in head.state_dict().values()} if isinstance(head, nn.Module) else set()
    )
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in unused:  # the classifier is not in the graph (pre-logits)
            continue
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def worth_exporting(n_images: int, shape: tuple[int, ...]) -> bool:
    """True when the pass is long enough that exporting the graph pays for itself."""
    scale = (shape[-1] * shape[-2]) / _REFERENCE_PIXELS
    return n_images * scale >= EXPORT_PAYS_AFTER


def _export(model: nn.Module, example: torch.Tensor) -> bytes:
    """The graph in eval mode; the model keeps its own mode (the exporter restores the
    wrapper's, which would otherwise put the whole backbone in training mode)."""
    buffer, was_training = io.BytesIO(), model.training
    wrapper = _PooledFeatures(model).eval()
    with warnings.catch_warnings():  # the tracer's notes are for exporters, not users
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example[:1],), buffer, opset_version=OPSET,
                          input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                          dynamo=False)  # fmt: skip
    model.train(was_training)
    return buffer.getvalue()


def _graph_path(folder: Path, digest: str) -> Path:
    return folder / f"backbone-{digest}.onnx"


def _read_or_export(model: nn.Module, example: torch.Tensor, folder: Path | None, digest: str):
    path = _graph_path(folder, digest) if folder is not None else None
    if path is not None and path.is_file():
        return path.read_bytes()
    graph = _export(model, example)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(graph)
            os.replace(partial, path)
        except OSError as exc:  # a read-only cache folder: the graph still serves this pass
            log.info("could not keep the ONNX backbone in %s: %s", folder, exc)
    return graph


def exported_file(folder: Path | None, model: nn.Module, shape: tuple[int, ...]) -> bool:
    """True when this backbone's graph for ``shape`` is already exported (free to use)."""
    if model in _sessions:
        return True
    return folder is not None and _graph_path(folder, weights_digest(model, shape)).is_file()


def runner(
    model: nn.Module, example: torch.Tensor, folder: Path | None, *, export: bool = True
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function batch -> pooled features through onnxruntime, or None to stay eager.

    The session is kept per model while its weights stay the same (a digest of them,
    computed once per call). ``export=False``: only a kept session or a graph already on
    disk is used (a pass too short to pay for a fresh export).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    shape = tuple(example.shape)
    digest = weights_digest(model, shape)
    with _lock:
        kept = _sessions.get(model)
        if kept is not None and kept[0] == digest:
            return kept[1]
        if not export and not (folder is not None and _graph_path(folder, digest).is_file()):
            return None
        try:
            graph = _read_or_export(model, example, folder, digest)
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()  # a run's share of the cores
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # an op the exporter or runtime lacks: eager is correct
            log.info("onnxruntime unavailable for %s, embedding eagerly: %s",
                     type(model).__name__, exc)  # fmt: skip
            return None

        def run(images: torch.Tensor) -> torch.Tensor:
            array = images.detach().to(torch.float32).contiguous().numpy()
            return torch.from_numpy(session.run(None, {"images": array})[0])

        _sessions[model] = (digest, run)
        return run
