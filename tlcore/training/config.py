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
# Upper bounds, checked before a run exists: past them a setting is a typo or an attack
# (a billion epochs hung the worker, a huge seed overflowed inside it), not a choice.
MAX_EPOCHS = 1000
MAX_IMG_SIZE = 2048  # px; the largest timm models take 800
MAX_BATCH_SIZE = 4096
MAX_SEED = 2**32 - 1  # what numpy and torch generators take
MAX_NUM_WORKERS = 64
DOMAIN_ADAPTATIONS = ("none", "dann")  # tlcore.training.domain_adaptation
# how the fast path trains the head: "lbfgs" to convergence (tlcore.training.head_solver),
# "optimizer" with the epoch loop and the optimizer/learning rate above
HEAD_SOLVERS = ("lbfgs", "optimizer")
MAX_AUGMENT_VIEWS = 32
MAX_NPROC = 64


@dataclass(frozen=True)
class Bound:
    """The range of one number setting and the words that say it: ``TrainConfig.validate``
    and the CLI's flags (``tlcore.cli.flags.bounded``) both read ``BOUNDS``, so a limit
    and its message are written once."""

    kind: type  # int (a whole number) or float
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the value must be > low, not >= low
    high_open: bool = False  # the value must be < high, not <= high
    words: str = ""  # how ``want`` says the range when the default words do not fit

    @property
    def want(self) -> str:
        """What a valid value is, for "it must be ...": "a whole number from 1 to 1000"."""
        if self.words:
            return self.words
        if self.kind is int and self.low is not None and self.high is not None:
            return f"a whole number from {self.low} to {self.high}"
        return f"a whole number >= {self.low}" if self.kind is int else f"a number >= {self.low}"

    def ok(self, value: Any) -> bool:
        """Of the right kind and inside the range (a bool is not a number here)."""
        if not (_is_int(value) if self.kind is int else _is_num(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


BOUNDS: dict[str, Bound] = {
    "epochs": Bound(int, 1, MAX_EPOCHS),
    "lr": Bound(float, 0, 10, low_open=True, words="a number > 0 (e.g. 0.001)"),
    "batch_size": Bound(int, 1, MAX_BATCH_SIZE),
    "img_size": Bound(int, MIN_IMG_SIZE, MAX_IMG_SIZE),  # or None: the model's own size
    "val_fraction": Bound(float, 0, 1, True, True, "between 0 and 1 (e.g. 0.2)"),
    "seed": Bound(int, 0, MAX_SEED),
    "warmup_epochs": Bound(float, 0),  # and fewer than epochs (validate)
    "weight_decay": Bound(float, 0),
    "momentum": Bound(float, 0, 1, high_open=True, words="in [0, 1)"),
    "label_smoothing": Bound(float, 0, 1, high_open=True, words="in [0, 1) (e.g. 0.1)"),
    "augment_views": Bound(int, 0, MAX_AUGMENT_VIEWS),
    "drop_rate": Bound(float, 0, 1, high_open=True, words="in [0, 1)"),
    "early_stopping": Bound(int, 0, MAX_EPOCHS),
    "num_workers": Bound(int, 0, MAX_NUM_WORKERS),  # or None: fit the machine
    "nproc": Bound(int, 1, MAX_NPROC),
    "max_tokens": Bound(int, 8, 512),
    "dann_weight": Bound(float, 0, 100, words="from 0 to 100"),
}


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
    # "none" keeps feature extraction on its fast path (see suggested_settings for the rest)
    augment: str = "none"
    # augmented views of each training photo embedded once for the fast path (0: none)
    augment_views: int = 0
    head_solver: str = "lbfgs"
    drop_rate: float = 0.0
    max_tokens: int = 128  # text only: word pieces read per text (tlcore.data.text_dataset)
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
        from tlcore.models.freeze_plan import FreezePlan

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

        def within(name: str, empty: str = "") -> tuple[str, bool, str]:
            """A ``BOUNDS`` check; ``empty`` says what None means where None is allowed."""
            value, bound = getattr(self, name), BOUNDS[name]
            if empty:
                return name, value is None or bound.ok(value), f"{empty} or {bound.want}"
            return name, bound.ok(value), bound.want

        checks: list[tuple[str, bool, str]] = [
            within("epochs"),
            within("lr"),
            within("batch_size"),
            within("img_size", empty="empty (the model's default)"),
            within("val_fraction"),
            within("seed"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("augment", self.augment in AUGMENTS, f"one of {', '.join(AUGMENTS)}"),
            ("device", self.device in DEVICES, f"one of {', '.join(DEVICES)}"),
            (
                "warmup_epochs",
                BOUNDS["warmup_epochs"].ok(self.warmup_epochs) and self.warmup_epochs < self.epochs,
                f"{BOUNDS['warmup_epochs'].want} and smaller than epochs",
            ),
            within("weight_decay"),
            within("momentum"),
            within("label_smoothing"),
            within("augment_views"),
            ("head_solver", self.head_solver in HEAD_SOLVERS, f"one of {', '.join(HEAD_SOLVERS)}"),
            within("drop_rate"),
            within("early_stopping"),
            within("num_workers", empty="empty (fit the machine)"),
            (
                "decoded_cache",
                self.decoded_cache in DECODED_CACHE_MODES,
                f"one of {', '.join(DECODED_CACHE_MODES)}",
            ),
            ("compile", isinstance(self.compile, bool), "true or false"),
            within("nproc"),
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
        if self.augment_views and self.augment == "none":
            raise ConfigError(
                f"augment_views = {self.augment_views} needs augmentation to make the views "
                "differ: set augment to light or strong, or augment_views to 0."
            )
        self._validate_domain_adaptation()
        self._validate_text()
        return self

    def _validate_text(self) -> None:
        """A text model (tlcore.models.text_models) reads token ids: no pixels to augment."""
        if not BOUNDS["max_tokens"].ok(self.max_tokens):
            raise ConfigError(
                f"max_tokens = {self.max_tokens!r} is not valid: it must be "
                f"{BOUNDS['max_tokens'].want}."
            )
        from tlcore.models.text_catalog import is_text_model

        if not is_text_model(self.model):
            return
        if self.augment != "none" or self.augment_views:
            raise ConfigError(
                f"augment = {self.augment!r} is for photos; a text model has no augmentation: "
                "set augment to none (and augment_views to 0)."
            )
        if self.domain_adaptation != "none":
            raise ConfigError("domain_adaptation is for photos; set it to none for a text model.")

    def _validate_domain_adaptation(self) -> None:
        """target_data / domain_adaptation / dann_weight (see tlcore.training.domain_adaptation)."""
        from pathlib import Path

        if self.domain_adaptation not in DOMAIN_ADAPTATIONS:
            raise ConfigError(
                f"domain_adaptation = {self.domain_adaptation!r} is not valid: it must be one of "
                f"{', '.join(DOMAIN_ADAPTATIONS)}."
            )
        if not BOUNDS["dann_weight"].ok(self.dann_weight):
            raise ConfigError(
                f"dann_weight = {self.dann_weight!r} is not valid: it must be "
                f"{BOUNDS['dann_weight'].want}."
            )
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


def suggested_settings(freeze: Any = "features") -> dict[str, Any]:
    """Training settings that suit a freeze plan (a preset name, FreezePlan dict or FreezePlan).

    Pages and the CLI start from these; the Train page offers them when the plan changes.

    Feature extraction: no augmentation, so the backbone runs once per photo, and the
    head trained to convergence by L-BFGS with its L2 chosen by 5-fold cross-validation
    on the training photos (``head_solver="lbfgs"``; ``lr`` is then unused). Measured in
    ``benchmarks/bench_head_defaults.py``: as accurate as scikit-learn's tuned logistic
    regression on the same embeddings, in about one embedding pass. Cached augmented
    views (``augment_views``) cost one more pass over the training photos each, for at
    most a photo or two on the samples, so they are not the default.

    Fine-tuning changes the backbone, so each epoch must see new pixels: light
    augmentation and 10 epochs; 1e-3 when only the top groups train (their new head
    needs it), 1e-4 when every layer trains (the usual fine-tuning rate, which keeps the
    pretrained features). These two are common practice, not measured here.
    """
    preset = freeze
    if not isinstance(freeze, str):
        preset = (freeze if isinstance(freeze, dict) else freeze.to_dict()).get("preset", "")
    if preset == "features":
        return {"epochs": 5, "lr": 1e-3, "augment": "none", "augment_views": 0,
                "head_solver": "lbfgs", "label_smoothing": 0.0, "early_stopping": 0,
                "backbone_lr_scale": 1.0, "reason": SUGGESTION_REASONS["features"]}  # fmt: skip
    return {"epochs": 10, "lr": 1e-4 if preset == "full" else 1e-3, "augment": "light",
            "augment_views": 0, "head_solver": "lbfgs", "label_smoothing": 0.0,
            "early_stopping": 0,
            # the Train page applies it as the freeze plan's per-group LR multipliers
            "backbone_lr_scale": 1.0 if preset == "full" else 0.1,
            "reason": SUGGESTION_REASONS["full" if preset == "full" else "fine-tune"]}  # fmt: skip


SUGGESTION_REASONS = {  # why, in words a newcomer reads on the Train page
    "features": "Only the new head learns, so without augmentation each photo goes through "
    "the network just once and the head is then fitted in seconds.",
    "fine-tune": "Layers that learn change what the network sees, so every epoch should see "
    "slightly different photos (light augmentation) and it needs more epochs. The pretrained "
    "layers get 10× smaller steps than the new head: they adjust what they learned on "
    "ImageNet instead of overwriting it.",
    "full": "Every layer learns: one small learning rate (0.0001) for all of them keeps the "
    "pretrained features while they adapt, with light augmentation and more epochs.",
}
