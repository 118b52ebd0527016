"""The seeds' question: does one multitask model beat separate single-task models?

``python -m benchmarks.multitask_vs_single [TABLE] [--tasks a,b] [--group COLUMN] [--splits N]``
(default: the bundled clothing-attributes sample, tasks garment and kids, grouped by
sender) embeds every photo once with the bundled Lite0 through the one embedding
cache, then on each of N seeded splits trains on the same embeddings, with the same
epochs and learning rate:

- ``multitask``: one shared hidden layer and one head per task (``tlcore.training.multitask``),
- ``single``: the same network trained on one task at a time (one model per task),
- ``logreg``: scikit-learn's logistic regression per task on the standardised frozen
  embeddings (the reference; C chosen by 3-fold cross-validation on the training photos),

and prints per task the validation scores (mean and spread over the splits) and the
seconds each took, with the group column and without it (photo-by-photo split: how much
a validation score is flattered when one sender's photos land on both sides).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tlcore import settings
from tlcore.data.columns import read_columns
from tlcore.training import embedding_cache
from tlcore.training import multitask as mt
from tlcore.training.embedder import Embedder

SAMPLE = settings.PROJECT_ROOT / "assets" / "clothing-attributes" / "labels.csv"


def logreg_scores(
    x_tr: np.ndarray, x_va: np.ndarray, t_tr: mt.TaskTargets, t_va: mt.TaskTargets
) -> dict:
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_tr)
    a, b = scaler.transform(x_tr), scaler.transform(x_va)
    m = t_tr.mask.numpy()
    if t_tr.task.kind == "tags":
        clf = OneVsRestClassifier(LogisticRegression(C=0.05, max_iter=2000)).fit(
            a[m], t_tr.y.numpy()[m]
        )
        probs = clf.predict_proba(b)
        return mt.score(t_va, probs, mt.choose_thresholds(t_va, probs))
    clf = LogisticRegressionCV(Cs=[0.003, 0.03, 0.3], cv=3, max_iter=1000)
    clf.fit(a[m], t_tr.y.numpy()[m])
    probs = np.zeros((len(b), len(t_tr.task.classes)))
    probs[:, clf.classes_] = clf.predict_proba(b)
    return mt.score(t_va, probs)


def one_split(data, x: torch.Tensor, epochs: int, seed: int) -> dict:
    tr_at = [i for i, it in enumerate(data.items) if it.split == "train"]
    va_at = [i for i, it in enumerate(data.items) if it.split == "val"]
    tr_items, va_items = [data.items[i] for i in tr_at], [data.items[i] for i in va_at]
    tr = [mt.targets(data, tr_items, t) for t in data.tasks]
    va = [mt.targets(data, va_items, t) for t in data.tasks]
    out: dict = {"multitask": {}, "single": {}, "logreg": {}, "seconds": {}}

    def scores(model, targets_va):
        logits = mt.predict_logits(model, x[va_at])
        res = {}
        for t in targets_va:
            p = mt.predict_probs(model, x[va_at])[t.task.name]
            cut = mt.choose_thresholds(t, p) if t.task.kind == "tags" else None
            res[t.task.name] = mt.score(t, p, cut)
        del logits
        return res

    started = time.perf_counter()
    fit = mt.fit_heads(x[tr_at], tr, epochs=epochs, seed=seed)
    out["multitask"] = scores(fit.model, va)
    out["seconds"]["multitask"] = time.perf_counter() - started
    started = time.perf_counter()
    for t_tr, t_va in zip(tr, va, strict=True):
        fit = mt.fit_heads(x[tr_at], [t_tr], epochs=epochs, seed=seed)
        out["single"].update(scores(fit.model, [t_va]))
    out["seconds"]["single"] = time.perf_counter() - started
    started = time.perf_counter()
    for t_tr, t_va in zip(tr, va, strict=True):
        out["logreg"][t_tr.task.name] = logreg_scores(
            x[tr_at].numpy(), x[va_at].numpy(), t_tr, t_va
        )
    out["seconds"]["logreg"] = time.perf_counter() - started
    return out


def summarise(runs: list[dict]) -> dict:
    result: dict = {}
    for way in ("multitask", "single", "logreg"):
        result[way] = {}
        for task in runs[0][way]:
            keys = [k for k, v in runs[0][way][task].items() if k != "items" and v is not None]
            result[way][task] = {k: f"{np.mean([r[way][task][k] for r in runs]):.3f} ± "
                                    f"{np.std([r[way][task][k] for r in runs]):.3f}" for k in keys}  # fmt: skip
        result[way]["seconds"] = round(float(np.mean([r["seconds"][way] for r in runs])), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("table", nargs="?", default=str(SAMPLE))
    parser.add_argument("--tasks", default="garment,kids")
    parser.add_argument("--group", default="sender")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--img-size", type=int, default=224)
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    embedder = Embedder(img_size=args.img_size, cache_dir=embedding_cache.folder())
    first = read_columns(args.table, tasks=tasks, group=args.group or None)
    started = time.perf_counter()
    x, embedded = mt.embed_paths(embedder, [it.path for it in first.items])
    embed_s = time.perf_counter() - started
    report = {"table": Path(args.table).name, "photos": len(first.items), "embedding_seconds": round(embed_s, 1),
              "embedded_now": embedded, "splits": args.splits, "epochs": args.epochs}  # fmt: skip
    grouped = [(f"grouped by {args.group}", args.group)] if args.group else []
    for label, group in [*grouped, ("photo by photo", None)]:
        runs, groups = [], []
        for seed in range(args.splits):
            data = read_columns(args.table, tasks=tasks, group=group, seed=seed)
            assert [it.path for it in data.items] == [it.path for it in first.items]
            groups.append(data.groups)
            runs.append(one_split(data, x, args.epochs, seed))
            print(f"{label}, split {seed}: {runs[-1]['seconds']}", file=sys.stderr, flush=True)
        report[label] = summarise(runs) | {"groups_per_side": groups[0]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
