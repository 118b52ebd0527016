"""Flags that several sub-commands share, and the one way their values are checked.

``train``, ``lr-find``, ``compare``, ``fewshot`` and ``adapt`` all take a
dataset, a backbone and its weights, an input size, a seed and a device: they
get the same spelling, defaults and help from here, and a wrong value gets the
same one-line message (``--flag 'x' is not valid: it must be ...``) everywhere.
Number flags are read as text so that message, not argparse's, names the flag.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from tlcore.errors import ConfigError
from tlcore.training.config import BOUNDS, DEVICES, MAX_IMG_SIZE, MIN_IMG_SIZE

JSON_HELP = "print one final JSON object as the last line"


def add_data(p: argparse.ArgumentParser, help: str = "") -> None:
    p.add_argument("--data", required=True, metavar="DIR|ZIP",
                   help=help or "class folders (or train/ val/), or a .zip")  # fmt: skip


def add_model(p: argparse.ArgumentParser, *, scratch: bool = False, what: str = "") -> None:
    """--model and --weights; weights default to the bundled file when there is one, else the hub."""
    p.add_argument(
        "--model", default="tf_efficientnet_lite0", help="timm model name (see `tlcore models`)"
    )
    p.add_argument("--weights", default=None,
                   metavar="bundled|hub|FILE" + ("|scratch" if scratch else ""),
                   help=f"pretrained weights{what} (default: bundled if available, else hub)")  # fmt: skip


def add_img_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--img-size", default=None, metavar="N",
                   help=f"square input size, {MIN_IMG_SIZE} to {MAX_IMG_SIZE} (default: the model's)")  # fmt: skip


def add_batch_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", default="16", metavar="N", help="images per step (default 16)")


def add_seed(p: argparse.ArgumentParser, help: str = "random seed for split and order") -> None:
    p.add_argument("--seed", default="0", metavar="N", help=f"{help} (default 0)")


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to run (default auto: cuda, else mps, else cpu)")  # fmt: skip


def add_json(p: argparse.ArgumentParser, help: str = JSON_HELP) -> None:
    p.add_argument("--json", action="store_true", help=help)


def number(args: argparse.Namespace, attr: str, kind: type, ok: Any, want: str) -> Any:
    """Parse one flag; a ConfigError naming the flag (-> one line, exit 2) when it is wrong."""
    text = getattr(args, attr)
    flag = "--" + attr.replace("_", "-")
    try:
        value = kind(text)
        valid = math.isfinite(value) and ok(value)
    except (TypeError, ValueError, OverflowError):  # 'inf', 'x', 400 digits
        valid = False
    if not valid:
        raise ConfigError(f"{flag} {text!r} is not valid: it must be {want}.")
    return value


def whole(args: argparse.Namespace, attr: str, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole-number flag of at least ``minimum`` (and at most ``maximum``)."""
    if maximum is None:
        return number(args, attr, int, lambda v: v >= minimum, f"a whole number >= {minimum}")
    want = f"a whole number from {minimum} to {maximum}"
    return number(args, attr, int, lambda v: minimum <= v <= maximum, want)


def bounded(args: argparse.Namespace, attr: str, setting: str = "") -> Any:
    """A flag for a ``TrainConfig`` number, checked against its range in ``BOUNDS``
    (``setting``: the config field when its name is not the flag's)."""
    bound = BOUNDS[setting or attr]
    return number(args, attr, bound.kind, bound.ok, bound.want)


def epochs(args: argparse.Namespace) -> int:
    return bounded(args, "epochs")


def batch_size(args: argparse.Namespace) -> int:
    return bounded(args, "batch_size")


def seed(args: argparse.Namespace) -> int:
    """--seed within what numpy and torch generators take (a larger one overflowed in the worker)."""
    return bounded(args, "seed")


def img_size(args: argparse.Namespace) -> int | None:
    """--img-size, or None for the model's own size."""
    if args.img_size is None or not str(args.img_size).strip():
        return None
    return bounded(args, "img_size")


def weights(args: argparse.Namespace) -> str:
    """--weights, or the default for --model: bundled when installed, else hub."""
    from tlcore.models.catalog import default_weights

    return args.weights or default_weights(args.model)
