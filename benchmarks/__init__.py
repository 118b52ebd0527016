"""Benchmarks of tlcore's fast paths, each against its baseline in the same process.

Convention: every ``benchmarks/bench_<name>.py`` exposes ``run() -> list[dict]``
(one dict a measured row: name, fast, baseline, ratio, target, passed, unit,
notes) and prints its own lines. ``python -m benchmarks`` runs them all,
``python -m benchmarks <name> ...`` only those named. Timings use the engine's
real code paths (``Trainer``, ``Run.start``), so the ratios measure the product.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def row(
    name: str,
    fast: float | None,
    baseline: float | None,
    ratio: float | None,
    target: str,
    passed: bool | None,
    unit: str,
    notes: str = "",
) -> dict[str, Any]:
    """One measured row; ``passed`` is None when there is no target or nothing was measured."""
    result = {"name": name, "fast": fast, "baseline": baseline, "ratio": ratio, "target": target,
              "passed": passed, "unit": unit, "notes": notes}  # fmt: skip
    print(format_row(result), flush=True)
    return result


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_row(r: dict[str, Any]) -> str:
    verdict = {True: "PASS", False: "MISS", None: "----"}[r["passed"]]
    ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
    return (f"  [{verdict}] {r['name']}: fast {_num(r['fast'])} | baseline {_num(r['baseline'])} "
            f"{r['unit']} | ratio {ratio} (target {r['target']}) {r['notes']}")  # fmt: skip


def say(message: str) -> None:
    print(f"  {message}", flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def sample_manifest(workdir: Path, data: Path | None = None) -> Any:
    """The bundled ants/bees sample (or ``data``), validated and split like the app does."""
    from tlcore import settings
    from tlcore.data.prepare import prepare_data

    source = data or settings.sample_data_dir()
    return prepare_data(source, manifest_path=workdir / "manifest.json").manifest


def fit_images_per_s(trainer: Any) -> list[float]:
    """Train ``trainer`` to the end; each epoch's images/s as the Trainer itself reports it."""
    from tlcore.training.trainer import Callback

    class EpochSpeed(Callback):
        def __init__(self) -> None:
            self.ips: list[float] = []

        def on_epoch_end(self, trainer: Any, event: dict) -> None:
            self.ips.append(event["images_per_s"])

    speed = EpochSpeed()
    trainer.callbacks.append(speed)
    trainer.fit()
    return speed.ips
