"""Checking a bundle's ``tlcore.json`` before anything is built from it.

A bundle comes from elsewhere (a download, a colleague, a hand edit), so every
field the Predictor uses is checked on load: a string where a list belongs, a
standard deviation of zero, an unknown interpolation, a negative size. Every
problem found is listed, one line each, in one ``ModelError``; nothing reaches
timm or torch to fail there with a traceback. Keys this version does not know
(written by a newer tlcore, or added by another feature) are allowed.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

from tlcore.errors import ModelError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
CROP_MODES = ("center", "squash", "border")
MAX_SIDE = 4096  # px: the largest input size a bundle may ask for
MIN_SIDE = 8
HEAD_NAMES = ("classifier", "head", "fc", "last_linear")  # what timm and tlcore call the last layer


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _preprocessing_problems(pre: Any) -> list[str]:
    if not isinstance(pre, dict):
        return [f"preprocessing must be an object with input_size, mean and std, got {_show(pre)}"]
    problems = []
    size = pre.get("input_size")
    channels = 3
    if not (
        isinstance(size, list)
        and len(size) == 3
        and all(_is_int(v) for v in size)
        and size[0] in (1, 3)
        and all(MIN_SIDE <= v <= MAX_SIDE for v in size[1:])
    ):
        problems.append(
            f"preprocessing.input_size must be [channels, height, width] with 1 or 3 channels "
            f"and sides from {MIN_SIDE} to {MAX_SIDE}, got {_show(size)}"
        )
    else:
        channels = size[0]
    for key, positive in (("mean", False), ("std", True)):
        value = pre.get(key)
        ok = (
            isinstance(value, list)
            and len(value) == channels
            and all(_is_number(v) and (v > 0 if positive else True) for v in value)
        )
        if not ok:
            want = "numbers > 0" if positive else "numbers"
            problems.append(
                f"preprocessing.{key} must be a list of {channels} {want}, got {_show(value)}"
            )
    interpolation = pre.get("interpolation", "bicubic")
    if interpolation not in INTERPOLATIONS:
        problems.append(
            f"preprocessing.interpolation must be one of {', '.join(INTERPOLATIONS)}, "
            f"got {_show(interpolation)}"
        )
    crop = pre.get("crop_pct", 1.0)
    if crop is not None and not (_is_number(crop) and 0 < crop <= 1):
        problems.append(f"preprocessing.crop_pct must be a number in (0, 1], got {_show(crop)}")
    mode = pre.get("crop_mode", "center")
    if mode is not None and mode not in CROP_MODES:
        problems.append(
            f"preprocessing.crop_mode must be one of {', '.join(CROP_MODES)}, got {_show(mode)}"
        )
    return problems


def meta_problems(meta: dict[str, Any]) -> list[str]:
    """Every problem with the known fields of a ``tlcore.json`` (format already checked)."""
    problems = []
    version = meta.get("format_version", 0)
    if not _is_int(version):
        problems.append(f"format_version must be a whole number, got {_show(version)}")
    arch = meta.get("architecture")
    if not isinstance(arch, str) or not arch.strip():
        problems.append(f"architecture must be a timm model name, got {_show(arch)}")
    classes = meta.get("classes")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        problems.append(f"classes must be a list of class names, got {_show(classes)}")
    else:
        twice = sorted(c for c, n in Counter(classes).items() if n > 1)  # linear: 100,000 names
        if twice:
            shown = ", ".join(map(repr, twice[:5])) + (" ..." if len(twice) > 5 else "")
            problems.append(f"classes lists {shown} more than once")
        blank = [n for n, c in enumerate(classes) if not c.strip()]
        if blank:  # would print as a blank label
            problems.append(
                f"classes holds an empty name (number {blank[0] + 1} of {len(classes)})"
            )
        count = meta.get("num_classes", len(classes))
        if count != len(classes):
            problems.append(f"num_classes is {_show(count)} but {len(classes)} classes are listed")
    img_size = meta.get("img_size")
    if img_size is not None and not (_is_int(img_size) and MIN_SIDE <= img_size <= MAX_SIDE):
        problems.append(
            f"img_size must be empty or a whole number from {MIN_SIDE} to {MAX_SIDE}, "
            f"got {_show(img_size)}"
        )
    if meta.get("modality") == "text":  # token ids, not pixels: tlcore.results.text_predict
        text = meta.get("text")
        if not (isinstance(text, dict) and _is_int(text.get("max_tokens"))
                and 8 <= text["max_tokens"] <= 512 and _is_int(text.get("pad_id"))):  # fmt: skip
            problems.append(f"text must hold max_tokens (8 to 512) and pad_id, got {_show(text)}")
    else:
        problems.extend(_preprocessing_problems(meta.get("preprocessing")))
    name = meta.get("weights_file", "model.safetensors")
    if not (isinstance(name, str) and name and PurePosixPath(name).name == name and name != ".."):
        problems.append(f"weights_file must be a plain file name, got {_show(name)}")
    weights = meta.get("pretrained_weights", "bundled")
    if not isinstance(weights, str):
        problems.append(f"pretrained_weights must be text, got {_show(weights)}")
    return problems


def _heads(state: dict[str, Any]) -> dict[str, int]:
    """Each linear layer of the weights (a 2-D ``X.weight`` with its ``X.bias``): its outputs."""
    heads = {}
    for key, weight in state.items():
        if not key.endswith(".weight") or getattr(weight, "ndim", 0) != 2:
            continue
        bias = state.get(key[: -len("weight")] + "bias")
        if bias is not None and getattr(bias, "ndim", 0) == 1 and bias.shape[0] == weight.shape[0]:
            heads[key[: -len(".weight")]] = int(weight.shape[0])
    return heads


def classes_fit_weights(meta: dict[str, Any], state: dict[str, Any], label: str) -> None:
    """ModelError unless some output layer of the weights has one output per listed class.

    Checked on the tensors' shapes before a model is built: a ``tlcore.json`` listing
    100,000 classes for a two-class head would otherwise build a 100,000-way head first."""
    if isinstance(meta.get("columns"), dict):  # one head per task, in its own file: each is
        return  # checked against its task's classes before it is built (results.columns_predict)
    classes = meta["classes"]
    heads = _heads(state)
    if not heads or len(classes) in heads.values():
        return
    named = [n for n in heads if n.rsplit(".", 1)[-1] in HEAD_NAMES]
    has = f" (its output layer '{named[-1]}' has {heads[named[-1]]})" if named else ""
    raise ModelError(
        f"{label} is not a usable tlcore bundle: its {len(classes):,} class names do not "
        f"match its weights, which have no output layer of {len(classes):,} outputs{has}."
    )


def check_meta_fields(meta: dict[str, Any], label: str, meta_name: str) -> None:
    """ModelError listing every problem, one line each, when the known fields are not usable."""
    problems = meta_problems(meta)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ModelError(
            f"{label} is not a usable tlcore bundle: its {meta_name} has "
            f"{len(problems)} problem{'s' if len(problems) > 1 else ''}:\n{lines}"
        )
