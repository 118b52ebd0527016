"""Checkpoint files: weights as safetensors, progress as a plain-tensor ``.pt``.

Weights go to ``<name>.safetensors`` (safe to load, usable by export and
prediction); the optimizer, epoch/step counters and RNG state go to
``<name>.state.pt``, loadable with ``torch.load(weights_only=True)``. Both are
written to a temp file and renamed, and both carry the step they belong to so
a crash between the two renames is caught on load.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tlcore.errors import RunError


def checkpoint_paths(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / f"{name}.safetensors", directory / f"{name}.state.pt"


def save_checkpoint(directory: Path, name: str, model: nn.Module, state: dict[str, Any]) -> None:
    """Write ``name`` (``last`` or ``best``) atomically; on failure the previous pair stays usable."""
    directory.mkdir(parents=True, exist_ok=True)
    weights_path, state_path = checkpoint_paths(directory, name)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    state_tmp, weights_tmp = state_path.with_suffix(".tmp"), weights_path.with_suffix(".tmp")
    try:  # both files are complete on disk before either replaces the previous checkpoint
        torch.save(state, state_tmp)
        save_file(tensors, str(weights_tmp), metadata={"step": str(state.get("step", 0))})
        os.replace(state_tmp, state_path)
        os.replace(weights_tmp, weights_path)
    finally:  # a full disk or read-only folder leaves the previous pair as it was
        for tmp in (state_tmp, weights_tmp):
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def has_checkpoint(directory: Path, name: str) -> bool:
    return all(p.is_file() for p in checkpoint_paths(directory, name))


def load_checkpoint(directory: Path, name: str, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (in place) and return the saved progress state."""
    weights_path, state_path = checkpoint_paths(directory, name)
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RunError(
            f"{state_path} was refused: it holds pickled Python objects, not plain training "
            "state, and tlcore never runs code from a file. Start a new run."
        ) from None
    from safetensors import safe_open

    with safe_open(str(weights_path), framework="pt") as f:
        step = (f.metadata() or {}).get("step")
    if step is not None and int(step) != int(state.get("step", 0)):
        raise RunError(
            f"checkpoint '{name}' in {directory} is inconsistent (weights from step {step}, "
            f"state from step {state.get('step')}): resume from 'best' or start a new run."
        )
    model.load_state_dict(load_file(str(weights_path)))
    return state
