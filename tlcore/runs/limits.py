"""What an admin allows on a shared server, checked before a run exists.

A class shares one machine: the admin caps epochs, image size, dataset size and
how many runs one person may have waiting, through environment variables (see
``settings.LIMIT_VARIABLES`` and docs/deployment.md). Every refusal says what
was asked, what the limit is, who set it and what to do instead, so a student
can fix the settings without asking anyone. Unset variables mean no limit.
"""

from __future__ import annotations

import hmac
from typing import Any

from tlcore import settings
from tlcore.errors import ConfigError, DataError, RunError
from tlcore.training.config import TrainConfig


def limits() -> dict[str, int | None]:
    """The caps in force now: name -> value (None = no limit)."""
    return {name: settings.env_int(var) for name, var in settings.LIMIT_VARIABLES.items()}


def _over(what: str, asked: Any, name: str, advice: str) -> str:
    cap, var = limits()[name], settings.LIMIT_VARIABLES[name]
    return (
        f"{what} {asked} is above this server's limit of {cap} (set by the admin with {var}): "
        f"{advice}"
    )


def check_config(config: TrainConfig) -> None:
    """Epochs and image size within the caps (ConfigError naming the cap otherwise)."""
    caps = limits()
    if caps["epochs"] and config.epochs > caps["epochs"]:
        raise ConfigError(
            _over("epochs =", config.epochs, "epochs", f"choose {caps['epochs']} or fewer.")
        )
    if caps["img_size"]:
        size = config.img_size or _default_size(config.model)
        if size and size > caps["img_size"]:
            shown = f"{size} px" + ("" if config.img_size else " (the model's default)")
            raise ConfigError(
                _over("image size", shown, "img_size", f"choose {caps['img_size']} px or smaller.")
            )


def check_dataset(n_images: int) -> None:
    """The dataset of a run within ``TLCORE_MAX_DATASET_IMAGES``."""
    cap = limits()["dataset_images"]
    if cap and n_images > cap:
        raise DataError(
            _over(
                "the dataset has", f"{n_images} images, which", "dataset_images",
                f"use a subset of at most {cap} images (fewer per class, or fewer classes).",
            )
        )  # fmt: skip


def check_queue(owner: str, active_runs_of_owner: int) -> None:
    """One person's waiting or running runs within ``TLCORE_MAX_QUEUED_PER_USER``."""
    cap = limits()["queued_per_user"]
    if cap and active_runs_of_owner >= cap:
        who = "you already have" if owner else "there are already"
        raise RunError(
            f"{who} {active_runs_of_owner} run(s) waiting or training, the most this server "
            f"allows per user (set by the admin with {settings.LIMIT_VARIABLES['queued_per_user']}"
            f" = {cap}): wait for one to finish, or stop one, then start this run again."
        )


def check_nproc(config: TrainConfig) -> None:
    """A multi-process run needs that many GPUs when it trains on CUDA."""
    if config.nproc <= 1:
        return
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    on_cuda = config.device == "cuda" or (config.device == "auto" and gpus > 0)
    if on_cuda and config.nproc > gpus:
        raise ConfigError(
            f"nproc = {config.nproc} needs {config.nproc} GPUs but this machine has {gpus}: "
            f"choose {max(gpus, 1)} or fewer processes."
        )


def check_memory(config: TrainConfig) -> None:
    """Refuse a batch that cannot fit in the device's memory (``tlcore.training.memory_estimate``)."""
    from tlcore.training.memory_estimate import (
        DEFAULT_SIDE,
        batch_bytes,
        gigabytes,
        machine_memory_bytes,
    )

    total = machine_memory_bytes(config.device)
    if not total:
        return
    size = config.img_size or _default_size(config.model) or DEFAULT_SIDE
    trains_backbone = config.freeze.get("preset") != "features"
    needed = batch_bytes(size, config.batch_size, trains_backbone)
    if needed > total:
        raise ConfigError(
            f"batch_size {config.batch_size} at {size} px needs at least an estimated "
            f"{gigabytes(needed)} of memory for one training batch, more than the "
            f"{gigabytes(total)} this machine has: choose a smaller batch size or image size."
        )


def check_weights_file(config: TrainConfig) -> None:
    """A ``weights`` path must be a readable weights file before a run is created for it."""
    from tlcore.models.catalog import WEIGHT_SOURCES

    if config.weights in WEIGHT_SOURCES:
        return
    from tlcore.models.weights import read_checkpoint  # torch: only for a user's file

    read_checkpoint(config.weights)  # WeightsError naming the file and what is wrong


def is_admin(token: str | None) -> bool:
    """``token`` matches ``TLCORE_ADMIN_TOKEN`` (never true when no token is set)."""
    expected = settings.admin_token()
    return bool(expected and token) and hmac.compare_digest(str(token), expected)


def _default_size(model: str) -> int | None:
    from tlcore.models.catalog import catalog_entry

    entry = catalog_entry(model)
    return entry.input_size if entry else None
