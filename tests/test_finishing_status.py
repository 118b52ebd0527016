"""The steps after the last epoch: counted in the estimate, said in the run's status.

A run is not done at its last epoch: it scores its validation photos, measures "none of
these" and fits the calibration. The estimate before Start counts those steps, and while the
worker does them its status says which step it is on (k of n, in words), what the count
counts and the time left until finished. Uses the shared trained run (ants/bees, 128 px).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apptest_helpers import go, open_app
from trained_run_fixture import trained_run_dir

from appkit.progress import finishing_bar
from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.results.trust import REFERENCE_PHOTOS
from tlcore.results.unknown import MAX_BANK
from tlcore.runs.finish import finish_run
from tlcore.runs.finishing_progress import FinishingProgress
from tlcore.runs.run import Run
from tlcore.runs.worker import finishing_status
from tlcore.training.config import TrainConfig
from tlcore.training.estimate import MachineSpeed, estimate_run
from tlcore.training.finishing_steps import BANK_PHOTOS, OUTSIDE_PHOTOS

# a machine that embeds 10 photos/s and trains 2.5 photos/s through the whole network
SPEED = MachineSpeed("tf_efficientnet_lite0", 224, "cpu", 0.1, 0.4, 9, time.time())


@pytest.fixture(scope="module")
def trained_run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


def test_the_estimate_has_a_part_after_the_last_epoch_in_words():
    assert (OUTSIDE_PHOTOS, BANK_PHOTOS) == (REFERENCE_PHOTOS, MAX_BANK)  # the mirrors agree
    fast = estimate_run(TrainConfig(data="d", freeze="features", augment="none"), 700, 180, SPEED)
    tuned = estimate_run(TrainConfig(data="d", freeze="last-3", epochs=3), 700, 180, SPEED)
    # the fast path still holds every embedding: only the outside photos are read again
    assert 0.1 * OUTSIDE_PHOTOS <= fast.finish_s < 0.1 * OUTSIDE_PHOTOS + 5
    assert "40 outside photos" in fast.finish_work and fast.finish_work in fast.work
    # a fine-tune reads the validation, training and outside photos again, for best and last
    again = 2 * (180 + 700 + OUTSIDE_PHOTOS)
    assert 0.1 * again <= tuned.finish_s < 0.1 * again + 10
    assert f"it reads {again} photos (scoring the 180 validation" in tuned.finish_work
    assert tuned.finish_s < tuned.seconds


def test_each_step_after_training_is_said_with_its_count_and_the_time_left(
    trained_run, monkeypatch
):
    # the worker's last status of the shared run: it walked every step of its plan (the fast
    # path: the outside photos, then the fits) and said so
    final = trained_run.status()
    where = FinishingProgress.from_dict(final.get("finishing"))
    assert final["state"] == "finished" and where is not None and where.step == where.steps

    # the same run finished again without the trainer's embeddings: every photo read again
    run = Run.open(shutil.copytree(trained_run.dir, settings.runs_dir() / trained_run.dir.name))
    for kept in run.dir.glob("outputs-*.safetensors"):
        kept.unlink()
    checkpoints = run.checkpoints_dir
    for suffix in (".safetensors", ".state.pt"):  # best = last: one checkpoint to score
        shutil.copyfile(checkpoints / f"best{suffix}", checkpoints / f"last{suffix}")
    said: list[dict] = []
    write = Run.write_status
    monkeypatch.setattr(Run, "write_status",
                        lambda self, state, **fields: said.append(write(self, state, **fields))
                        or said[-1])  # fmt: skip
    assert finish_run(run, None, finishing_status(run, 3, 12)) == ["best", "last"]

    steps = [FinishingProgress.from_dict(s["finishing"]) for s in said]
    assert {s["state"] for s in said} == {"running"} and all(steps)
    manifest = Manifest.load(run.manifest_path)
    n_val, n_train = len(manifest.items_for("val")), len(manifest.items_for("train"))
    ends = {w.doing: w for w in steps}
    assert [(w.counts, w.total) for w in ends.values()] == [
        ("validation photos", n_val), ("training and outside photos", n_train + REFERENCE_PHOTOS),
        ("", 0),
    ]  # fmt: skip
    for status, w in zip(said, steps, strict=True):
        assert f"step {w.step} of 3" in status["message"]
        if w.total:  # the words say the count and what it counts
            assert f" {w.total} " in w.doing and all(word in w.doing for word in w.counts.split())
        assert status["after"]["total"] == w.total and status["after"]["task"] == w.doing
    assert all(ends[w.doing].done == w.total for w in steps)  # each step read what it said
    assert steps[0].done == 0 and steps[-1].left_s is not None
    paced = [w for w in steps if 0 < w.done < w.total or (w.step > 1 and w.done == 0)]
    assert paced and all(w.left_s is not None and w.left_s >= 0 for w in paced)

    # the page's bar: the step, the count, the time left until finished
    middle = next(s for s, w in zip(said, steps, strict=True) if w.step == 2)
    fraction, text = finishing_bar(middle)
    assert 1 / 3 <= fraction <= 2 / 3
    assert "Finishing, step 2 of 3" in text and f"of {n_train + REFERENCE_PHOTOS:,}" in text
    assert "left until finished" in text
    assert finishing_bar({**middle, "state": "finished"}) is None
    # the same status on the Runs page, written by a live process that looks like the worker
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "tlcore.runs.worker", run.dir.name]
    )
    try:
        fields = {k: v for k, v in middle.items() if k not in ("state", "pid")}
        write(run, "running", pid=stand_in.pid, **fields)
        at = go(open_app(), "runs")
        bars = {e.proto.text: e.proto.value for e in at.get("progress")}
        assert any(t.startswith("Finishing, step 2 of 3") and "left until finished" in t
                   for t in bars), bars  # fmt: skip
    finally:
        stand_in.kill()
    assert Path(run.dir / "evaluation-best.json").is_file()
