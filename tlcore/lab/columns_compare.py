"""The seeds' question as an experiment: one multitask model against one model per task.

Several label columns can be learned by one shared model (``tlcore.training.multitask``:
one shared layer, one head per task) or by a separate model per task. The articles teach
that a small task gains from what the others learn; this module measures it on the
person's own table, with the same data and budget for every way:

- ``multitask``: the shared layer and every head, trained together;
- ``single``: the same network trained on one task at a time (one model per task);
- ``logreg``: scikit-learn's logistic regression per task on the standardised frozen
  embeddings, the reference a newcomer should beat.

Every item is embedded once through the one embedding cache (a run of the same table and
size has already done it: seconds). All ways train on the same split (the group column
respected), with the same epochs and learning rate; the networks are trained with a few
seeds and the spread of the gap (seeds, and a bootstrap of the validation items) decides
whether a gain is real or within the noise. One split is one split: the answer says so,
and ``benchmarks/multitask_vs_single.py`` repeats it over several.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlcore.data.columns import ColumnsData, ColumnTask, read_columns
from tlcore.training import multitask as mt

WAYS = ("multitask", "single", "logreg")
WAY_WORDS = {"multitask": "one shared model", "single": "a model per task",
             "logreg": "logistic regression (reference)"}  # fmt: skip
METRIC_WORDS = {"accuracy": "accuracy", "macro_f1": "average F1 over classes",
                "map": "mean average precision", "micro_f1": "F1 over all tags"}  # fmt: skip
BOOTSTRAP = 100  # resamples of the validation items for the spread of a gap


def primary_metric(task: ColumnTask) -> str:
    """The score a gain is judged on: a rare class counts as much as a common one
    (average F1 over classes), or the tags' ranking, which needs no threshold (mAP)."""
    return "map" if task.kind == "tags" else "macro_f1"


def per_class_items(task: ColumnTask) -> float:
    """Labelled items per class (per tag: items carrying it): the smaller, the smaller the task."""
    if task.kind == "tags":
        return min(task.counts.values()) if task.counts else 0.0
    return task.labelled / max(1, len(task.classes))


# -- the three ways on one split ----------------------------------------------------------------
def logreg_scores(x_tr: np.ndarray, x_va: np.ndarray, t_tr: mt.TaskTargets,
                  t_va: mt.TaskTargets) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """Logistic regression on the standardised embeddings (C chosen on a third of the training
    items held out, for one-of; a fixed small C per tag): scores and validation probabilities."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import ShuffleSplit
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_tr)
    a, b = scaler.transform(x_tr), scaler.transform(x_va)
    m = t_tr.mask.numpy()
    if t_tr.task.kind == "tags":
        y = t_tr.y.numpy()[m]
        probs = np.zeros((len(b), y.shape[1]))
        some = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]  # a tag on every
        if some:  # item (or on none) has nothing to learn: its probability is its rate
            clf = OneVsRestClassifier(LogisticRegression(C=0.05, max_iter=2000, tol=1e-3))
            probs[:, some] = clf.fit(a[m], y[:, some]).predict_proba(b)
        for j in set(range(y.shape[1])) - set(some):
            probs[:, j] = y[:, j].mean() if len(y) else 0.0
        return mt.score(t_va, probs, mt.choose_thresholds(t_va, probs)), probs
    held_out = ShuffleSplit(n_splits=1, test_size=1 / 3, random_state=0)  # one fold: seconds
    clf = LogisticRegressionCV(Cs=[0.003, 0.03, 0.3], cv=held_out, max_iter=1000, tol=1e-3)
    with warnings.catch_warnings():  # scikit-learn's notes on its future defaults
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(a[m], t_tr.y.numpy()[m])
    probs = np.zeros((len(b), len(t_tr.task.classes)))
    probs[:, clf.classes_] = clf.predict_proba(b)
    return mt.score(t_va, probs), probs


def _scores(model: mt.MultiHead, x_va: torch.Tensor, targets_va: Sequence[mt.TaskTargets],
            ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:  # fmt: skip
    probs = mt.predict_probs(model, x_va)
    res = {}
    for t in targets_va:
        p = probs[t.task.name]
        cut = mt.choose_thresholds(t, p) if t.task.kind == "tags" else None
        res[t.task.name] = mt.score(t, p, cut)
    return res, probs


def compare_split(data: ColumnsData, x: torch.Tensor, epochs: int = 60, lr: float = 2e-3,
                  seed: int = 0, logreg: bool = True) -> dict[str, Any]:  # fmt: skip
    """The three ways on ``data``'s split: per way, per task its validation scores; the
    validation probabilities (``probs``) and the seconds each way took."""
    tr_at = [i for i, it in enumerate(data.items) if it.split == "train"]
    va_at = [i for i, it in enumerate(data.items) if it.split == "val"]
    tr_items, va_items = [data.items[i] for i in tr_at], [data.items[i] for i in va_at]
    tr = [mt.targets(data, tr_items, t) for t in data.tasks]
    va = [mt.targets(data, va_items, t) for t in data.tasks]
    out: dict[str, Any] = {way: {} for way in WAYS} | {
        "seconds": {},
        "probs": {w: {} for w in WAYS},
    }
    started = time.perf_counter()
    fit = mt.fit_heads(x[tr_at], tr, epochs=epochs, lr=lr, seed=seed)
    out["multitask"], out["probs"]["multitask"] = _scores(fit.model, x[va_at], va)
    out["seconds"]["multitask"] = time.perf_counter() - started
    started = time.perf_counter()
    for t_tr, t_va in zip(tr, va, strict=True):
        fit = mt.fit_heads(x[tr_at], [t_tr], epochs=epochs, lr=lr, seed=seed)
        scores, probs = _scores(fit.model, x[va_at], [t_va])
        out["single"].update(scores)
        out["probs"]["single"].update(probs)
    out["seconds"]["single"] = time.perf_counter() - started
    if not logreg:
        return out
    started = time.perf_counter()
    for t_tr, t_va in zip(tr, va, strict=True):
        name = t_tr.task.name
        out["logreg"][name], out["probs"]["logreg"][name] = logreg_scores(
            x[tr_at].numpy(), x[va_at].numpy(), t_tr, t_va
        )
    out["seconds"]["logreg"] = time.perf_counter() - started
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± spread of every score over several splits (the benchmark's table)."""
    result: dict[str, Any] = {}
    for way in WAYS:
        result[way] = {}
        for task in runs[0][way]:
            keys = [k for k, v in runs[0][way][task].items() if k != "items" and v is not None]
            result[way][task] = {k: f"{np.mean([r[way][task][k] for r in runs]):.3f} ± "
                                    f"{np.std([r[way][task][k] for r in runs]):.3f}" for k in keys}  # fmt: skip
        result[way]["seconds"] = round(float(np.mean([r["seconds"][way] for r in runs])), 2)
    return result


def _bootstrap_gap(t: mt.TaskTargets, shared: np.ndarray, alone: np.ndarray, metric: str,
                   seed: int = 0) -> float:  # fmt: skip
    """The spread (standard deviation) of the gap in ``metric`` between two ways' validation
    probabilities when the validation items are drawn again (paired, with replacement)."""
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(t.mask.numpy())
    if len(labelled) < 2:
        return 0.0
    cut_a = mt.choose_thresholds(t, shared) if t.task.kind == "tags" else None
    cut_b = mt.choose_thresholds(t, alone) if t.task.kind == "tags" else None
    gaps = []
    for _ in range(BOOTSTRAP):
        pick = rng.choice(labelled, len(labelled))
        drawn = mt.TaskTargets(t.task, t.y[pick], t.mask[pick])
        a = mt.score(drawn, shared[pick], cut_a).get(metric)
        b = mt.score(drawn, alone[pick], cut_b).get(metric)
        if a is not None and b is not None:
            gaps.append(a - b)
    return float(np.std(gaps)) if gaps else 0.0


# -- the experiment -----------------------------------------------------------------------------
def compare_columns(
    table: str | Path,
    tasks: Sequence[str] | None = None,
    group: str | None = None,
    *,
    model: str = "tf_efficientnet_lite0",
    weights: str = "bundled",
    img_size: int = 224,
    epochs: int = 60,
    lr: float = 2e-3,
    seed: int = 0,
    seeds: int = 3,
    val_fraction: float = 0.2,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One shared model, a model per task and the logistic-regression reference on the same
    split of ``table``: per task the scores of each way, the gap on its main score with its
    spread, and ``answer``, the finding in words (DataError/ConfigError in words). The same
    question asked again in this process (a page rerun, the CLI then the page) is answered
    from memory while the table is unchanged."""
    import copy

    from tlcore.training import embedding_cache

    cache_dir = cache_dir or embedding_cache.folder()
    stat = Path(table).stat() if Path(table).is_file() else None
    key = (str(Path(table).resolve()), stat and (stat.st_mtime_ns, stat.st_size),
           tuple(tasks) if tasks else None, group, model, weights, img_size, epochs, lr, seed,
           seeds, val_fraction, device, str(cache_dir))  # fmt: skip
    if key not in _ANSWERED:
        _ANSWERED[key] = _compare(table, tasks, group, model, weights, img_size, epochs, lr,
                                  seed, seeds, val_fraction, device, cache_dir, progress)  # fmt: skip
        while len(_ANSWERED) > 8:
            _ANSWERED.pop(next(iter(_ANSWERED)))
    return copy.deepcopy(_ANSWERED[key])


_ANSWERED: dict[tuple[Any, ...], dict[str, Any]] = {}


def _compare(table: str | Path, tasks: Sequence[str] | None, group: str | None, model: str,
             weights: str, img_size: int, epochs: int, lr: float, seed: int, seeds: int,
             val_fraction: float, device: str, cache_dir: Path | None,
             progress: Callable[[str], None] | None) -> dict[str, Any]:  # fmt: skip
    import dataclasses

    from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL, is_text_model
    from tlcore.runs.columns_run import embedder_for
    from tlcore.training import embedding_cache
    from tlcore.training.columns_text import embed_items
    from tlcore.training.config import TrainConfig

    say = progress or (lambda _line: None)
    started = time.perf_counter()
    data = read_columns(table, tasks=tasks, group=group, val_fraction=val_fraction, seed=seed)
    config = TrainConfig(data=str(table), model=model, weights=weights, img_size=img_size,
                         device=device, seed=seed, epochs=epochs, lr=lr)  # fmt: skip
    if data.modality == "text" and not is_text_model(model):
        config = dataclasses.replace(config, model=DEFAULT_TEXT_MODEL, weights="bundled")
    say(f"Embedding {len(data.items)} items (cached ones are read back).")
    embedder = embedder_for(config, cache_dir or embedding_cache.folder())
    x, embedded = embed_items(embedder, data.items)
    embed_s = time.perf_counter() - started
    say("Training one shared model, a model per task and the reference.")
    splits = [compare_split(data, x, epochs, lr, seed + s, logreg=s == 0)
              for s in range(max(1, seeds))]  # fmt: skip
    first = splits[0]
    va = [mt.targets(data, data.items_for("val"), t) for t in data.tasks]
    rows: dict[str, Any] = {}
    for t in va:
        name, metric = t.task.name, primary_metric(t.task)
        shared = [s["multitask"][name][metric] for s in splits]
        alone = [s["single"][name][metric] for s in splits]
        gap = spread = None  # a task with no validation item labelled has no score
        if None not in shared + alone:
            seed_sd = float(np.std(np.subtract(shared, alone))) if len(splits) > 1 else 0.0
            boot_sd = _bootstrap_gap(t, first["probs"]["multitask"][name],
                                     first["probs"]["single"][name], metric, seed)  # fmt: skip
            gap = round(float(np.mean(shared) - np.mean(alone)), 4)
            spread = round(2 * float(np.hypot(seed_sd, boot_sd)), 4)
        rows[name] = {
            "kind": t.task.kind, "classes": len(t.task.classes), "labelled": t.task.labelled,
            "per_class": round(per_class_items(t.task), 1), "val_items": int(t.mask.sum()),
            "metric": metric,
            "multitask": _mean_scores([s["multitask"][name] for s in splits]),
            "single": _mean_scores([s["single"][name] for s in splits]),
            "logreg": {k: v for k, v in first["logreg"][name].items() if k != "items"},
            "gain": gap, "spread": spread,
            "clear": gap is not None and abs(gap) > spread,
        }  # fmt: skip
    smallest = min(data.tasks, key=per_class_items).name
    result = {
        "table": Path(table).name, "modality": data.modality, "items": len(data.items),
        "train_items": len(data.items_for("train")), "val_items": len(data.items_for("val")),
        "group": data.group, "groups": data.groups, "splits": 1, "seeds": len(splits),
        "epochs": epochs, "lr": lr, "embedded_now": embedded, "smallest": smallest,
        "tasks": rows,
        "seconds": {"embedding": round(embed_s, 2),
                    **{w: round(float(np.mean([s["seconds"][w] for s in splits if w in s["seconds"]])), 2)
                       for w in WAYS}},
    }  # fmt: skip
    result["answer"] = answer_in_words(result)
    return result


def _mean_scores(scores: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = [k for k in scores[0] if k != "items"]
    return {k: (None if any(s[k] is None for s in scores)
                else round(float(np.mean([s[k] for s in scores])), 4)) for k in keys}  # fmt: skip


def answer_in_words(result: dict[str, Any]) -> str:
    """The finding: which task is the small one, whether it gained from the shared model and
    by how much against the spread, the others in a clause each, the reference, the caveat."""
    rows, small = result["tasks"], result["smallest"]
    where = (f"grouped by {result['group']!r}: {result['groups'].get('train', 0)} groups in "
             f"training, {result['groups'].get('val', 0)} in validation"
             if result.get("group") else "item by item")  # fmt: skip
    unit = "classes" if rows[small]["kind"] != "tags" else "tags"
    per = (f"about {rows[small]['per_class']:.0f} labelled items per class" if unit == "classes"
           else f"its rarest tag on {rows[small]['per_class']:.0f} items")  # fmt: skip
    lead = (f"On one split ({where}; {result['val_items']} validation items), the smallest task "
            f"is {small!r} ({rows[small]['classes']} {unit}, {per}). ")  # fmt: skip
    if len(rows) == 1:  # the shared model is then the task's own: nothing to share
        lead += ("With one column there is nothing to share: the shared model is the "
                 "column's own model (choose two or more columns to ask the question).")  # fmt: skip
        parts = [lead]
    else:
        parts = [lead + _task_sentence(small, rows[small], result["seeds"], first=True)]
    parts += [
        _task_sentence(name, row, result["seeds"]) for name, row in rows.items() if name != small
    ]
    ref = ", ".join(f"{name!r} {row['logreg'].get(row['metric']):.3f}" for name, row in rows.items()
                    if row["logreg"].get(row["metric"]) is not None)  # fmt: skip
    if ref:
        parts.append(f"Logistic regression on the frozen embeddings, the reference: {ref}.")
    parts.append("One split only: another split can move these scores by more than the gap "
                 "(benchmarks/multitask_vs_single.py repeats it over several).")  # fmt: skip
    return " ".join(parts)


def _task_sentence(name: str, row: dict[str, Any], seeds: int, first: bool = False) -> str:
    metric = row["metric"]
    shared, alone = row["multitask"].get(metric), row["single"].get(metric)
    if shared is None or alone is None:
        return f"{name!r} could not be scored on its validation items."
    gap, spread = row["gain"], row["spread"]
    if not row["clear"]:
        verdict = "within the spread, so no clear gain or loss"
    elif gap > 0:
        verdict = "beyond the spread: it gains from the shared model"
    else:
        verdict = "beyond the spread: it loses from sharing"
    who = "The shared model scores" if first else f"For {name!r}, the shared model scores"
    return (f"{who} {shared:.3f} {METRIC_WORDS[metric]} against {alone:.3f} for a model of its "
            f"own: {gap:+.3f}, {verdict} (±{spread:.3f}: {seeds} training seeds and the "
            "validation items drawn again).")  # fmt: skip
