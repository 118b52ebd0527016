"""The settings of one training run, checked before any work starts.

A ``TrainConfig`` is what a page or the CLI builds from the user's choices and
what ``config.json`` stores, so a run can be reproduced or resumed from its
directory alone. ``validate`` rejects nonsense with a message naming the field,
before a worker is spawned.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from tlcore.errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "onecycle")
AUGMENTS = ("none", "light", "strong")  # mirrors tlcore.data.dataset.AUGMENT_PRESETS
DEVICES = ("auto", "cpu", "cuda", "mps")
DECODED_CACHE_MODES = ("auto", "memory", "disk", "off")  # mirrors tlcore.data.decoded_cache.MODES
MIN_IMG_SIZE = 32
DOMAIN_ADAPTATIONS = ("none", "dann")  # tlcore.training.domain_adaptation


@dataclass
class TrainConfig:
    """Everything a worker needs to train; defaults suit 50 images per class on a laptop."""

    data: str = ""
    model: str = "tf_efficientnet_lite0"
    weights: str = "bundled"
    # a FreezePlan's dict; "full", "last-3", "progressive-2" ... or a FreezePlan are accepted too
    freeze: dict[str, Any] = field(default_factory=lambda: {"preset": "features"})
    manifest_path: str | None = None
    val_fraction: float = 0.2
    seed: int = 0
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 16
    img_size: int | None = 224
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.01
    momentum: float = 0.9
    label_smoothing: float = 0.0
    class_balanced: bool = False
    early_stopping: int = 0
    augment: str = "light"
    drop_rate: float = 0.0
    device: str = "auto"
    num_workers: int | None = None  # None: fit the machine (tlcore.data.loading.auto_num_workers)
    decoded_cache: str = "auto"  # decode each image once: RAM, then disk past a budget
    compile: bool = False  # torch.compile the model (pays off on GPUs for long runs)
    name: str = ""
    experiment: str = ""  # the compare experiment this run belongs to (tlcore.lab.compare)
    nproc: int = 1  # processes (GPUs) under torchrun; batch_size is per process
    owner: str = ""  # who started the run on a shared server (a browser session id)
    target_data: str | None = None  # unlabelled photos of the domain to predict on (folder/.zip)
    domain_adaptation: str = "none"  # "dann": adversarial training on target_data
    dann_weight: float = 1.0  # weight of the domain loss against the class loss

    def __post_init__(self) -> None:
        if isinstance(self.freeze, dict):
            return
        from tlcore.models.freezing import FreezePlan

        if isinstance(self.freeze, str):  # the CLI's spelling; a bad one is a ConfigError now
            self.freeze = FreezePlan.parse(self.freeze).to_dict()
        elif isinstance(self.freeze, FreezePlan):
            self.freeze = self.freeze.to_dict()

    def validate(self) -> TrainConfig:
        """Raise ConfigError for the first bad field; return self so calls chain."""

        def bad(name: str, value: Any, want: str) -> ConfigError:
            return ConfigError(f"{name} = {value!r} is not valid: it must be {want}.")

        if not str(self.data).strip():
            raise ConfigError("data is empty: choose a dataset folder or .zip file.")
        if not str(self.model).strip():
            raise ConfigError("model is empty: choose a model from the catalog.")
        checks: list[tuple[str, bool, str]] = [
            ("epochs", _is_int(self.epochs) and self.epochs >= 1, "a whole number >= 1"),
            ("lr", _is_num(self.lr) and 0 < self.lr <= 10, "a number > 0 (e.g. 0.001)"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            (
                "img_size",
                self.img_size is None or (_is_int(self.img_size) and self.img_size >= MIN_IMG_SIZE),
                f"empty (the model's default) or a whole number >= {MIN_IMG_SIZE}",
            ),
            (
                "val_fraction",
                _is_num(self.val_fraction) and 0 < self.val_fraction < 1,
                "between 0 and 1 (e.g. 0.2)",
            ),
            ("seed", _is_int(self.seed), "a whole number"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("augment", self.augment in AUGMENTS, f"one of {', '.join(AUGMENTS)}"),
            ("device", self.device in DEVICES, f"one of {', '.join(DEVICES)}"),
            (
                "warmup_epochs",
                _is_num(self.warmup_epochs) and 0 <= self.warmup_epochs < self.epochs,
                "a number >= 0 and smaller than epochs",
            ),
            (
                "weight_decay",
                _is_num(self.weight_decay) and self.weight_decay >= 0,
                "a number >= 0",
            ),
            ("momentum", _is_num(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)"),
            (
                "label_smoothing",
                _is_num(self.label_smoothing) and 0 <= self.label_smoothing < 1,
                "in [0, 1) (e.g. 0.1)",
            ),
            ("drop_rate", _is_num(self.drop_rate) and 0 <= self.drop_rate < 1, "in [0, 1)"),
            ("early_stopping", _is_int(self.early_stopping) and self.early_stopping >= 0, ">= 0"),
            (
                "num_workers",
                self.num_workers is None or (_is_int(self.num_workers) and self.num_workers >= 0),
                "empty (fit the machine) or a whole number >= 0",
            ),
            (
                "decoded_cache",
                self.decoded_cache in DECODED_CACHE_MODES,
                f"one of {', '.join(DECODED_CACHE_MODES)}",
            ),
            ("compile", isinstance(self.compile, bool), "true or false"),
            ("nproc", _is_int(self.nproc) and 1 <= self.nproc <= 64, "a whole number from 1 to 64"),
            (
                "owner",
                isinstance(self.owner, str) and re.fullmatch(r"[A-Za-z0-9_-]{0,64}", self.owner),
                "up to 64 letters, digits, '-' or '_'",
            ),
            ("freeze", isinstance(self.freeze, dict) and "preset" in self.freeze, "a FreezePlan"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise bad(name, getattr(self, name), want)
        self._validate_domain_adaptation()
        return self

    def _validate_domain_adaptation(self) -> None:
        """target_data / domain_adaptation / dann_weight (see tlcore.training.domain_adaptation)."""
        from pathlib import Path

        if self.domain_adaptation not in DOMAIN_ADAPTATIONS:
            raise ConfigError(
                f"domain_adaptation = {self.domain_adaptation!r} is not valid: it must be one of "
                f"{', '.join(DOMAIN_ADAPTATIONS)}."
            )
        if not (_is_num(self.dann_weight) and 0 <= self.dann_weight <= 100):
            raise ConfigError(f"dann_weight = {self.dann_weight!r} is not valid: use 0 to 100.")
        if self.target_data:
            target = Path(str(self.target_data)).expanduser()
            if not (target.is_dir() or (target.is_file() and target.suffix.lower() == ".zip")):
                raise ConfigError(
                    f"target_data {self.target_data} is not a folder or .zip of photos: give the "
                    "photos from the place you will predict on."
                )
        if self.domain_adaptation == "dann":
            if not self.target_data:
                raise ConfigError(
                    "domain_adaptation 'dann' needs target_data: a folder of photos from the "
                    "place you will predict on (labels not needed)."
                )
            if self.freeze.get("preset") == "features":
                raise ConfigError(
                    "domain_adaptation 'dann' must change the backbone's features, but freeze "
                    "preset 'features' trains only the classifier: choose last-2 or more."
                )
            if getattr(self, "nproc", 1) > 1:
                raise ConfigError("domain_adaptation 'dann' runs in one process: set nproc to 1.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Unknown keys (written by a newer version) are ignored, missing ones defaulted."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return _is_int(value) or (
        isinstance(value, float) and value == value and abs(value) != float("inf")
    )
