"""Where tensors live and at which precision: cuda, else mps, else cpu.

The trainer calls the same three functions on every machine, so one code path
runs with bf16/fp16 autocast and channels_last on a GPU and in plain fp32 on a
laptop CPU.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from tlcore.errors import ConfigError


def cpu_threads_per_run(concurrent_runs: int) -> int | None:
    """CPU threads for one run when several train at once, so they share the cores
    instead of each taking all of them (which makes every run many times slower).

    None leaves torch's default: one run at a time, or the user set OMP_NUM_THREADS
    (torchrun sets it to 1 for each of its processes).
    """
    if concurrent_runs <= 1 or os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // concurrent_runs)


def missing_compiler(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot work here, or None. On a CPU its code generator needs a
    C++ compiler; without one torch tried for ten seconds or more, then fell back to eager
    (a bare laptop). Asked up front, the run says why and trains eagerly at once."""
    import shutil

    if device.type != "cpu":
        return None
    named = os.environ.get("CXX")
    if named:
        return None if shutil.which(named) else f"the C++ compiler CXX={named!r} is not found"
    if any(shutil.which(cxx) for cxx in ("c++", "g++", "clang++")):
        return None
    return "no C++ compiler (c++, g++ or clang++) is installed"


def resolve_device(name: str = "auto") -> torch.device:
    """The fastest available device for ``auto``; a clear error for one that is missing."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device = 'cuda' but no CUDA GPU is available: use 'auto' or 'cpu'.")
    if name == "mps" and not _mps_available():
        raise ConfigError("device = 'mps' but Apple MPS is not available: use 'auto' or 'cpu'.")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it (no loss scaling needed), else fp16 (with a scaler).

    None on CPU, and on Apple MPS too: its autocast/GradScaler support varies by macOS and
    torch version, and fp32 there is correct everywhere.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision on GPUs; a no-op on CPU so results there stay exact and deterministic."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling only for fp16 (bf16 has fp32's range); disabled scalers are pass-through."""
    enabled = device.type == "cuda" and autocast_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type if device.type == "cuda" else "cpu", enabled=enabled)


def uses_channels_last(device: torch.device) -> bool:
    """channels_last speeds up convolutions with tensor cores; on CPU it is often slower."""
    return device.type == "cuda"


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an input batch, in the memory format the model was put in."""
    if batch.dim() == 4 and uses_channels_last(device):
        return batch.to(device, memory_format=torch.channels_last, non_blocking=True)
    return batch.to(device, non_blocking=True)


def device_name(device: torch.device) -> str:
    """A short, file-name-safe name used for the per-device run queue lock."""
    return device.type if device.index is None else f"{device.type}{device.index}"


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory, which a smaller batch or image size fixes."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
