"""A run that learns several label columns at once (task target "columns").

Same run directory as any run: ``config.json`` (with ``"task": {"modality": "image",
"target": "columns"}``), ``status.json``, ``metrics.jsonl`` (a ``task_scores`` event every few
epochs holding each task's validation score: a curve per task) and the worker; what it
keeps besides is ``columns.json`` (the table as read: items, tasks, split, notes),
``heads.safetensors`` (the shared layer and one head per task, the tag thresholds and
temperatures) and ``val_outputs.json`` (the validation probabilities, computed once when
training ends, which ``evaluate`` reads). The frozen backbone's embeddings come from the
one embedding cache beside the runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from tlcore.data.columns import ColumnsData, read_columns
from tlcore.errors import DataError, RunError
from tlcore.runs.files import append_event, now_iso, read_json, write_json_atomic
from tlcore.runs.run import Run, package_versions
from tlcore.training.config import TrainConfig

COLUMNS = {"modality": "image", "target": "columns"}
COLUMNS_FILE = "columns.json"
HEADS_FILE = "heads.safetensors"
OUTPUTS_FILE = "val_outputs.json"


def create_columns_run(
    config: TrainConfig, tasks: list[str] | None, group: str | None
) -> tuple[Run, ColumnsData]:
    """Read the table (``config.data``), write the run directory; nothing trains yet."""
    data = read_columns(config.data, tasks=tasks, group=group, val_fraction=config.val_fraction,
                        seed=config.seed)  # fmt: skip
    run = Run.new_folder(config)
    data.save(run.dir / COLUMNS_FILE)
    write_json_atomic(run.config_path, {
        "id": run.id, "created": now_iso(), "owner": config.owner, "task": dict(COLUMNS),
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
    from tlcore.training.embedder import Embedder

    return Embedder(config.model, config.weights, config.img_size, config.device, cache_dir)


def train_columns_run(run: Run, resume: bool = False) -> str:
    """Embed (cached), train the heads, choose thresholds and temperatures, keep the
    validation outputs once; the final state. Called by the worker (``tlcore.runs.worker``)."""
    from tlcore.training import embedding_cache
    from tlcore.training import multitask as mt

    started = time.monotonic()
    config = run.config
    data = columns_data(run)
    pid = os.getpid()
    run.write_status("running", pid=pid, message="Loading the backbone.")
    embedder = embedder_for(config, embedding_cache.folder(run.dir.parent))
    paths = [item.path for item in data.items]

    def told(done: int, total: int) -> None:
        if done == total or done % 64 < 32:
            run.write_status(
                "running", pid=pid, message=f"Embedding the photos: {done} of {total}."
            )

    x, embedded = mt.embed_paths(embedder, paths, told)
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
    thresholds = {t.task.name: mt.choose_thresholds(t, torch.sigmoid(logits[t.task.name]).numpy())
                  for t in va if t.task.kind == "tags"}  # fmt: skip
    temperatures = {t.task.name: mt.fit_temperature(t, logits[t.task.name])
                    for t in va if t.task.kind != "tags"}  # fmt: skip
    mt.save_heads(run.dir / HEADS_FILE, fit.model, data.tasks, thresholds, temperatures)
    probs = mt.predict_probs(fit.model, x[val_at], temperatures)
    scores = {t.task.name: mt.score(t, probs[t.task.name], thresholds.get(t.task.name)) for t in va}
    write_json_atomic(run.dir / OUTPUTS_FILE, {
        "paths": [item.path for item in val_items],
        "probs": {name: p.round(5).tolist() for name, p in probs.items()},
        "thresholds": thresholds, "temperatures": temperatures, "scores": scores,
        "embedded_now": embedded, "seconds": time.monotonic() - started,
    })  # fmt: skip
    words = "; ".join(f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()
                      if k != "items" and v is not None) for name, s in scores.items())  # fmt: skip
    run.write_status("finished", pid=pid, epoch=config.epochs, message=f"Finished: {words}.",
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
        else:
            y = t.y.numpy()
            wrong = [(float(probs[i].max()), i) for i in range(len(items))
                     if mask[i] and probs[i].argmax() != y[i]]  # fmt: skip
            wrong.sort(reverse=True)
            entry["worst"] = [{"path": items[i].path, "true": task.classes[y[i]],
                               "predicted": task.classes[int(probs[i].argmax())], "probability": round(p, 4)}
                              for p, i in wrong[:5]]  # fmt: skip
        report["tasks"][task.name] = entry
    return report


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


def predict_columns(run: Run, photos: list[str]) -> list[dict[str, Any]]:
    """Every task's answer per photo: the class and its probability (calibrated by the
    task's temperature), or the tags above their thresholds with their probabilities."""
    from tlcore.training import embedding_cache
    from tlcore.training import multitask as mt

    heads = run.dir / HEADS_FILE
    if not heads.is_file():
        raise RunError(f"run {run.id} has no trained heads: it has not finished training.")
    model, tasks, thresholds, temperatures = mt.load_heads(heads)
    for photo in photos:
        if not Path(photo).is_file():
            raise DataError(f"no photo at {photo}.")
    embedder = embedder_for(run.config, embedding_cache.folder(run.dir.parent))
    x, _ = mt.embed_paths(embedder, [str(Path(p).resolve()) for p in photos])
    probs = mt.predict_probs(model, x, temperatures)
    answers = []
    for row, photo in enumerate(photos):
        result: dict[str, Any] = {}
        for task in tasks:
            p = probs[task.name][row]
            if task.kind == "tags":
                cut = thresholds.get(task.name, [0.5] * len(task.classes))
                above = [j for j in range(len(task.classes)) if p[j] >= cut[j]]
                result[task.name] = {"labels": [task.classes[j] for j in above],
                                     "probability": {task.classes[j]: round(float(p[j]), 4) for j in above}}  # fmt: skip
            else:
                best = int(p.argmax())
                result[task.name] = {
                    "label": task.classes[best],
                    "probability": round(float(p[best]), 4),
                }
        answers.append({"path": photo, "tasks": result})
    return answers
