"""Launch latency: from ``Run.start`` to the first event in the run's ``metrics.jsonl``.

The real path: validate and split the sample, write the run directory, spawn
the worker process (imports torch and timm, loads the bundled weights, builds
the model and data) and train until the first step is logged. Default
settings (augmentation on, so no embedding pass first), weights installed.
"""

from __future__ import annotations

import time

from benchmarks import row, say

TRIES, TARGET_S, TIMEOUT_S = 2, 5.0, 180.0


def first_event_seconds() -> float:
    from tlcore import settings
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    config = TrainConfig(data=str(settings.sample_data_dir()), epochs=1, num_workers=0)
    started = time.perf_counter()
    run = Run.start(config)
    try:
        while not (run.metrics_path.exists() and run.metrics_path.stat().st_size > 0):
            state = run.status().get("state")
            if state not in ("queued", "running"):
                raise RuntimeError(f"the run ended ({state}) before its first event: {run.dir}")
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"no metrics event after {TIMEOUT_S:.0f} s: {run.dir}")
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        run.stop()
        run.wait(timeout=TIMEOUT_S)


def run() -> list[dict]:
    say(f"TrainConfig defaults on the sample (224 px, augment light), CPU, {TRIES} tries")
    seconds = []
    for _ in range(TRIES):
        seconds.append(first_event_seconds())
        say(f"first metrics event after {seconds[-1]:.2f} s")
    best = min(seconds)
    return [
        row("launch: Run.start to first metrics event", best, TARGET_S, best / TARGET_S,
            f"<= {TARGET_S:.0f} s", best <= TARGET_S, "s",
            f"best of {TRIES}: {', '.join(f'{s:.2f}' for s in seconds)} s; baseline = target"),
    ]  # fmt: skip
