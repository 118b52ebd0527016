"""The seeds' question: does one multitask model beat separate single-task models?

``python -m benchmarks.multitask_vs_single [TABLE] [--tasks a,b] [--group COLUMN] [--splits N]``
(default: the bundled clothing-attributes sample, tasks garment and kids, grouped by
sender) embeds every photo once with the bundled Lite0 through the one embedding
cache, then on each of N seeded splits trains on the same embeddings, with the same
epochs and learning rate:

- ``multitask``: one shared hidden layer and one head per task (``tlcore.training.multitask``),
- ``single``: the same network trained on one task at a time (one model per task),
- ``logreg``: scikit-learn's logistic regression per task on the standardised frozen
  embeddings (the reference; C chosen on a third of the training photos held out),

and prints per task the validation scores (mean and spread over the splits) and the
seconds each took, with the group column and without it (photo-by-photo split: how much
a validation score is flattered when one sender's photos land on both sides). The three
ways are ``tlcore.lab.columns_compare`` (``tlcore compare --data labels.csv`` and the
Evaluate page ask the same question on one split, in words).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tlcore import settings
from tlcore.data.columns import read_columns
from tlcore.lab.columns_compare import compare_split, summarise
from tlcore.training import embedding_cache
from tlcore.training import multitask as mt
from tlcore.training.embedder import Embedder

SAMPLE = settings.PROJECT_ROOT / "assets" / "clothing-attributes" / "labels.csv"


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
            runs.append(compare_split(data, x, args.epochs, seed=seed))
            print(f"{label}, split {seed}: {runs[-1]['seconds']}", file=sys.stderr, flush=True)
        report[label] = summarise(runs) | {"groups_per_side": groups[0]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
