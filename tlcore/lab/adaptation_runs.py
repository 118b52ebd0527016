"""A DANN run and its baseline, started as a pair and compared side by side.

"Did adaptation help?" has an honest answer only against a run that differs in
nothing but the adaptation: same data, seed, layers, epochs, image size, and the
same target photos scored the same way. ``paired_configs`` builds that pair;
``comparison_rows`` reads each run's last epoch (never a target-picked best one:
target labels must not choose the model) for the table the page and CLI show.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from typing import Any

from tlcore.errors import ConfigError, TLCoreError
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

DANN_FREEZE = {"preset": "last-k", "k": 2}  # head + the last backbone group
PAIR_PREFIX = "adapt"


def trains_backbone(freeze: dict[str, Any]) -> bool:
    """False for plans that only ever train the classifier (DANN then has nothing to adapt)."""
    return freeze.get("preset") != "features" and not (
        freeze.get("preset") == "last-k" and int(freeze.get("k", 1)) < 2
    )


def paired_configs(
    config: TrainConfig, target_data: str, dann_weight: float = 1.0
) -> tuple[TrainConfig, TrainConfig]:
    """(baseline, dann): identical but for ``domain_adaptation``; both score the target photos.

    A plan that trains only the classifier is widened to the last backbone group,
    for both runs, so the baseline stays a fair comparison.
    """
    if not str(target_data or "").strip():
        raise ConfigError("Choose the target-domain photos first (a folder or a .zip).")
    freeze = dict(config.freeze) if trains_backbone(config.freeze) else dict(DANN_FREEZE)
    tag = f"{PAIR_PREFIX}-{secrets.token_hex(3)}"
    common = {"target_data": str(target_data), "freeze": freeze, "dann_weight": float(dann_weight)}
    if hasattr(config, "nproc"):
        common["nproc"] = 1  # DANN runs in one process; the baseline matches it
    baseline = dataclasses.replace(
        config, **common, domain_adaptation="none", name=f"{tag} baseline"
    ).validate()
    dann = dataclasses.replace(
        config, **common, domain_adaptation="dann", name=f"{tag} dann"
    ).validate()
    return baseline, dann


def start_pair(config: TrainConfig, target_data: str, dann_weight: float = 1.0) -> tuple[Run, Run]:
    """Create both runs and start their workers (the device queue runs them in turn)."""
    baseline, dann = paired_configs(config, target_data, dann_weight)
    return Run.start(baseline), Run.start(dann)


def comparison_row(run: Run) -> dict[str, Any]:
    """One run's adaptation figures at its last finished epoch (None where not measured)."""
    config = run.config
    epochs = run.epochs()
    last = epochs[-1] if epochs else {}
    return {
        "run": run.id,
        "pair": config.name.split(" ")[0] if config.name.startswith(PAIR_PREFIX) else "",
        "adaptation": "DANN" if config.domain_adaptation == "dann" else "none (baseline)",
        "state": run.status().get("state"),
        "epochs": f"{len(epochs)}/{config.epochs}",
        "source val accuracy": last.get("source_val_acc", last.get("val_acc")),
        "target accuracy": last.get("target_acc"),
        "domain classifier accuracy": last.get("domain_acc"),
        "target photos": last.get("target_images"),
        "labelled target photos": last.get("target_labelled"),
        "dann weight": config.dann_weight if config.domain_adaptation == "dann" else None,
        "target folder": config.target_data,
    }


def comparison_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Rows for every run that was given target photos (others are left out)."""
    rows = []
    for run in runs:
        try:
            if run.config.target_data:
                rows.append(comparison_row(run))
        except (TLCoreError, OSError, KeyError, TypeError):  # being created or deleted: skip
            continue
    return rows


def pair_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest pair where both runs reported target accuracy: with vs without adaptation."""
    by_pair: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row["pair"]:
            kind = "dann" if row["adaptation"] == "DANN" else "baseline"
            by_pair.setdefault(row["pair"], {}).setdefault(kind, row)
    for pair in sorted(by_pair, key=lambda p: max(r["run"] for r in by_pair[p].values()))[::-1]:
        both = by_pair[pair]
        if all(k in both and both[k]["target accuracy"] is not None for k in ("dann", "baseline")):
            return {"pair": pair, "baseline": both["baseline"], "dann": both["dann"]}
    return None
