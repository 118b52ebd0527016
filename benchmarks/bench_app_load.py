"""Page render times with 5 browser sessions at once while a run trains (target: median < 2 s).

Each session is a Streamlit ``AppTest`` on ``app.py`` (the real pages, sidebar and
live fragments) in a process of its own (AppTest keeps one Streamlit runtime per
process; the real server runs one script thread per tab). Every session visits
every wizard page in turn; one timed render is ``switch_page(...).run()`` until the
script finishes. The load: a real training run of the bundled EfficientNet-Lite0
(full model, augmentation on, 64 px) in its worker process, which every session
follows in the sidebar, with a first checkpoint written so Evaluate and Predict
score a real model. The baseline is one session with nothing training.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import row, say

SESSIONS, ROUNDS = 5, 2
TARGET_MEDIAN_S = 2.0
PAGES = ("home", "data", "model", "layers", "train", "runs", "evaluate", "predict")
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _session(rounds: int, ready: Any, results: Any) -> None:
    """One browser tab: open the app, visit every page once unmeasured, then ``rounds`` times.

    A process of its own: AppTest keeps one Streamlit runtime per process, so
    sessions in threads would tear each other's runtime down mid-script.
    """
    from streamlit.testing.v1 import AppTest

    times, errors = [], []
    try:
        at = AppTest.from_file(APP, default_timeout=300).run()
        for page in PAGES:  # warm-up: this session's first look at the data, thumbnails, ...
            at.switch_page(f"pages/{page}.py").run()
    except Exception as exc:  # noqa: BLE001 - reported, and the other sessions go on
        errors.append(f"warm-up: {type(exc).__name__}: {exc}")
    ready.wait()  # every tab browses at the same time
    try:
        for _ in range(rounds):
            for page in PAGES:
                started = time.perf_counter()
                at.switch_page(f"pages/{page}.py").run()
                times.append((page, time.perf_counter() - started))
                if at.exception or not at.title:  # a page that did not render is no timing
                    errors.append(f"{page}: {[e.value for e in at.exception] or 'no title'}")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"{type(exc).__name__}: {exc}")
    results.put((times, errors))


def _render_times(sessions: int, rounds: int) -> tuple[list[tuple[str, float]], list[str]]:
    """Timings of ``sessions`` tabs browsing together, each in its own process."""
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Barrier(sessions), ctx.Queue()
    procs = [ctx.Process(target=_session, args=(rounds, ready, results)) for _ in range(sessions)]
    for p in procs:
        p.start()
    times: list[tuple[str, float]] = []
    errors: list[str] = []
    for _ in procs:
        got, failed = results.get(timeout=1800)
        times += got
        errors += failed
    for p in procs:
        p.join()
    return times, errors


def _p95(values: list[float]) -> float:
    return float(statistics.quantiles(values, n=20)[-1]) if len(values) > 1 else values[0]


def _per_page(results: list[tuple[str, float]]) -> str:
    return ", ".join(
        f"{page} {statistics.median([s for p, s in results if p == page]):.2f}"
        for page in PAGES
        if any(p == page for p, _ in results)
    )


def run() -> list[dict[str, Any]]:
    from tlcore import settings
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with (
        tempfile.TemporaryDirectory() as tmp,
        settings.environment(
            TLCORE_RUNS_DIR=str(Path(tmp) / "runs"), TLCORE_UPLOADS_DIR=str(Path(tmp) / "uploads")
        ),
    ):
        run = None
        try:
            sample = settings.sample_data_dir()
            state = {"data": {"kind": "sample", "source": str(sample), "label": "Sample"}}
            settings.runs_dir().mkdir(parents=True)
            state_file = settings.runs_dir() / "app-state.json"
            state_file.write_text(json.dumps(state))

            idle, idle_errors = _render_times(1, ROUNDS)
            say(f"1 session, nothing training: {len(idle)} renders; per page median s: "
                f"{_per_page(idle)}")  # fmt: skip

            # 64 px: epochs end (and checkpoints appear) while the tabs browse, so Evaluate
            # and Predict work on a run that is still training, as they would for a user
            config = TrainConfig(data=str(sample), epochs=200, img_size=64, augment="light",
                                 batch_size=8, name="load benchmark")  # fmt: skip
            run = Run.start(config)
            deadline = time.monotonic() + 600
            while not any(e.get("type") == "step" for e in run.metrics()):
                if (
                    run.status()["state"] not in ("queued", "running")
                    or time.monotonic() > deadline
                ):
                    raise RuntimeError(f"the training run did not start: {run.status()}")
                time.sleep(0.2)
            while not run.epochs():  # a checkpoint exists: Evaluate and Predict have a model
                if (
                    run.status()["state"] not in ("queued", "running")
                    or time.monotonic() > deadline
                ):
                    raise RuntimeError(f"the training run stopped early: {run.status()}")
                time.sleep(0.5)
            state_file.write_text(json.dumps(state | {"run_id": run.id}))  # every tab follows it
            busy, busy_errors = _render_times(SESSIONS, ROUNDS)
            steps = sum(1 for e in run.metrics() if e.get("type") == "step")
            epochs = len(run.epochs())
            still = run.status()["state"]
        finally:
            if run is not None:
                run.stop()
                run.wait(timeout=120)

    errors = idle_errors + busy_errors
    if errors:
        say(f"errors: {errors[:5]}")
    idle_s, busy_s = [s for _, s in idle], [s for _, s in busy]
    say(f"{SESSIONS} sessions while training ({still}, {steps} steps, {epochs} epochs by the end): "
        f"{len(busy_s)} renders; per page median s: {_per_page(busy)}")  # fmt: skip
    median_idle, median_busy = statistics.median(idle_s), statistics.median(busy_s)
    notes = (
        f"{SESSIONS} AppTest sessions x {len(PAGES)} pages x {ROUNDS} rounds; errors {len(errors)}"
    )

    def page_median(results: list[tuple[str, float]], page: str) -> float:
        return statistics.median([t for p, t in results if p == page])

    worst = max(PAGES, key=lambda page: page_median(busy, page))
    worst_busy, worst_idle = page_median(busy, worst), page_median(idle, worst)
    return [
        row("page render median, 5 sessions + training", median_busy, median_idle,
            median_busy / median_idle, f"< {TARGET_MEDIAN_S:.0f} s",
            median_busy < TARGET_MEDIAN_S and not errors, "s", notes),
        row("page render p95, 5 sessions + training", _p95(busy_s), _p95(idle_s),
            _p95(busy_s) / _p95(idle_s), "report", None, "s", "baseline: 1 session, idle"),
        row(f"slowest page ({worst}) median, 5 sessions + training", worst_busy, worst_idle,
            worst_busy / worst_idle, f"< {TARGET_MEDIAN_S:.0f} s",
            worst_busy < TARGET_MEDIAN_S, "s",
            "baseline has no trained run yet" if worst in ("evaluate", "predict") else ""),
    ]  # fmt: skip


if __name__ == "__main__":
    run()
