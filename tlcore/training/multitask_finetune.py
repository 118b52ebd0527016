"""Several label columns learned end to end: the shared backbone fine-tuned with one head per task.

When the Layers plan lets the backbone learn (last-K groups, full, progressive, custom), the
cached embeddings no longer describe what the heads see, so every epoch reads the photos
(augmented as ``TrainConfig.augment`` says) through the backbone and the heads
(``multitask.MultiHead``) together. The rest is the fast path's (``tlcore.training.multitask``):
each task's loss is the mean over its own labelled items (a blank cell is left out) divided by
its loss at chance, the tasks' losses are averaged, and every epoch ends with each task's
validation score (a curve per task).

The pieces are the classification trainer's, not new ones: the layer groups and freeze plan
(``tlcore.models.freezing``; the heads take the place of the ImageNet classifier in the last
group, so "last-2" names the same groups as the Layers page), one optimizer group per layer
group with its learning-rate multiplier, frozen BatchNorm kept in eval mode, the warm-up and
cosine/one-cycle schedule and the fixed epoch order (``tlcore.training.trainer``), mixed
precision on GPUs (``tlcore.training.devices``). ``state_dict`` holds what a checkpoint needs to
continue from the end of an epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from tlcore.data.columns import ColumnTask
from tlcore.errors import TrainingDiverged
from tlcore.models.freezing import LayerGroup
from tlcore.training import multitask as mt
from tlcore.training.config import TrainConfig


class ColumnsNet(nn.Module):
    """A timm backbone (its classifier removed: pooled features) and one head per task."""

    def __init__(self, backbone: nn.Module, heads: mt.MultiHead) -> None:
        super().__init__()
        self.backbone, self.heads = backbone, heads

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.backbone.forward_head(self.backbone.forward_features(images), pre_logits=True)
        return self.heads(pooled.float())


def build_net(config: TrainConfig, tasks: Sequence[ColumnTask]) -> tuple[ColumnsNet, list[LayerGroup], dict[str, Any]]:  # fmt: skip
    """The backbone with the run's weights, the heads, the layer groups (the Layers page's,
    the classifier's place taken by the heads) and the preprocessing."""
    from tlcore.data.dataset import resolve_data_config
    from tlcore.models.factory import create_model
    from tlcore.models.freezing import layer_groups
    from tlcore.models.weights import classifier_names

    backbone = create_model(config.model, None, config.weights, drop_rate=config.drop_rate)
    groups = layer_groups(backbone)  # with its classifier, as the Layers page counts them
    classifier = tuple(classifier_names(backbone))
    data_config = resolve_data_config(backbone, config.img_size)
    backbone.reset_classifier(0)
    heads = mt.MultiHead(int(backbone.num_features), tasks)
    net = ColumnsNet(backbone, heads)
    params = dict(net.named_parameters())
    out = []
    for i, group in enumerate(groups):
        names = [f"backbone.{n}" for n in group.param_names
                 if not n.startswith(classifier) and f"backbone.{n}" in params]  # fmt: skip
        if i == len(groups) - 1:
            names += [f"heads.{n}" for n, _ in heads.named_parameters()]
        out.append(LayerGroup(group.name, names, group.n_layers,
                              sum(params[n].numel() for n in names)))  # fmt: skip
    return net, out, data_config


class ColumnsFineTuner:
    """Trains ``ColumnsNet`` on the photos of a table; plain attributes, so checkpoints are easy."""

    def __init__(self, config: TrainConfig, tasks: Sequence[ColumnTask],
                 train_paths: Sequence[str], train_targets: Sequence[mt.TaskTargets],
                 val_paths: Sequence[str], val_targets: Sequence[mt.TaskTargets]) -> None:  # fmt: skip
        from tlcore.data.dataset import build_transform
        from tlcore.data.loading import auto_num_workers
        from tlcore.models.freezing import FreezePlan, optimizer_param_groups
        from tlcore.training.devices import grad_scaler, resolve_device
        from tlcore.training.trainer import seed_everything

        self.config = cfg = config
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.net, self.groups, self.data_config = build_net(cfg, tasks)
        self.net.to(self.device)
        self.plan = FreezePlan.from_dict(cfg.freeze)
        self.train_targets, self.val_targets = list(train_targets), list(val_targets)
        self.scales = [mt.chance_loss(t) for t in self.train_targets]
        self.train_set = mt.Photos(train_paths, build_transform(self.data_config, train=True,
                                                            augment=cfg.augment))  # fmt: skip
        self.val_set = mt.Photos(val_paths, build_transform(self.data_config, train=False))
        workers = cfg.num_workers
        if workers is None:
            workers = auto_num_workers(self.device, len(self.train_set), cfg.batch_size)
        self.num_workers = int(workers)
        groups = [g for g in optimizer_param_groups(self.net, self.groups, self.plan, cfg.lr,
                                                    cfg.weight_decay) if g["params"]]  # fmt: skip
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = grad_scaler(self.device)
        self.steps_per_epoch = max(1, math.ceil(len(self.train_set) / cfg.batch_size))
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup_steps = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.epoch, self.step = 0, 0  # completed epochs, optimizer steps
        self.trainable_params = 0

    # -- the loop ------------------------------------------------------------------------
    def fit(self, on_epoch: Callable[[dict[str, Any]], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> str:  # fmt: skip
        """Epochs from the one after ``self.epoch``; "finished", or "stopped" when
        ``should_stop`` said so after a step (the epoch under way is not kept)."""
        from tlcore.models.freezing import apply_freeze, set_frozen_bn_eval
        from tlcore.training.devices import autocast, to_device
        from tlcore.training.trainer import epoch_order, lr_factor

        cfg = self.config
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            started = time.perf_counter()
            self.net.train()
            self.trainable_params = apply_freeze(self.net, self.groups, self.plan, epoch - 1)
            set_frozen_bn_eval(self.net, self.groups, self.plan, epoch - 1)
            order = epoch_order(len(self.train_set), cfg.seed, epoch).tolist()
            loss_sum, seen = 0.0, 0
            for images, rows in self._loader(self.train_set, order):
                lr = cfg.lr * lr_factor(
                    self.step, self.total_steps, self.warmup_steps, cfg.schedule
                )
                for group in self.optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_mult", 1.0)
                with autocast(self.device):
                    out = self.net(to_device(images, self.device))
                loss = self._loss(out, rows)
                self._optimize(loss)
                self.step += 1
                loss_sum, seen = loss_sum + float(loss.detach()) * len(rows), seen + len(rows)
                if should_stop():
                    return "stopped"
            self.epoch = epoch
            event: dict[str, Any] = {"epoch": epoch, "epochs": cfg.epochs, "step": self.step,
                                     "train_loss": loss_sum / max(1, seen), "fast_path": False,
                                     "trainable_params": self.trainable_params}  # fmt: skip
            probs = mt.probs_from_logits(self.net.heads, self.val_logits())
            event["tasks"] = {
                t.task.name: mt.score(t, probs[t.task.name]) for t in self.val_targets
            }
            event["seconds"] = time.perf_counter() - started
            if on_epoch is not None:
                on_epoch(event)
        return "finished"

    def _loader(
        self, dataset: mt.Photos, order: list[int] | None = None
    ) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset, batch_size=self.config.batch_size,
                                           sampler=order, num_workers=self.num_workers,
                                           pin_memory=self.device.type == "cuda")  # fmt: skip

    def _loss(self, out: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        """The mean over tasks of each task's loss on its labelled rows over its chance loss."""
        losses = []
        for t, scale in zip(self.train_targets, self.scales, strict=True):
            batch = mt.TaskTargets(t.task, t.y[rows].to(self.device), t.mask[rows].to(self.device))
            losses.append(mt.task_loss(out[t.task.name].float(), batch) / scale)
        return torch.stack(losses).mean()

    def _optimize(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"The loss became {loss.item()} at step {self.step + 1} (epoch {self.epoch + 1}): "
                "lower the learning rate (try 10x smaller) or turn on warm-up."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    @torch.no_grad()
    def val_logits(self) -> dict[str, torch.Tensor]:
        """Each task's logits on the validation photos, in their order (eval mode, CPU)."""
        from tlcore.training.devices import autocast, to_device

        was_training = self.net.training
        self.net.eval()
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in self.net.heads.names}
        for images, _ in self._loader(self.val_set):
            with autocast(self.device):
                out = self.net(to_device(images, self.device))
            for name, logits in out.items():
                parts[name].append(logits.float().cpu())
        self.net.train(was_training)
        return {name: torch.cat(p) if p else torch.empty(0, 0) for name, p in parts.items()}

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Progress at the end of an epoch (``torch.load(weights_only=True)`` reads it)."""
        return {"epoch": self.epoch, "step": self.step,
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "torch_rng": torch.get_rng_state()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
