"""A freeze plan as a value: which layer groups train at each epoch and at what learning
rate. Apart from ``tlcore.models.freezing`` (which applies it to a model and needs torch),
so a config and the command line read and check a plan without importing torch."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from tlcore.errors import ConfigError

PRESETS = ("features", "last-k", "full", "progressive", "custom")


@dataclass
class FreezePlan:
    """How a run freezes its backbone; ``k`` for last-k, ``every`` for progressive."""

    preset: str = "features"
    k: int = 1
    every: int = 1
    lr_decay: float = 1.0
    freeze_bn: bool = True
    trainable: list[bool] | None = None
    lr_mult: list[float] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(
                f"freeze.preset must be one of {', '.join(PRESETS)} (got {self.preset!r})."
            )
        if int(self.k) < 1:
            raise ConfigError(f"freeze.k must be >= 1 (got {self.k}).")
        if int(self.every) < 1:
            raise ConfigError(f"freeze.every must be >= 1 epoch (got {self.every}).")
        if not 0.0 < float(self.lr_decay) <= 1.0:
            raise ConfigError(f"freeze.lr_decay must be in (0, 1] (got {self.lr_decay}).")
        if self.preset == "custom" and self.trainable is None:
            raise ConfigError("freeze.trainable is required for the 'custom' preset.")
        if self.lr_mult is not None and any(float(m) < 0 for m in self.lr_mult):
            raise ConfigError("freeze.lr_mult values must be >= 0.")

    @classmethod
    def parse(cls, text: str) -> FreezePlan:
        """'features' | 'full' | 'last-3' | 'progressive' | 'progressive-2' (every 2 epochs)."""
        t = (text or "").strip().lower()
        if t in ("features", "feature-extraction", "head"):
            return cls("features")
        if t == "full":
            return cls("full")
        if m := re.fullmatch(r"last-(\d+)", t):
            return cls("last-k", k=int(m.group(1)))
        if m := re.fullmatch(r"progressive(?:-(\d+))?", t):
            return cls("progressive", every=int(m.group(1) or 1))
        raise ConfigError(
            f"Unknown freeze preset {text!r}: use features, full, last-K (e.g. last-3), "
            "progressive or progressive-E (one more group every E epochs)."
        )

    def label(self) -> str:
        """The short text form ``parse`` reads back."""
        if self.preset == "last-k":
            return f"last-{self.k}"
        if self.preset == "progressive":
            return "progressive" if self.every == 1 else f"progressive-{self.every}"
        return self.preset

    def trainable_groups(self, n_groups: int, epoch: int) -> list[bool]:
        """Which groups train at ``epoch`` (0-based); the last group is the head."""
        if self.preset == "full":
            return [True] * n_groups
        if self.preset == "custom":
            if len(self.trainable or []) != n_groups:
                raise ConfigError(
                    f"freeze.trainable has {len(self.trainable or [])} entries but the model "
                    f"has {n_groups} layer groups."
                )
            return [bool(t) for t in self.trainable or []]
        if self.preset == "features":
            top = 1
        elif self.preset == "last-k":
            top = int(self.k)
        else:  # progressive: head first, then one more group every `every` epochs
            top = 1 + max(0, int(epoch)) // int(self.every)
        top = min(top, n_groups)
        return [i >= n_groups - top for i in range(n_groups)]

    def lr_multipliers(self, n_groups: int) -> list[float]:
        """Explicit ``lr_mult``, else ``lr_decay ** depth_from_top`` (head = 1.0)."""
        if self.lr_mult is not None:
            if len(self.lr_mult) != n_groups:
                raise ConfigError(
                    f"freeze.lr_mult has {len(self.lr_mult)} entries but the model has "
                    f"{n_groups} layer groups."
                )
            return [float(m) for m in self.lr_mult]
        return [float(self.lr_decay) ** (n_groups - 1 - i) for i in range(n_groups)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FreezePlan:
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise ConfigError(f"Unknown freeze setting(s): {', '.join(extra)}.")
        return cls(**data)
