"""Feature-extraction defaults on both samples: as accurate as a tuned logistic regression,
in about the time of one embedding pass.

For each sample (ants/bees, clothing4), with the bundled Lite0:
- the defaults: ``Trainer(TrainConfig(data=...))`` built and fitted, end to end (model,
  one embedding pass over train + val, C by 5-fold CV on the training photos, L-BFGS);
- baseline time: one embedding pass over train + val through the product's loader,
  with the model already built (the least any feature extraction can cost);
- baseline accuracy, on the very same embeddings, with scikit-learn's
  ``LogisticRegression`` (L-BFGS): (a) C from five values by stratified 5-fold CV on
  the training photos, the honest tuned model; (b) the best of the five C values on
  the validation photos themselves (an optimistic bound: it peeks at validation);
- for context, the old fast path: AdamW head, 20 epochs, on the cached embeddings.

Targets: accuracy within 1 point of (a) and time <= 1.5x one pass. Validation sets are
small (40 and 60 photos), so one photo is 2.5 or 1.7 points: (b) is reported, not a target.
``TLCORE_BENCH_HEAD_IMG_SIZE`` (default 128 for ``make bench``; 224 is the model's own),
``TLCORE_BENCH_HEAD_VIEWS=0,2,4,8`` also measures cached augmented views (slow);
``TLCORE_BENCH_HEAD_SAMPLES=clothing4`` measures one sample.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import row, say, timed

C_VALUES = (0.01, 0.1, 1.0, 10.0, 100.0)
ROOT = Path(__file__).resolve().parents[1]


def img_size() -> int:
    return int(os.environ.get("TLCORE_BENCH_HEAD_IMG_SIZE", "128"))


def embedding_pass(trainer: Any) -> float:
    """Seconds for one pass of the trainer's model over train + val (model already built)."""
    from tlcore.training.features import embed

    loaders = [trainer.loader(trainer.plain_train_set), trainer.loader(trainer.val_set)]
    return timed(lambda: [embed(trainer.model, loader, trainer.device) for loader in loaders])[0]


def tuned_logistic_regression(trainer: Any) -> tuple[float, float, float]:
    """(val accuracy with C by 5-fold CV on train, its C, best val accuracy over the C values)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = (t.cpu().numpy() for t in trainer.embeddings["train"])
    xv, yv = (t.cpu().numpy() for t in trainer.embeddings["val"])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)

    def model(c: float) -> Any:
        return LogisticRegression(C=c, max_iter=5000)

    cv = {c: cross_val_score(model(c), x, y, cv=folds).mean() for c in C_VALUES}
    best_cv = max(cv.values())
    chosen = min(c for c in C_VALUES if cv[c] == best_cv)
    val = {c: float((model(c).fit(x, y).predict(xv) == yv).mean()) for c in C_VALUES}
    return val[chosen], chosen, max(val.values())


def one_sample(name: str, size: int, tmp: Path) -> list[dict]:
    from tlcore.data.prepare import prepare_data
    from tlcore.training.config import TrainConfig
    from tlcore.training.trainer import Trainer

    data = ROOT / "assets" / name
    manifest = prepare_data(data, manifest_path=tmp / f"{name}.json").manifest
    cache = tmp / f"cache-{name}"
    config = TrainConfig(data=str(data), img_size=size, device="cpu")
    # timm is loaded before the clock starts, as in a worker process: its first import takes
    # about 2 s, paid once per process by every kind of run alike
    import timm  # noqa: F401

    started = time.perf_counter()
    trainer = Trainer(config, manifest, cache_dir=cache)
    trainer.fit()
    default_s = time.perf_counter() - started
    last = trainer.evaluate()[1]
    one_pass = embedding_pass(trainer)
    fair, chosen, peek = tuned_logistic_regression(trainer)
    old = Trainer(TrainConfig(**(config.to_dict() | {"epochs": 20, "head_solver": "optimizer"})),
                  manifest, cache_dir=cache)  # fmt: skip
    old.fit()
    n = len(trainer.plain_train_set) + len(trainer.val_set)
    say(f"{name} at {size} px, {n} photos: defaults val acc {last:.3f} (C {trainer.head_fit.c:g} "
        f"by {trainer.head_fit.folds}-fold CV) in {default_s:.1f} s; one embedding pass "
        f"{one_pass:.1f} s; tuned LR (CV on train, C {chosen:g}) {fair:.3f}, best C on val "
        f"{peek:.3f}; old fast path (AdamW, 20 epochs) {old.evaluate()[1]:.3f}")  # fmt: skip
    gap = fair - last
    return [
        row(f"{name}: defaults' val accuracy vs tuned LR (C by CV on train)", last, fair,
            gap, "<= 0.01 below", gap <= 0.01 + 1e-9, "accuracy",
            f"ratio column = points below; best C on val {peek:.3f}"),
        row(f"{name}: defaults' time vs one embedding pass ({size} px)", default_s, one_pass,
            default_s / one_pass, "<= 1.5x", default_s / one_pass <= 1.5, "s",
            "defaults: model + embed + CV + L-BFGS"),
    ] + views_rows(name, config, manifest, tmp, one_pass, fair)  # fmt: skip


def views_rows(name: str, config: Any, manifest: Any, tmp: Path, one_pass: float,
               reference: float) -> list[dict]:  # fmt: skip
    """Accuracy and time of K cached augmented views per training photo (opt-in: slow)."""
    from tlcore.training.config import TrainConfig
    from tlcore.training.trainer import Trainer

    wanted = os.environ.get("TLCORE_BENCH_HEAD_VIEWS", "")
    rows = []
    for k in [int(v) for v in wanted.split(",") if v.strip()]:
        changes = {"augment": "light" if k else "none", "augment_views": k}
        trainer = Trainer(TrainConfig(**(config.to_dict() | changes)), manifest,
                          cache_dir=tmp / f"views-{name}-{k}")  # fmt: skip
        seconds, _ = timed(trainer.fit)
        acc = trainer.evaluate()[1]
        rows.append(row(f"{name}: {k} augmented views", acc, reference, acc - reference,
                        "report", None, "accuracy",
                        f"{seconds:.1f} s = {seconds / one_pass:.2f} embedding passes; "
                        f"{acc / seconds:.4f} accuracy/s"))  # fmt: skip
    return rows


def run() -> list[dict]:
    torch.manual_seed(0)
    np.random.seed(0)
    size = img_size()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        chosen = os.environ.get("TLCORE_BENCH_HEAD_SAMPLES", "ants-bees,clothing4")
        for name in [n.strip() for n in chosen.split(",") if n.strip()]:
            rows += one_sample(name, size, Path(tmp))
    return rows
