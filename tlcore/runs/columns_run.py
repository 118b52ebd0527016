"""A run that learns several label columns at once (task target "columns").

Same run directory as any run: ``config.json`` (with ``"task": {"modality": "image",
"target": "columns"}``), ``status.json``, ``metrics.jsonl`` (a ``task_scores`` event every few
epochs holding each task's validation score: a curve per task) and the worker; what it
keeps besides is ``columns.json`` (the table as read: items, tasks, split, notes),
``checkpoints/last.safetensors`` (the shared layer and one head per task, the tag thresholds and
temperatures) and ``val_outputs.json`` (the validation probabilities, computed once when
training ends, which ``evaluate`` reads). With feature extraction the frozen backbone's
embeddings come from the one embedding cache beside the runs; with any other Layers plan
(``fine_tunes``) the backbone learns with the heads on the photos, keeps
``checkpoints/training.*`` at the end of every epoch (resume continues from it) and, when it
finishes, ``checkpoints/backbone.safetensors``, which predict and export then use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tlcore.data.columns import ITEM_WORDS, ColumnsData, read_columns
from tlcore.errors import ConfigError, RunError
from tlcore.runs.files import append_event, now_iso, read_json, write_json_atomic
from tlcore.runs.run import Run, package_versions
from tlcore.training.config import TrainConfig

if TYPE_CHECKING:
    from tlcore.results.columns_predict import ColumnsPredictor

COLUMNS = {"modality": "image", "target": "columns"}
COLUMNS_FILE = "columns.json"
HEADS_FILE = "checkpoints/last.safetensors"  # the one model: where the pages look for it
BACKBONE_FILE = "checkpoints/backbone.safetensors"  # a fine-tuned backbone (not the fast path)
TRAINING_CHECKPOINT = "training"  # the fine-tuning's end of epoch: resume continues from it
OUTPUTS_FILE = "val_outputs.json"


def create_columns_run(
    config: TrainConfig, tasks: list[str] | None, group: str | None
) -> tuple[Run, ColumnsData]:
    """Read the table (``config.data``), write the run directory; nothing trains yet."""
    import dataclasses

    from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL, is_text_model

    data = read_columns(config.data, tasks=tasks, group=group, val_fraction=config.val_fraction,
                        seed=config.seed)  # fmt: skip
    if is_text_model(config.model) != (data.modality == "text"):  # sentences: the bundled MiniLM
        if data.modality != "text":
            raise ConfigError(f"{config.model} reads texts; a table of photos trains on a photo "
                              "backbone (the bundled Lite0 by default).")  # fmt: skip
        config = dataclasses.replace(config, model=DEFAULT_TEXT_MODEL, weights="bundled")
    if data.modality == "text" and fine_tunes(config):
        raise ConfigError("sentences with several label columns train on the frozen MiniLM "
                          "(feature extraction); fine-tuning it for label columns is not written "
                          "yet: choose feature extraction on the Layers page (or leave out "
                          "--freeze).")  # fmt: skip
    run = Run.new_folder(config)
    data.save(run.dir / COLUMNS_FILE)
    write_json_atomic(run.config_path, {
        "id": run.id, "created": now_iso(), "owner": config.owner, "task": {**COLUMNS, "modality": data.modality},
        "config": config.to_dict(),
        "data": {"source": str(config.data), "tasks": [t.name for t in data.tasks], "group": group,
                 "counts": {t.name: t.counts for t in data.tasks}, "groups": data.groups,
                 "problems": data.problems, "split_seed": config.seed},
        "versions": package_versions(),
    })  # fmt: skip
    run.write_status("queued", message="Waiting for the worker to start.")
    return run, data


def columns_data(run: Run) -> ColumnsData:
    path = run.dir / COLUMNS_FILE
    if not path.is_file():
        raise RunError(f"{run.dir} holds no {COLUMNS_FILE}: it is not a run of label columns.")
    return ColumnsData.load(path)


def embedder_for(config: TrainConfig, cache_dir: Path | None = None) -> Any:
    """The frozen backbone: a photo model, or the text encoder for a table of sentences."""
    from tlcore.models.text_catalog import is_text_model

    if is_text_model(config.model):
        from tlcore.training.columns_text import TextEmbedder

        return TextEmbedder(config.model, config.weights, config.max_tokens, config.device,
                            cache_dir)  # fmt: skip
    from tlcore.training.embedder import Embedder

    return Embedder(config.model, config.weights, config.img_size, config.device, cache_dir)


def fine_tunes(config: TrainConfig) -> bool:
    """Whether the backbone learns (any Layers plan but feature extraction): then the photos
    go through the backbone every epoch instead of once into the embedding cache."""
    return (config.freeze or {}).get("preset", "features") != "features"


def train_columns_run(run: Run, resume: bool = False,
                      training_started: Callable[[], Any] | None = None) -> str:  # fmt: skip
    """Embed (cached), train the heads, choose thresholds and temperatures, keep the
    validation outputs once; the final state. Called by the worker (``tlcore.runs.worker``).
    A plan that fine-tunes the backbone trains end to end instead (``_fine_tune``), which
    calls ``training_started`` when its epochs begin (from then on it honours a stop request
    after each step; the worker's watcher, which stops a run before training, stands down)."""
    from tlcore.training import embedding_cache
    from tlcore.training import multitask as mt
    from tlcore.training.columns_text import embed_items

    if fine_tunes(run.config):
        return _fine_tune(run, resume, training_started or (lambda: None))
    started = time.monotonic()
    config = run.config
    data = columns_data(run)
    pid = os.getpid()
    run.write_status("running", pid=pid, message="Loading the backbone.")
    embedder = embedder_for(config, embedding_cache.folder(run.dir.parent))
    words = ITEM_WORDS.get(data.modality, "items")

    def told(done: int, total: int) -> None:
        if done == total or done % 64 < 32:
            run.write_status(
                "running", pid=pid, message=f"Embedding the {words}: {done} of {total}."
            )

    x, embedded = embed_items(embedder, data.items, told)
    train_at = [i for i, item in enumerate(data.items) if item.split == "train"]
    val_at = [i for i, item in enumerate(data.items) if item.split == "val"]
    train_items = [data.items[i] for i in train_at]
    val_items = [data.items[i] for i in val_at]
    tr = [mt.targets(data, train_items, t) for t in data.tasks]
    va = [mt.targets(data, val_items, t) for t in data.tasks]
    run.write_status("running", pid=pid, message="Training one head per task.", epoch=0)

    def on_epoch(event: dict[str, Any]) -> None:
        append_event(run.metrics_path, {"type": "task_scores", "time": now_iso(), **event})
        run.write_status(
            "running", pid=pid, epoch=event["epoch"], message=f"Epoch {event['epoch']}."
        )

    fit = mt.fit_heads(x[train_at], tr, x[val_at], va, epochs=config.epochs, lr=config.lr,
                       weight_decay=config.weight_decay, seed=config.seed, on_epoch=on_epoch)  # fmt: skip
    logits = mt.predict_logits(fit.model, x[val_at])
    return _finish(run, data, fit.model, logits, va, started, {"embedded_now": embedded})


def _fine_tune(run: Run, resume: bool, training_started: Callable[[], Any]) -> str:
    """The shared backbone and the heads trained together on the photos
    (``tlcore.training.multitask_finetune``), a checkpoint at the end of every epoch; a stop
    keeps the last one, which resume continues from."""
    from tlcore.models.freezing import FreezePlan
    from tlcore.training import multitask as mt
    from tlcore.training.checkpoints import has_checkpoint, load_checkpoint, save_checkpoint
    from tlcore.training.multitask_finetune import ColumnsFineTuner

    started = time.monotonic()
    config, data, pid = run.config, columns_data(run), os.getpid()
    plan = FreezePlan.from_dict(config.freeze).label()
    run.write_status("running", pid=pid, message=f"Loading the backbone to fine-tune ({plan}).")
    train_items, val_items = data.items_for("train"), data.items_for("val")
    tuner = ColumnsFineTuner(config, data.tasks, [i.path for i in train_items],
                             [mt.targets(data, train_items, t) for t in data.tasks],
                             [i.path for i in val_items],
                             [mt.targets(data, val_items, t) for t in data.tasks])  # fmt: skip
    note = ""
    if resume and has_checkpoint(run.checkpoints_dir, TRAINING_CHECKPOINT):
        tuner.load_state_dict(load_checkpoint(run.checkpoints_dir, TRAINING_CHECKPOINT, tuner.net))
        note = f" (resumed after epoch {tuner.epoch})"
    training_started()
    words = ITEM_WORDS.get(data.modality, "items")

    def on_epoch(event: dict[str, Any]) -> None:
        save_checkpoint(run.checkpoints_dir, TRAINING_CHECKPOINT, tuner.net, tuner.state_dict())
        append_event(run.metrics_path, {"type": "task_scores", "time": now_iso(), **event})
        run.write_status("running", pid=pid, epoch=event["epoch"], epochs=config.epochs,
                         fast_path=False, message=f"Finished epoch {event['epoch']} of "
                         f"{config.epochs} (fine-tuning, {plan}){note}.")  # fmt: skip

    run.write_status("running", pid=pid, epoch=tuner.epoch, epochs=config.epochs, fast_path=False,
                     message=f"Fine-tuning the backbone ({plan}) and one head per task on the "
                     f"{len(train_items)} training {words}, epoch {tuner.epoch + 1} of "
                     f"{config.epochs}{note}.")  # fmt: skip
    outcome = tuner.fit(on_epoch, run.stop_path.exists)
    if outcome == "stopped":
        run.write_status("stopped", pid=pid, epoch=tuner.epoch, epochs=config.epochs,
                         message=f"Stopped by request during epoch {tuner.epoch + 1}; resume "
                         f"continues after epoch {tuner.epoch}.")  # fmt: skip
        return outcome
    run.write_status("running", pid=pid, epoch=tuner.epoch, message="Scoring each task on the "
                     f"{len(val_items)} validation {words}.")  # fmt: skip
    _save_backbone(run, tuner.net.backbone)
    va = tuner.val_targets
    return _finish(run, data, tuner.net.heads, tuner.val_logits(), va, started,
                   {"fine_tuned": plan})  # fmt: skip


def _save_backbone(run: Run, backbone: torch.nn.Module) -> None:
    """The fine-tuned backbone (its classifier removed), written atomically."""
    from safetensors.torch import save_file

    path = run.dir / BACKBONE_FILE
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()},
              str(tmp))  # fmt: skip
    os.replace(tmp, path)


def _finish(run: Run, data: ColumnsData, heads: Any, logits: dict[str, torch.Tensor],
            va: list[Any], started: float, extra: dict[str, Any]) -> str:  # fmt: skip
    """From the validation logits: thresholds per tag, a temperature per one-of task, the
    heads file, the validation outputs once, the final state with each task's scores."""
    from tlcore.training import multitask as mt

    config = run.config
    thresholds = {t.task.name: mt.choose_thresholds(t, torch.sigmoid(logits[t.task.name]).numpy())
                  for t in va if t.task.kind == "tags"}  # fmt: skip
    temperatures = {t.task.name: mt.fit_temperature(t, logits[t.task.name])
                    for t in va if t.task.kind != "tags"}  # fmt: skip
    (run.dir / HEADS_FILE).parent.mkdir(exist_ok=True)
    mt.save_heads(run.dir / HEADS_FILE, heads, data.tasks, thresholds, temperatures)
    probs = mt.probs_from_logits(heads, logits, temperatures)
    scores = {t.task.name: mt.score(t, probs[t.task.name], thresholds.get(t.task.name)) for t in va}
    val_items = data.items_for("val")
    write_json_atomic(run.dir / OUTPUTS_FILE, {
        "paths": [item.path for item in val_items],
        "probs": {name: p.round(5).tolist() for name, p in probs.items()},
        "thresholds": thresholds, "temperatures": temperatures, "scores": scores,
        **extra, "seconds": time.monotonic() - started,
    })  # fmt: skip
    words = "; ".join(f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()
                      if k != "items" and v is not None) for name, s in scores.items())  # fmt: skip
    run.write_status("finished", pid=os.getpid(), epoch=config.epochs, message=f"Finished: {words}.",
                     tasks=scores, seconds=time.monotonic() - started)  # fmt: skip
    return "finished"


def _tasks_of(outputs: dict[str, Any]) -> dict[str, Any]:
    return outputs.get("scores", {})


def evaluate_columns(run: Run) -> dict[str, Any]:
    """Per task on the validation items (from the outputs kept when training ended):
    accuracy and macro F1, or mAP, micro F1 and F1 per tag with its threshold; the worst
    mistakes (the most confident wrong answers)."""
    from tlcore.training import multitask as mt

    outputs = read_json(run.dir / OUTPUTS_FILE)
    if not outputs:
        raise RunError(f"run {run.id} has no validation outputs: it has not finished training.")
    data = columns_data(run)
    by_path = {item.path: item for item in data.items}
    items = [by_path[p] for p in outputs["paths"]]
    import numpy as np

    report: dict[str, Any] = {
        "run": run.id,
        "items": len(items),
        "groups": data.groups,
        "tasks": {},
    }
    for task in data.tasks:
        t = mt.targets(data, items, task)
        probs = np.asarray(outputs["probs"][task.name])
        entry = dict(mt.score(t, probs, outputs["thresholds"].get(task.name)))
        entry["kind"] = task.kind
        mask = t.mask.numpy()
        if task.kind == "tags":
            cut = outputs["thresholds"][task.name]
            y = t.y.numpy()[mask] > 0
            pred = probs[mask] >= np.asarray(cut)
            entry["per_tag"] = {tag: {"threshold": round(cut[j], 4), "f1": round(mt.f1(
                (pred[:, j] & y[:, j]).sum(), (pred[:, j] & ~y[:, j]).sum(), (~pred[:, j] & y[:, j]).sum()), 4),
                "support": int(y[:, j].sum())} for j, tag in enumerate(task.classes)}  # fmt: skip
            entry["together"] = tags_together(task.classes, y, pred)
            entry["worst"] = worst_tag_mistakes(task.classes, [i for i in range(len(items)) if mask[i]],
                                                items, y, probs[mask], pred)  # fmt: skip
        else:
            y = t.y.numpy()
            guess = probs.argmax(1)
            entry["per_class"] = {c: {"f1": round(mt.f1(((guess == j) & (y == j) & mask).sum(),
                                                        ((guess == j) & (y != j) & mask).sum(),
                                                        ((guess != j) & (y == j) & mask).sum()), 4),
                                      "support": int(((y == j) & mask).sum())}
                                  for j, c in enumerate(task.classes)}  # fmt: skip
            wrong = [(float(probs[i].max()), i) for i in range(len(items))
                     if mask[i] and probs[i].argmax() != y[i]]  # fmt: skip
            wrong.sort(reverse=True)
            entry["worst"] = [{"path": items[i].path, "text": items[i].text, "true": task.classes[y[i]],
                               "predicted": task.classes[int(probs[i].argmax())], "probability": round(p, 4)}
                              for p, i in wrong[:5]]  # fmt: skip
        report["tasks"][task.name] = entry
    return report


def worst_tag_mistakes(tags: list[str], rows: list[int], items: list[Any], truth: Any,
                       probs: Any, predicted: Any, limit: int = 5) -> list[dict[str, Any]]:  # fmt: skip
    """The photos whose tags the model got most confidently wrong: a tag said with a high
    probability that is not there, or a tag there that it gave a low probability."""
    import numpy as np

    wrong = np.where(predicted != truth, np.abs(probs - truth), 0.0)
    order = [k for k in np.argsort(-wrong.max(1), kind="stable") if wrong[k].max() > 0][:limit]
    return [{"path": items[rows[k]].path, "text": items[rows[k]].text,
             "true": [tags[j] for j in range(len(tags)) if truth[k, j]],
             "predicted": [tags[j] for j in range(len(tags)) if predicted[k, j]],
             "missed": [tags[j] for j in range(len(tags)) if truth[k, j] and not predicted[k, j]],
             "extra": [tags[j] for j in range(len(tags)) if predicted[k, j] and not truth[k, j]],
             "probability": round(float(wrong[k].max()), 4)} for k in order]  # fmt: skip


def tags_together(tags: list[str], truth: Any, predicted: Any) -> list[dict[str, Any]]:
    """Pairs of tags that go together: how many validation photos carry both, and how many
    the model gave both (a pair it over- or under-predicts shows up here)."""
    pairs = []
    for a in range(len(tags)):
        for b in range(a + 1, len(tags)):
            both = int((truth[:, a] & truth[:, b]).sum())
            said = int((predicted[:, a] & predicted[:, b]).sum())
            right = int((truth[:, a] & truth[:, b] & predicted[:, a] & predicted[:, b]).sum())
            if both or said:
                pairs.append(
                    {"tags": [tags[a], tags[b]], "true": both, "predicted": said, "right": right}
                )
    return sorted(pairs, key=lambda p: -max(p["true"], p["predicted"]))


def columns_predictor(run: Run, cached: bool = True) -> ColumnsPredictor:
    """The run's backbone and heads; ``cached``: photos embedded through the one embedding
    cache (the run's own photos), else directly (a visitor's uploads, kept out of it).
    Sentences always go through the cache (keyed by their words, not a file)."""
    from tlcore.results.columns_predict import ColumnsPredictor
    from tlcore.training import embedding_cache
    from tlcore.training import multitask as mt

    heads = run.dir / HEADS_FILE
    if not heads.is_file():
        raise RunError(f"run {run.id} has no trained heads: it has not finished training.")
    model, tasks, thresholds, temperatures = mt.load_heads(heads)
    if (run.dir / BACKBONE_FILE).is_file():  # fine-tuned: its own backbone, no shared cache
        backbone, data_config = _fine_tuned_backbone(run)
        return ColumnsPredictor(model, tasks, thresholds, temperatures, backbone, data_config,
                                run.config.model, f"run {run.id}")  # fmt: skip
    embedder = embedder_for(run.config, embedding_cache.folder(run.dir.parent))
    return ColumnsPredictor(model, tasks, thresholds, temperatures, embedder.model,
                            embedder.data_config, run.config.model, f"run {run.id}",
                            embedder if cached or run.task.is_text else None)  # fmt: skip


def _fine_tuned_backbone(run: Run) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The run's fine-tuned backbone and its preprocessing at the run's size."""
    from safetensors.torch import load_file

    from tlcore.data.dataset import resolve_data_config
    from tlcore.models.factory import create_model
    from tlcore.training.devices import resolve_device

    config = run.config
    backbone = create_model(config.model, None, weights="scratch")
    data_config = resolve_data_config(backbone, config.img_size)
    backbone.reset_classifier(0)
    try:
        backbone.load_state_dict(load_file(str(run.dir / BACKBONE_FILE)))
    except (OSError, RuntimeError, ValueError) as exc:
        raise RunError(f"run {run.id}'s fine-tuned backbone cannot be read ({exc}).") from None
    return backbone.to(resolve_device(config.device)).eval(), data_config


def predict_columns(run: Run, photos: list[str]) -> list[dict[str, Any]]:
    """Every task's answer per photo: the class and its probability (calibrated by the
    task's temperature), or the tags above their thresholds with their probabilities."""
    answers = columns_predictor(run).predict(photos)
    for answer, photo in zip(answers, photos, strict=True):
        answer["path"] = photo  # as given
    return answers
