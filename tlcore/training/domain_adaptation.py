"""Domain adaptation: train on labelled photos, predict well on photos from elsewhere.

A model trained on one camera, site or hospital often does worse on another,
because the photos *look* different even when the classes are the same. DANN
(Ganin & Lempitsky, 2015) uses unlabelled photos of the new (target) domain:
a small domain classifier learns to tell source features from target features,
and a gradient reversal layer between it and the backbone turns its gradient
around, so the backbone learns features the domain classifier cannot separate
while the class head keeps them useful for the labels.

The run engine stays as it is: the worker (``tlcore.runs.worker.choose_trainer``) picks
the plain ``Trainer`` or ``DANNTrainer``, and a ``TargetEvaluation`` callback
adds ``source_val_acc`` and, when the target folder has class sub-folders,
``target_acc`` to every epoch event. Target labels are only ever used for that
score, never for training. "Without adaptation" is a baseline run with the same
settings and ``domain_adaptation="none"`` (same seed, same layers trained).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from tlcore.data.images import load_rgb
from tlcore.errors import ConfigError, DataError
from tlcore.training import features
from tlcore.training.config import TrainConfig
from tlcore.training.devices import autocast, to_device
from tlcore.training.trainer import Callback, Trainer, epoch_order

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest


log = logging.getLogger("tlcore.training.domain_adaptation")
DOMAIN_HIDDEN = 256
EVAL_BATCH = 32


class GradientReversal(torch.autograd.Function):
    """Identity on the way forward; multiplies the gradient by ``-coeff`` on the way back."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    return GradientReversal.apply(x, coeff)


def dann_coefficient(progress: float) -> float:
    """DANN's schedule for the reversed gradient: 0 at the start, near 1 by the end.

    ``2 / (1 + exp(-10 p)) - 1`` lets the class head settle before the backbone is
    pushed to hide the domain (the domain classifier itself learns from step one).
    """
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


class DomainClassifier(nn.Module):
    """Source (0) or target (1) from a pooled embedding: a small MLP giving one logit."""

    def __init__(self, in_features: int, hidden: int = DOMAIN_HIDDEN) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


# -- the target domain -------------------------------------------------------------------------
@dataclass
class TargetDomain:
    """Photos of the new domain; ``labels[i]`` is a class index or -1 when unknown."""

    root: Path
    paths: list[str]
    labels: list[int]
    skipped: list[str] = field(default_factory=list)  # unreadable files, with the reason

    @property
    def n_labelled(self) -> int:
        return sum(1 for label in self.labels if label >= 0)


def resolve_target_folder(target: str | Path) -> Path:
    """The folder of target photos: as given, or where an uploaded .zip was unpacked."""
    path = Path(str(target)).expanduser()
    if path.is_file() and path.suffix.lower() == ".zip":
        from tlcore.data.prepare import unpack_upload

        return unpack_upload(path)
    if not path.is_dir():
        raise DataError(
            f"The target-domain folder {path} does not exist: give a folder (or .zip) of photos "
            "from the place you will predict on."
        )
    return path


def load_target_domain(target: str | Path, classes: Sequence[str]) -> TargetDomain:
    """Every readable photo under ``target``; a folder named like a class labels its photos.

    Labels are optional (``target/<class>/photo.jpg``) and used only to score the
    model; photos elsewhere are unlabelled. Unreadable files are skipped and listed.
    """
    from tlcore.data.images import images_in, is_ignored
    from tlcore.data.prepare import inspect_files

    root = resolve_target_folder(target)
    found = [p for p in images_in([root]) if not is_ignored(p.relative_to(root))]
    if not found:
        raise DataError(f"The target-domain folder {root} holds no photos (jpg, png, ...).")
    inspected = inspect_files(found)
    label_of = {name: i for i, name in enumerate(classes)}
    paths, labels, skipped = [], [], []
    for path in found:
        info = inspected[path]
        if isinstance(info, str):
            skipped.append(f"{path.relative_to(root).as_posix()}: {info}")
            continue
        folders = path.relative_to(root).parts[:-1]
        label = next((label_of[f] for f in reversed(folders) if f in label_of), -1)
        paths.append(str(path))
        labels.append(label)
    if not paths:
        raise DataError(f"None of the {len(found)} photos in {root} can be read: {skipped[0]}")
    return TargetDomain(root, paths, labels, skipped)


class TargetPhotos(torch.utils.data.Dataset):
    """(image tensor, label or -1) for target photos, read like training photos."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], transform: Any) -> None:
        self.paths, self.labels, self.transform = list(paths), list(labels), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            image = load_rgb(self.paths[index])
        except DataError as exc:
            raise DataError(
                f"{exc} (a target-domain photo changed since the run started)"
            ) from None
        return self.transform(image), self.labels[index]


@torch.no_grad()
def target_accuracy(trainer: Trainer, dataset: TargetPhotos) -> float:
    """Accuracy of the trainer's model on labelled target photos (eval mode, full model)."""
    model = trainer.model
    was_training = model.training
    model.eval()
    correct = 0
    for images, labels in torch.utils.data.DataLoader(dataset, batch_size=EVAL_BATCH):
        with autocast(trainer.device):
            logits = model(to_device(images, trainer.device))
        correct += int((logits.argmax(1).cpu() == labels).sum())
    model.train(was_training)
    return correct / max(1, len(dataset))


class TargetEvaluation(Callback):
    """Adds ``source_val_acc`` and ``target_acc`` (labelled target photos) to epoch events.

    Must come before the run recorder in the callback list so the written event has them.
    """

    def __init__(self, target: TargetDomain) -> None:
        self.target = target
        self.dataset: TargetPhotos | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        from tlcore.data.dataset import build_transform

        labelled = [
            (p, y) for p, y in zip(self.target.paths, self.target.labels, strict=True) if y >= 0
        ]
        if labelled:
            paths, labels = zip(*labelled, strict=True)
            transform = build_transform(trainer.data_config, train=False)
            self.dataset = TargetPhotos(paths, labels, transform)
        log.info(
            "target domain %s: %d photos, %d with a class folder (scored, never trained on)%s",
            self.target.root, len(self.target.paths), len(labelled),
            f", {len(self.target.skipped)} unreadable skipped" if self.target.skipped else "",
        )  # fmt: skip

    def on_epoch_end(self, trainer: Trainer, event: dict[str, Any]) -> None:
        event["source_val_acc"] = event.get("val_acc")
        event["target_images"] = len(self.target.paths)
        if self.dataset is not None:
            event["target_acc"] = target_accuracy(trainer, self.dataset)
            event["target_labelled"] = len(self.dataset)
            log.info("epoch %d: source val acc %.3f | target acc %.3f (%d photos)",
                     event["epoch"], event["val_acc"], event["target_acc"], len(self.dataset))  # fmt: skip


# -- DANN --------------------------------------------------------------------------------------
class DANNTrainer(Trainer):
    """``Trainer`` whose every step also pushes the backbone to hide the source/target domain."""

    def __init__(self, config: TrainConfig, manifest: Manifest, target: TargetDomain,
                 callbacks: Sequence[Callback] = (), **kwargs: Any) -> None:  # fmt: skip
        from tlcore.data.dataset import build_transform

        if getattr(config, "nproc", 1) > 1:
            raise ConfigError("Domain adaptation runs in one process: set nproc to 1.")
        super().__init__(config, manifest, callbacks=callbacks, **kwargs)
        backbone_trains = any(
            any(self.plan.trainable_groups(len(self.groups), epoch)[:-1])
            for epoch in range(self.config.epochs)
        )
        if not backbone_trains:
            raise ConfigError(
                "Domain adaptation (DANN) changes the backbone's features, but this freeze plan "
                "trains only the classifier: let at least the last backbone group train "
                "(e.g. freeze preset last-2)."
            )
        cfg = self.config
        self.domain_head = DomainClassifier(self.model.num_features).to(self.device)
        self.optimizer.add_param_group({
            "params": list(self.domain_head.parameters()), "lr": cfg.lr,
            "weight_decay": cfg.weight_decay, "group_name": "domain classifier",
            "lr_mult": 1.0, "trainable": True,
        })  # fmt: skip
        train_tf = build_transform(self.data_config, train=True, augment=cfg.augment)
        self.target_set = TargetPhotos(target.paths, [-1] * len(target.paths), train_tf)
        self.target_cycle = 0
        self._target_batches: Any = None
        self.domain_partial = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        self.dann_coeff = 0.0

    def _fast_path_reason(self, trainable: list[set[str]]) -> str:
        return "domain adaptation (DANN) trains the backbone on the target photos"

    def next_target_batch(self) -> torch.Tensor:
        """The next batch of target photos, cycling through them in seeded orders."""
        while True:
            if self._target_batches is None:
                self.target_cycle += 1
                order = epoch_order(len(self.target_set), self.config.seed + 1, self.target_cycle)
                self._target_batches = iter(torch.utils.data.DataLoader(
                    self.target_set, batch_size=self.config.batch_size, sampler=order.tolist(),
                    pin_memory=self.device.type == "cuda",
                ))  # fmt: skip
            try:
                images, _ = next(self._target_batches)
                return to_device(images, self.device)
            except StopIteration:
                self._target_batches = None

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
        """Class loss on source photos + ``dann_weight`` x domain loss on source and target."""
        target_images = self.next_target_batch()
        self.dann_coeff = dann_coefficient(self.step / max(1, self.total_steps))
        n = len(inputs)
        with autocast(self.device):
            pooled = self.model.forward_head(
                self.model.forward_features(torch.cat([inputs, target_images])), pre_logits=True
            )
            logits = features.head_forward(self.model, pooled[:n])
            class_loss = self.criterion(logits.float(), targets)
            domain_logits = self.domain_head(grad_reverse(pooled, self.dann_coeff)).float()
        domain_labels = torch.cat([torch.zeros(n), torch.ones(len(target_images))]).to(self.device)
        domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domain_labels)
        loss = class_loss + self.config.dann_weight * domain_loss
        self.optimize(loss, "lower the learning rate or the DANN weight")
        self.domain_partial["loss_sum"] += float(domain_loss.item()) * len(domain_labels)
        self.domain_partial["correct"] += int(((domain_logits > 0).float() == domain_labels).sum())
        self.domain_partial["seen"] += len(domain_labels)
        return float(class_loss.item()), int((logits.argmax(1) == targets).sum().item())

    def finish_epoch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The plain epoch event plus how well the domains can still be told apart."""
        event = super().finish_epoch(*args, **kwargs)
        seen = max(1, self.domain_partial["seen"])
        event["domain_loss"] = self.domain_partial["loss_sum"] / seen
        event["domain_acc"] = self.domain_partial["correct"] / seen  # 0.5: indistinguishable
        event["dann_coeff"] = self.dann_coeff
        event["domain_adaptation"] = "dann"
        self.domain_partial = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        return event

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["domain_head"] = {
            k: v.detach().cpu() for k, v in self.domain_head.state_dict().items()
        }
        state["domain_partial"] = dict(self.domain_partial)
        state["target_cycle"] = self.target_cycle
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "domain_head" in state:
            self.domain_head.load_state_dict(state["domain_head"])
            self.domain_partial = dict(state["domain_partial"])
            self.target_cycle = int(state["target_cycle"])
