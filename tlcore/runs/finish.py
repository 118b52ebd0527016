"""The worker's step after the last epoch: each checkpoint's validation outputs once, then
the temperature, "none of these" and the Evaluate page's score fitted and kept from them.

On the fast path (a frozen backbone, the default) the trainer still holds every photo's
embedding: the validation outputs of a checkpoint are its head applied to them, and the
training photos' features are the ones it trained on, so no photo of the run is read
again. Otherwise each checkpoint's model reads the validation items once
(``tlcore.runs.outputs``) and the kept training photos once (for "none of these").
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.runs.checkpoint_model import checkpoint_stamp, same_weights
from tlcore.runs.finishing_progress import FinishingCallback, FinishingSteps, item_seconds
from tlcore.runs.outputs import (
    ValidationOutputs,
    store_outputs,
    validation_items,
    validation_outputs,
)
from tlcore.runs.run import Run
from tlcore.runs.scoring import report_from_outputs, store_evaluation
from tlcore.runs.trust_store import (
    TrustFeatures,
    bank_items,
    bank_path,
    can_fit_trust,
    fit_run_trust,
    measures_unknown,
    read_trust_features,
    reference_photos,
    trust_path,
)
from tlcore.training.finishing_steps import FinishStep, finishing_steps

if TYPE_CHECKING:
    from tlcore.training.trainer import Trainer

log = logging.getLogger("tlcore.runs.finish")


class HeldEmbeddings:
    """The fast path's embeddings still in the trainer: validation outputs of any checkpoint
    (its head on them) and the trust features, without reading a photo again."""

    def __init__(self, run: Run, trainer: Trainer) -> None:
        self.run, self.trainer = run, trainer
        self.val_features = trainer.embeddings["val"][0].detach().float().cpu()
        self.val_targets = trainer.embeddings["val"][1].detach().long().cpu()
        self._features: TrustFeatures | None = None

    @classmethod
    def of(cls, run: Run, trainer: Trainer) -> HeldEmbeddings | None:
        """None unless the trainer holds embeddings of exactly the run's validation items."""
        from tlcore.training import distributed

        if not trainer.fast_path or distributed.world_size() > 1 or "val" not in trainer.embeddings:
            return None
        held = cls(run, trainer)
        _, targets, _ = validation_items(run)
        if held.val_targets.tolist() != targets or len(held.val_features) != len(targets):
            log.warning("the held embeddings do not match the validation split: scoring again")
            return None
        return held

    def outputs(self, checkpoint: str) -> ValidationOutputs:
        """The checkpoint's head (the backbone is the frozen one) on the held embeddings."""
        from safetensors.torch import load_file

        from tlcore.training.checkpoints import checkpoint_paths
        from tlcore.training.features import head_forward

        model = copy.deepcopy(self.trainer.model).cpu().float().eval()
        model.load_state_dict(load_file(str(checkpoint_paths(self.run.checkpoints_dir,
                                                             checkpoint)[0])))  # fmt: skip
        with torch.no_grad():
            logits = head_forward(model, self.val_features).float()
        return ValidationOutputs(logits, self.val_features, self.val_targets)

    def trust_features(self, progress: ProgressCallback | None = None) -> TrustFeatures:
        """The kept training photos' embeddings and outside photos' (read once, the backbone
        being the same for every checkpoint)."""
        if self._features is None:
            from tlcore.data.manifest import Manifest

            train = self.trainer.embeddings["train"][0].detach().float().cpu()
            keep = bank_items(Manifest.load(self.run.manifest_path))
            reference, source = reference_photos(self.run)
            ref_feats = None
            if reference:
                tracker = Tracker(f'Measuring "none of these" on {len(reference)} outside photos',
                                  len(reference), progress)  # fmt: skip
                ref_feats = outside_features(self.trainer, reference, tracker)
            self._features = TrustFeatures(train[keep], ref_feats, source)
        return self._features


def outside_features(trainer: Trainer, paths: list[str], tracker: Tracker) -> torch.Tensor:
    """The outside photos through the trainer's frozen backbone by way of the one embedding
    cache: every run of this backbone and size measures "none of these" on the same photos."""
    from types import SimpleNamespace

    from tlcore.data.dataset import build_transform
    from tlcore.training import embedding_cache, multitask

    embedder = SimpleNamespace(
        model=trainer.model, device=trainer.device,
        transform=build_transform(trainer.data_config, train=False),
        rows=embedding_cache.ItemEmbeddings(trainer.cache_dir, trainer.embedding_identity()),
    )  # fmt: skip
    done = [0]

    def tick(count: int, _total: int) -> None:
        tracker.advance(count - done[0])
        done[0] = count

    x, embedded = multitask.embed_paths(embedder, paths, tick)
    if embedded < len(paths):  # the rows read from the cache: all at once
        tracker.advance(len(paths) - embedded)
    return x


def finish_run(
    run: Run, trainer: Trainer | None = None, progress: FinishingCallback | None = None
) -> list[str]:
    """Keep outputs, trust and score of best (and of last, when it differs); the checkpoints
    done. ``trainer`` is the model still in memory (its embeddings, on the fast path);
    ``progress`` hears each step of the plan (``finishing_plan``) with its count and the
    time left until finished."""
    if checkpoint_stamp(run, "best") is None or not can_fit_trust(run):
        return []
    held = HeldEmbeddings.of(run, trainer) if trainer is not None else None
    has_last = checkpoint_stamp(run, "last") is not None
    same = has_last and same_weights(run)
    checkpoints = ["best"] if same or not has_last else ["best", "last"]
    unknown = measures_unknown(run)
    walk = FinishingSteps(finishing_plan(run, held is not None, checkpoints), progress,
                          item_seconds(run))  # fmt: skip
    for checkpoint in checkpoints:
        if held is not None:
            outputs = held.outputs(checkpoint)
            step = walk.start("features", checkpoint)  # the outside photos, read once
            features = held.trust_features(step) if unknown else None
        else:
            outputs = validation_outputs(run, checkpoint, walk.start("outputs", checkpoint))
            step = walk.start("features", checkpoint)
            features = read_trust_features(run, checkpoint, progress=step) if unknown else None
        walk.start("fit", checkpoint)
        store_outputs(run, checkpoint, outputs)
        trust = fit_run_trust(run, checkpoint, outputs=outputs, features=features)
        store_evaluation(run, checkpoint, report_from_outputs(run, checkpoint, outputs, trust))
    if same:  # the last epoch was the best: the same weights have the same outputs and trust
        copy_kept(run, "best", "last")
        checkpoints.append("last")
    return checkpoints


def finishing_plan(run: Run, held: bool, checkpoints: Sequence[str]) -> list[FinishStep]:
    """The steps ``finish_run`` takes for this run, with its real counts (the same list the
    estimate counted before Start: ``tlcore.training.finishing_steps``)."""
    from tlcore.data.manifest import Manifest

    manifest = Manifest.load(run.manifest_path)
    unknown = measures_unknown(run)
    return finishing_steps(
        len(bank_items(manifest)) if unknown else len(manifest.items_for("train")),
        len(manifest.items_for("val")), held=held, unknown=unknown,
        outside=len(reference_photos(run)[0]) if unknown else 0,
        checkpoints=checkpoints, items=run.task.items,
    )  # fmt: skip


def copy_kept(run: Run, source: str, target: str) -> None:
    """What was kept for ``source`` also holds for ``target`` (same bytes), restamped."""
    from tlcore.runs.files import read_json, write_json_atomic
    from tlcore.runs.scoring import stored_evaluation

    kept = validation_outputs(run, source)
    store_outputs(run, target, kept)
    if bank_path(run, source).is_file():
        shutil.copyfile(bank_path(run, source), bank_path(run, target))
    block = (read_json(trust_path(run, source)) or {}).get("trust") or {}
    write_json_atomic(trust_path(run, target),
                      {"checkpoint": checkpoint_stamp(run, target), "trust": block})  # fmt: skip
    report = stored_evaluation(run, source)
    if report is not None:
        report.source = report.source.replace(f"({source})", f"({target})")
        store_evaluation(run, target, report)
