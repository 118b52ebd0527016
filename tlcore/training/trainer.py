"""The training loop: read ``Trainer.fit`` top to bottom like nanoGPT's ``train.py``.

Everything optional hangs off four callback events (``on_fit_start``,
``on_epoch_start``, ``on_step_end``, ``on_epoch_end``): progressive unfreezing,
early stopping and the run directory writer (in ``tlcore.runs.worker``) are
callbacks, not flags threaded through the loop. The loop itself knows nothing
about files, processes or pages.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tlcore.data.loading import EpochLoaders
from tlcore.data.task import task_of
from tlcore.errors import TrainingDiverged
from tlcore.training import distributed, embedding_cache, features, frozen_layers, head_solver
from tlcore.training.config import TrainConfig
from tlcore.training.devices import (
    autocast,
    grad_scaler,
    missing_compiler,
    resolve_device,
    to_device,
    uses_channels_last,
)
from tlcore.training.metrics import accuracy, confusion_matrix

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest


log = logging.getLogger("tlcore.training.trainer")


class Callback:
    """Override the events you need; each gets the trainer and can read or steer it."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_step_end(self, trainer: Trainer, event: dict[str, Any]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, event: dict[str, Any]) -> None: ...
    def on_embed_progress(self, trainer: Trainer, done: int, total: int) -> None: ...


class FreezeSchedule(Callback):
    """Re-apply the freeze plan each epoch (progressive unfreezing), after ``model.train()``."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        from tlcore.models.freezing import apply_freeze, set_frozen_bn_eval

        trainer.trainable_params = apply_freeze(
            trainer.model, trainer.groups, trainer.plan, epoch - 1
        )
        set_frozen_bn_eval(trainer.model, trainer.groups, trainer.plan, epoch - 1)


class EarlyStopping(Callback):
    """Stop when validation accuracy has not improved for ``patience`` epochs."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, event: dict[str, Any]) -> None:
        if self.patience and trainer.epoch - trainer.best["epoch"] >= self.patience:
            trainer.request_stop(
                f"Early stopping: no better validation accuracy for {self.patience} epochs "
                f"(best {trainer.best['val_acc']:.3f} at epoch {trainer.best['epoch']}).",
                state="finished",
            )


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base LR at ``step``: linear warm-up, then cosine decay (per step)."""
    if schedule == "onecycle":  # fastai/Smith one-cycle: lr/25 up to lr, then anneal to ~0
        warmup_steps = warmup_steps or max(1, round(0.25 * total_steps))
        if step < warmup_steps:
            return 0.04 + 0.96 * step / warmup_steps
    elif step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of an epoch; a pure function so resume and fast path agree."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fine-tunes a timm model on a manifest; state is plain attributes so checkpoints are easy."""

    def __init__(
        self,
        config: TrainConfig,
        manifest: Manifest,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        model: nn.Module | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        from tlcore.data.task import task_of
        from tlcore.models.factory import create_model
        from tlcore.models.freezing import FreezePlan, layer_groups, optimizer_param_groups
        from tlcore.training.tasks import training_task

        cfg = self.config = config.validate()
        self.classes = list(manifest.classes)
        self.device = distributed.local_device(resolve_device(cfg.device))  # cuda:LOCAL_RANK
        seed_everything(cfg.seed)
        # embeddings are cached on disk only for models built here from the config (a model
        # passed in may have been changed in ways the cache key cannot see)
        self.cache_dir = cache_dir if model is None else None
        if model is None:
            model = create_model(cfg.model, len(self.classes), cfg.weights, drop_rate=cfg.drop_rate)
        self.model = model.to(self.device)
        if uses_channels_last(self.device):
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.compile and (why := missing_compiler(self.device)):
            log.warning("torch.compile off: %s, so the model trains as it is (eager), at the "
                        "usual speed; install one to compile.", why)  # fmt: skip
        elif cfg.compile:  # in place: parameter names, checkpoints and freezing stay the same
            from torch import _dynamo

            # a compiler that fails (an unsupported layer, a broken toolchain) costs speed, not
            # the run: torch falls back to eager and logs a warning to the run's log
            _dynamo.config.suppress_errors = True
            self.model.compile()
            log.info("torch.compile on: the first steps of each mode include compiling")
        self.loaders = EpochLoaders(cfg.batch_size, self.device, cfg.num_workers,
                                    cfg.decoded_cache, cache_dir and cache_dir.parent / "decoded")  # fmt: skip
        self.groups = layer_groups(self.model)
        self.plan = FreezePlan.from_dict(cfg.freeze)
        self.callbacks = [FreezeSchedule(), EarlyStopping(cfg.early_stopping), *callbacks,
                          *distributed.callbacks()]  # fmt: skip
        self.ddp: nn.Module | None = None  # DistributedDataParallel, set under torchrun

        self.task = task_of(manifest)  # one entry of tlcore.training.tasks per kind of task
        job = training_task(self.task)
        self.unit = job.unit  # what a step reads
        data = job.data(manifest, self.model, cfg)
        self.data_config, self.train_set, self.val_set = (
            data.data_config,
            data.train_set,
            data.val_set,
        )
        self.plain_train_set = data.plain_train_set  # the fast path embeds each item as it is
        self.manifest_fingerprint = manifest.fingerprint()
        self.files_stamp = manifest.files_stamp()
        self.train_labels = torch.tensor([it.label for it in manifest.items_for("train")])

        trainable = self._trainable_per_epoch()
        self.fast_path_reason = self._fast_path_reason(trainable)
        self.fast_path = not self.fast_path_reason
        # fine-tuning the top of a text encoder: its frozen bottom runs once per sentence
        self.frozen_depth = 0 if self.fast_path else self._frozen_depth(trainable)
        self.frozen: dict[str, frozen_layers.FrozenStates] = {}
        self._loader_drawn: set[int] = set()  # persistent loaders that took their one number
        self.embeddings: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.train_views: torch.Tensor | None = None  # (1 + augment_views, N, D), fast path
        self.embedding_cache_hits = 0
        self.embedding_pass: dict[str, Any] = {}  # photos, seconds, passes, from_cache
        self.head_fit: head_solver.HeadFit | None = None  # set by the L-BFGS head solver

        self.optimizer = self._build_optimizer(optimizer_param_groups)
        self.scaler = grad_scaler(self.device)
        self.criterion = job.loss(cfg, self._class_weights() if cfg.class_balanced else None).to(
            self.device
        )
        self.steps_per_epoch = math.ceil(
            distributed.shard_size(len(self.train_set)) / cfg.batch_size
        )
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup_steps = round(cfg.warmup_epochs * self.steps_per_epoch)

        # progress: everything a checkpoint must hold to continue exactly
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps taken
        self.batch_in_epoch = 0  # batches done in the current, unfinished epoch
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        self.best = {"val_acc": -1.0, "val_loss": math.inf, "epoch": 0}
        self.epoch_seconds: list[float] = []
        self.trainable_params = 0
        self.stop_message = ""
        self.stop_state = ""

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> str:
        """Train until the last epoch or a stop request; returns "finished" or "stopped"."""
        cfg = self.config
        self.emit("on_fit_start")
        if self.fast_path and not self.embeddings:
            self.embed_datasets()
        if self.frozen_depth and not self.frozen:
            self.run_frozen_layers()
        if self.fast_path and cfg.head_solver == "lbfgs":  # the head to convergence, in seconds
            return head_solver.fit_epochs(self)
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            self.model.train()
            self.emit("on_epoch_start", epoch)
            started = time.perf_counter() - self.partial["seconds"]
            for inputs, targets in self.train_batches(epoch):
                lr = cfg.lr * lr_factor(
                    self.step, self.total_steps, self.warmup_steps, cfg.schedule
                )
                self.set_lr(lr)
                loss, correct = self.train_step(inputs, targets)
                self.step += 1
                self.batch_in_epoch += 1
                self.partial["loss_sum"] += loss * len(targets)
                self.partial["correct"] += correct
                self.partial["seen"] += len(targets)
                self.partial["seconds"] = time.perf_counter() - started
                self.emit("on_step_end", {"type": "step", "epoch": epoch, "step": self.step,
                                          "loss": distributed.mean_over_ranks(loss), "lr": lr,
                                          "time": time.time()})  # fmt: skip
                if self.stop_state:
                    return self.stop_state
            train_seconds = time.perf_counter() - started
            val_loss, val_acc, matrix = self.evaluate()
            seconds = time.perf_counter() - started
            event = self.finish_epoch(epoch, train_seconds, seconds, val_loss, val_acc, matrix)
            self.emit("on_epoch_end", event)
            if self.stop_state:
                return self.stop_state
        return "finished"

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
        """One optimizer step with the learning rates already set; (loss, correct)."""
        with autocast(self.device):
            logits = self.ddp(inputs) if self.ddp is not None else self.forward(inputs)
            loss = self.criterion(logits.float(), targets)
        self.optimize(loss, "lower the learning rate (try 10x smaller) or turn on warm-up")
        return float(loss.item()), int((logits.argmax(1) == targets).sum().item())

    def optimize(self, loss: torch.Tensor, advice: str) -> None:
        """Backward and optimizer step (loss-scaled for fp16); a clear error, not NaN weights,
        when the loss is no longer finite. ``advice`` says what to change then."""
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"The loss became {loss.item()} at step {self.step + 1} (epoch {self.epoch + 1}): "
                f"{advice}."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def finish_epoch(self, epoch: int, train_seconds: float, seconds: float, val_loss: float,
                     val_acc: float, matrix: list[list[int]]) -> dict[str, Any]:  # fmt: skip
        """Close the epoch's books: the event the UI plots, the best model, the ETA."""
        self.partial = distributed.reduce_partial(self.partial)  # totals over all ranks
        seen = max(1, self.partial["seen"])
        is_best = val_acc > self.best["val_acc"] or (
            val_acc == self.best["val_acc"] and val_loss < self.best["val_loss"]
        )
        if is_best:
            self.best = {"val_acc": val_acc, "val_loss": val_loss, "epoch": epoch}
        self.epoch_seconds.append(seconds)
        event = {
            "type": "epoch", "epoch": epoch, "epochs": self.config.epochs, "step": self.step,
            "train_loss": self.partial["loss_sum"] / seen, "train_acc": self.partial["correct"] / seen,
            "val_loss": val_loss, "val_acc": val_acc, "lr": self.group_lrs(),
            "images_per_s": self.partial["seen"] / max(train_seconds, 1e-9), "unit": self.unit,
            "seconds": seconds,
            "eta_s": (sum(self.epoch_seconds) / len(self.epoch_seconds)) * (self.config.epochs - epoch),
            "trainable_params": self.trainable_params, "fast_path": self.fast_path,
            "frozen_layers_cached": self.frozen_depth if self.frozen else 0,
            "confusion": {"classes": self.classes, "matrix": matrix}, "is_best": is_best,
            "time": time.time(),
        }  # fmt: skip
        self.epoch, self.batch_in_epoch = epoch, 0
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        return event

    # -- data ----------------------------------------------------------------------------
    def train_batches(self, epoch: int):
        """Batches of the epoch in its fixed order, skipping those done before a stop."""
        bs = self.config.batch_size
        order = distributed.shard(epoch_order(len(self.train_set), self.config.seed, epoch))[
            self.batch_in_epoch * bs :
        ]
        if self.fast_path:
            views, targets = self.train_views, self.embeddings["train"][1]
            # each epoch draws one of the cached views of every photo (view 0: the photo as is)
            pick = torch.randint(len(views), (views.shape[1],),
                                 generator=torch.Generator().manual_seed(self.config.seed + epoch))  # fmt: skip
            for i in range(0, len(order), bs):
                idx = order[i : i + bs]
                yield views[pick[idx].to(views.device), idx.to(views.device)], targets[idx]
            return
        if self.frozen:  # (hidden states after the frozen layers, mask) of the same sentences
            states = self.frozen["train"]
            self._draw_like_its_loader(self.train_set)
            for i in range(0, len(order), bs):
                idx = order[i : i + bs]
                yield states.batch(idx), states.labels[idx.to(states.labels.device)]
            return
        for images, targets in self.loader(self.train_set, sampler=order.tolist()):
            yield to_device(images, self.device), targets.to(self.device)

    def loader(self, dataset: Any, sampler: list[int] | None = None) -> torch.utils.data.DataLoader:
        """The dataset's one loader, in ``sampler`` order; images decoded once unless embedding."""
        return self.loaders.get(dataset, sampler, decoded=not self.fast_path)

    def embed_datasets(self) -> None:
        """Fast path: run the frozen backbone once over train and val, plus the augmented
        views of the training photos, or read them from the embedding cache (each photo's
        row is shared with the doctor and few-shot; the views are one file per pass)."""
        started = time.perf_counter()
        cfg = self.config
        views = [{"augment": cfg.augment, "view": view, "seed": cfg.seed}
                 for view in range(1, cfg.augment_views + 1)]  # fmt: skip
        total = len(self.plain_train_set) + len(self.val_set) + len(views) * len(self.train_set)
        done = 0

        def progress(images: int) -> None:  # "embedding k of N photos" in the run's status
            nonlocal done
            done += images
            self.emit("on_embed_progress", done, total)

        self.emit("on_embed_progress", 0, total)
        task = task_of(self.val_set.manifest)
        rows = embedding_cache.ItemEmbeddings(self.cache_dir, self.embedding_identity())
        for split, dataset in (("train", self.plain_train_set), ("val", self.val_set)):

            def embed_order(order: list[int], dataset: Any = dataset) -> torch.Tensor:
                loader = self.loaders.get(dataset, order, decoded=False)
                return features.embed(self.model, loader, self.device, progress)[0]

            stamps = embedding_cache.item_stamps(task, dataset.items)
            x, embedded = distributed.embed_items(rows, stamps, embed_order, self.device)
            if embedded < len(dataset):  # rows read from the cache: all at once
                progress(len(dataset) - embedded)
                self.embedding_cache_hits += 1
            labels = torch.tensor([item.label for item in dataset.items], device=self.device)
            self.embeddings[split] = (x, labels)
        train_views = [self.embeddings["train"][0]]
        for extra in views:  # augmented copies: random, so one cache file per seeded pass
            parts = self.embedding_identity() | {"manifest": self.manifest_fingerprint,
                                                 "files": self.files_stamp, "split": "train"}  # fmt: skip
            seed_everything(cfg.seed * 1_000 + extra["view"])  # the same views for the same seed
            x, _, hit = distributed.embed_cached(
                self.model, self.loader(self.train_set), self.device,
                embedding_cache.pass_file(self.cache_dir, parts | extra), progress,
            )  # fmt: skip
            if hit:  # read from the cache: the whole pass at once
                progress(len(self.train_set))
            train_views.append(x)
            self.embedding_cache_hits += hit
        self.train_views = torch.stack(train_views)
        passes = 2 + len(views)
        # what the epoch events of a solved head report instead of a meaningless images/s
        self.embedding_pass = {"photos": total, "seconds": round(time.perf_counter() - started, 3),
                               "passes": passes, "from_cache": self.embedding_cache_hits,
                               "unit": task.items}  # fmt: skip
        log.info("fast path: embedded %d images in %.2f s (%d of %d passes from the cache)",
                 total, self.embedding_pass["seconds"], self.embedding_cache_hits, passes)  # fmt: skip

    def embedding_identity(self) -> dict[str, Any]:
        """What changes every cached embedding besides the item itself: the backbone, its
        preprocessing, the device and the versions (shared with the doctor and few-shot)."""
        cfg = self.config
        return embedding_cache.backbone_identity(
            cfg.model, cfg.weights, self.data_config, self.device, cfg.seed
        )

    def run_frozen_layers(self) -> None:
        """Partial fast path: the frozen embeddings and first layers of a text encoder run
        once over train and val (or are read from the cache); epochs run only the rest."""
        started, rng = time.perf_counter(), torch.get_rng_state()
        total, done = len(self.train_set) + len(self.val_set), 0

        def progress(texts: int) -> None:
            nonlocal done
            done += texts
            self.emit("on_embed_progress", done, total)

        self.emit("on_embed_progress", 0, total)
        for split, dataset in (("train", self.train_set), ("val", self.val_set)):
            cache_file = embedding_cache.pass_file(self.cache_dir, self.embedding_identity() | {
                "manifest": self.manifest_fingerprint, "files": self.files_stamp, "split": split,
                "frozen_layers": self.frozen_depth,
            })  # fmt: skip
            self.frozen[split], hit = frozen_layers.run_frozen_cached(
                self.model, self.loader(dataset), self.frozen_depth, self.device, cache_file,
                progress,
            )  # fmt: skip
            if hit:
                progress(len(dataset))
            self.embedding_cache_hits += hit
        torch.set_rng_state(rng)  # the pass changes nothing the training draws afterwards
        log.info("partial fast path: the first %d layers ran once over %d texts in %.2f s",
                 self.frozen_depth, total, time.perf_counter() - started)  # fmt: skip

    def _draw_like_its_loader(self, dataset: Any) -> None:
        """The random number the dataset's loader would take now (a new iterator takes one;
        persistent workers keep theirs after the first), so dropout matches the full model."""
        loader = self.loader(dataset)
        if loader.num_workers > 0 and loader.persistent_workers:
            if id(dataset) in self._loader_drawn:
                return
            self._loader_drawn.add(id(dataset))
        frozen_layers.draw_like_a_loader()

    def forward(self, inputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if self.fast_path:
            return features.head_forward(self.model, inputs)
        if isinstance(inputs, tuple):  # cached states after the frozen layers (run_frozen_layers)
            return self.model.forward_head(self.model.forward_from(*inputs, self.frozen_depth))
        return self.model(inputs)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, list[list[int]]]:
        """Validation loss, accuracy and confusion matrix (eval mode, plain cross-entropy)."""
        if len(self.val_set) == 0:
            return math.nan, math.nan, []
        was_training = self.model.training
        self.model.eval()
        if self.fast_path:
            batches = [self.embeddings["val"]]
        elif self.frozen:
            batches = self.frozen["val"].batches(self.config.batch_size)
            self._draw_like_its_loader(self.val_set)
        else:
            batches = (
                (to_device(x, self.device), y.to(self.device))
                for x, y in self.loader(
                    self.val_set, sampler=distributed.eval_indices(len(self.val_set))
                )
            )
        logits, targets = [], []
        for inputs, labels in batches:
            with autocast(self.device):
                logits.append(self.forward(inputs).float())
            targets.append(labels)
        self.model.train(was_training)
        all_logits, all_targets = torch.cat(logits), torch.cat(targets)
        if not self.fast_path:  # each rank saw its shard of the validation images
            all_logits, all_targets = distributed.gather_rows(all_logits, all_targets)
        loss = float(nn.functional.cross_entropy(all_logits, all_targets).item())
        preds = all_logits.argmax(1)
        return (
            loss,
            accuracy(preds, all_targets),
            confusion_matrix(preds.cpu(), all_targets.cpu(), len(self.classes)),
        )

    # -- optimizer -----------------------------------------------------------------------
    def _build_optimizer(self, optimizer_param_groups: Any) -> torch.optim.Optimizer:
        cfg = self.config
        groups = optimizer_param_groups(
            self.model, self.groups, self.plan, cfg.lr, cfg.weight_decay
        )
        groups = [g for g in groups if g["params"]]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(
                groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def set_lr(self, base_lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = base_lr * group.get("lr_mult", 1.0)

    def group_lrs(self) -> dict[str, float]:
        """LR per layer group; 0 for groups frozen this epoch (what the LR chart shows)."""
        return {
            g.get("group_name", str(i)): g["lr"]
            if any(p.requires_grad for p in g["params"])
            else 0.0
            for i, g in enumerate(self.optimizer.param_groups)
        }

    def _class_weights(self) -> torch.Tensor:
        """Inverse-frequency weights so a rare class counts as much as a common one."""
        counts = torch.bincount(self.train_labels, minlength=len(self.classes)).float()
        weights = torch.where(
            counts > 0, counts.sum() / (len(self.classes) * counts.clamp(min=1)), 0
        )
        return weights

    def _trainable_per_epoch(self) -> list[set[str]]:
        """The names of the parameters that learn in each epoch (the plan left at epoch 0)."""
        from tlcore.models.freezing import apply_freeze

        trainable = []
        for epoch in range(self.config.epochs):
            apply_freeze(self.model, self.groups, self.plan, epoch)
            trainable.append({n for n, p in self.model.named_parameters() if p.requires_grad})
        apply_freeze(self.model, self.groups, self.plan, 0)
        return trainable

    def _fast_path_reason(self, trainable: list[set[str]]) -> str:
        return features.fast_path_reason(
            self.model, trainable, self.config.augment, self.config.augment_views
        )

    def _frozen_depth(self, trainable: list[set[str]]) -> int:
        """Layers the partial fast path runs once (0: none); DDP wraps the whole model."""
        if distributed.active() or self.config.augment != "none":
            return 0
        return frozen_layers.cache_depth(self.model, trainable)

    # -- control and checkpoints ---------------------------------------------------------
    def emit(self, event: str, *args: Any) -> None:
        """Call ``event`` on every callback that defines it (progress events are optional)."""
        for callback in self.callbacks:
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(self, *args)

    def request_stop(self, message: str, state: str = "stopped") -> None:
        """Honoured after the current step; ``fit`` returns ``state``."""
        self.stop_message, self.stop_state = message, state

    def state_dict(self) -> dict[str, Any]:
        """Progress as plain tensors/dicts (``torch.load(weights_only=True)`` reads it)."""
        return {
            "epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
            "partial": dict(self.partial), "best": dict(self.best),
            "epoch_seconds": list(self.epoch_seconds), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "torch_rng": torch.get_rng_state(),
            "python_rng": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
            "fast_path": self.fast_path,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.partial, self.best = dict(state["partial"]), dict(state["best"])
        self.epoch_seconds = list(state["epoch_seconds"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))
