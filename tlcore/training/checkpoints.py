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
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tlcore.errors import RunError
from tlcore.models.weights import looks_pickled


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


class CheckpointDamaged(RunError):
    """A checkpoint file that is truncated, unreadable or does not match its pair."""


def load_checkpoint(directory: Path, name: str, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (in place) and return the saved progress state.

    Both files are read and checked before ``model`` changes, so a damaged
    checkpoint (``CheckpointDamaged``) leaves the model as it was for the next try.
    """
    from safetensors import SafetensorError, safe_open

    weights_path, state_path = checkpoint_paths(directory, name)
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not looks_pickled(state_path):
            raise _damaged(name, state_path, exc) from None
        raise RunError(
            f"{state_path} was refused: it holds pickled Python objects, not plain training "
            "state, and tlcore never runs code from a file. Start a new run."
        ) from None
    except (OSError, RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise _damaged(name, state_path, exc) from None
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            step = (f.metadata() or {}).get("step")
        weights = load_file(str(weights_path))
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:
        raise _damaged(name, weights_path, exc) from None
    if not isinstance(state, dict):
        raise _damaged(name, state_path, TypeError("not a dictionary of training state"))
    if step is not None and str(step) != str(state.get("step", 0)):
        raise CheckpointDamaged(
            f"checkpoint '{name}' in {directory} is inconsistent (weights from step {step}, "
            f"state from step {state.get('step')}): resume from 'best' or start a new run."
        )
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise _damaged(name, weights_path, exc) from None
    return state


def _damaged(name: str, path: Path, exc: BaseException) -> CheckpointDamaged:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
    return CheckpointDamaged(f"the '{name}' checkpoint file {path.name} is damaged ({first})")
