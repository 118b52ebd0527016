"""A class at once: 30 students submit to a challenge while 2 runs train (target: board p95 < 1 s).

Each student is a Streamlit ``AppTest`` session on ``app.py`` with its own ``?user=``; six
processes hold five sessions each (AppTest keeps one Streamlit runtime per process, the
real server one script thread per tab). Every student owns a finished run on the
challenge's data (two real 1-epoch runs, each copied to 15 students with its checkpoint
files hard-linked, the owner rewritten), presses "Submit this run" on the Challenge page,
then opens the page again ``ROUNDS`` times; one timed render is ``switch_page(...).run()``
until the script ends. Meanwhile two real training runs (64 px, full fine-tuning,
augmentation on) hold the CPU, and the scorer process scores the 30 submissions. The
baseline is one student opening the board with nothing training and nothing to score.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import row, say

STUDENTS, PROCESSES, ROUNDS = 30, 6, 3
TARGET_P95_S = 1.0
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _students(owners: list[str], challenge_id: str, rounds: int, ready: Any, results: Any,
              submit: bool = True) -> None:  # fmt: skip
    """Several students in one process: each submits once, then opens the board ``rounds`` times."""
    from streamlit.testing.v1 import AppTest

    times, errors, sessions = [], [], []
    try:
        for owner in owners:
            at = AppTest.from_file(APP, default_timeout=300)
            at.query_params["user"] = owner
            at.run().switch_page("pages/challenge.py").run()
            sessions.append(at)
    except Exception as exc:  # noqa: BLE001 - reported; the other students go on
        errors.append(f"open: {type(exc).__name__}: {exc}")
    ready.wait()  # the whole class at once
    for at in sessions if submit else []:
        try:
            started = time.perf_counter()
            at.button(key=f"ch_submit_{challenge_id}").click().run()
            times.append(("submit", time.perf_counter() - started))
            if at.exception or at.error:
                errors.append(f"submit: {[e.value for e in at.exception or at.error]}")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"submit: {type(exc).__name__}: {exc}")
    for _ in range(rounds):
        for at in sessions:
            started = time.perf_counter()
            at.switch_page("pages/challenge.py").run()
            times.append(("board", time.perf_counter() - started))
            if at.exception or not at.title:
                errors.append(f"board: {[e.value for e in at.exception] or 'no title'}")
    results.put((times, errors))


def _class(groups: list[list[str]], challenge_id: str, rounds: int,
           submit: bool = True) -> tuple[list, list]:  # fmt: skip
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Barrier(len(groups)), ctx.Queue()
    procs = [ctx.Process(target=_students, args=(g, challenge_id, rounds, ready, results, submit))
             for g in groups]  # fmt: skip
    for p in procs:
        p.start()
    times: list[tuple[str, float]] = []
    errors: list[str] = []
    for _ in procs:
        got, failed = results.get(timeout=3600)
        times += got
        errors += failed
    for p in procs:
        p.join()
    return times, errors


def _copy_run(run_dir: Path, owner: str) -> Path:
    """A student's own copy of a finished run: files hard-linked, config.json rewritten."""
    from tlcore.runs.files import write_json_atomic

    target = run_dir.with_name(f"{run_dir.name}-{owner}")
    shutil.copytree(run_dir, target, copy_function=os.link)
    record = json.loads((target / "config.json").read_text())
    record["owner"] = record["config"]["owner"] = owner
    record["id"] = target.name
    (target / "config.json").unlink()  # a link to the original's: replaced, not written through
    write_json_atomic(target / "config.json", record)
    return target


def _p95(values: list[float]) -> float:
    return float(statistics.quantiles(values, n=20)[-1]) if len(values) > 1 else values[0]


def run(students: int = STUDENTS, processes: int = PROCESSES) -> list[dict[str, Any]]:
    from tlcore import settings
    from tlcore.runs.challenge_create import create_challenge
    from tlcore.runs.challenge_entry import submissions, wait_scored
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with (
        tempfile.TemporaryDirectory() as tmp,
        settings.environment(
            TLCORE_RUNS_DIR=str(Path(tmp) / "runs"),
            TLCORE_UPLOADS_DIR=str(Path(tmp) / "uploads"),
            TLCORE_MULTI_USER="1",
            TLCORE_MAX_CONCURRENT_RUNS="2",
        ),  # fmt: skip
    ):
        challenge = create_challenge(settings.sample_datasets()["clothing4"], title="Clothing")
        small = dict(data=str(challenge.data_path), img_size=64, epochs=1, augment="none",
                     batch_size=16, device="cpu")  # fmt: skip
        seeds = [Run.start(TrainConfig(**small, lr=3e-3)),
                 Run.start(TrainConfig(**small, lr=1e-3, freeze={"preset": "last-k", "k": 1}))]  # fmt: skip
        for seed in seeds:
            assert seed.wait(timeout=900)["state"] == "finished", seed.log_path.read_text()[-2000:]
        owners = [f"student-{n:02d}" for n in range(students)]
        for n, owner in enumerate(owners):
            _copy_run(seeds[n % 2].dir, owner)
            challenge.set_name(owner, f"Student {n} <b>{n}</b>")

        idle, idle_errors = _class([["student-probe"]], challenge.id, ROUNDS * 3, submit=False)
        idle_board = [s for what, s in idle if what == "board"]
        say(f"1 student, nothing training: board median {statistics.median(idle_board):.2f} s")

        busy_config = dict(small, epochs=200, augment="light", batch_size=8)
        busy_config.pop("device")
        training = [Run.start(TrainConfig(**busy_config, freeze={"preset": "full"}, name=f"load {i}"))
                    for i in range(2)]  # fmt: skip
        try:
            while not all(r.metrics() for r in training):  # both have started to train
                time.sleep(0.5)
            groups = [owners[i::processes] for i in range(processes)]
            started = time.perf_counter()
            busy, busy_errors = _class(groups, challenge.id, ROUNDS)
            class_s = time.perf_counter() - started
            still = [r.status()["state"] for r in training]
            scored = wait_scored(challenge, timeout=1800)
            scored_s = time.perf_counter() - started
        finally:
            for r in training:
                r.stop()
            for r in training:
                r.wait(timeout=300)
        states = [s.get("state") for s in submissions(challenge)]

    errors = idle_errors + busy_errors
    if errors:
        say(f"errors ({len(errors)}): {errors[:5]}")
    board = [s for what, s in busy if what == "board"]
    submit_s = [s for what, s in busy if what == "submit"]
    say(f"{students} students in {processes} processes while 2 runs trained ({still}): "
        f"{len(board)} board renders in {class_s:.0f} s; submit median "
        f"{statistics.median(submit_s):.2f} s; all {len(scored)} scored after {scored_s:.0f} s "
        f"({states.count('scored')} scored, {states.count('failed')} failed)")  # fmt: skip
    ok = not errors and states.count("scored") == students
    return [
        row(f"challenge board p95, {students} students + 2 runs training", _p95(board), _p95(idle_board),
            _p95(board) / _p95(idle_board), f"< {TARGET_P95_S:.0f} s",
            _p95(board) < TARGET_P95_S and ok, "s",
            f"{len(board)} renders; errors {len(errors)}; baseline: 1 student, idle"),
        row(f"challenge board median, {students} students + 2 runs training", statistics.median(board),
            statistics.median(idle_board), statistics.median(board) / statistics.median(idle_board),
            "report", None, "s", ""),
        row(f"{students} submissions scored (first click to last score)", scored_s, None, None, "report",
            None, "s", f"{states.count('scored')}/{students} scored"),
    ]  # fmt: skip


if __name__ == "__main__":
    run()
