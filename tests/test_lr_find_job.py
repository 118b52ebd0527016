"""The Train page's learning-rate range test runs in its own process (``tlcore.runs.lr_find_job``).

Inside the page it held the Streamlit server's process for as long as it took and died
with the next click. These tests run the real sweep on the bundled sample in its job
process, check what it writes, what a failure and a dead process read as, and drive
the Train page with AppTest: the click returns at once with words, the curve comes later.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from apptest_helpers import APP, texts
from streamlit.testing.v1 import AppTest

from tlcore.data.prepare import prepare_data
from tlcore.errors import DataError, RunError
from tlcore.runs.background import ACTIVE
from tlcore.runs.files import write_json_atomic
from tlcore.runs.lr_find_job import found, job_path, lr_find_job, start_lr_find
from tlcore.training.config import TrainConfig


def wait_for(owner: str = "", timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = lr_find_job(owner)
        if job and job.get("state") not in ACTIVE:
            return job
        time.sleep(0.5)
    raise AssertionError(f"the job did not end: {lr_find_job(owner)}")


def test_the_sweep_runs_in_its_own_process_and_writes_its_curve(sample_dir, tmp_path):
    prepared = prepare_data(sample_dir, manifest_path=tmp_path / "m.json")
    config = TrainConfig(data=str(sample_dir), manifest_path=str(prepared.manifest_path),
                         img_size=64, augment="none", device="cpu").validate()  # fmt: skip
    job = start_lr_find(config, owner="someone")
    assert job["state"] == "queued"
    with pytest.raises(RunError, match="already running"):  # one at a time per owner
        start_lr_find(config, owner="someone")
    done = wait_for("someone")
    assert done["state"] == "done", done
    assert done["pid"] != os.getpid()  # not this process
    result = found(done)
    assert len(result.lrs) == len(result.losses) > 5 and result.fast_path
    assert result.lrs[0] < result.suggested_lr < result.lrs[-1]
    assert lr_find_job("") is None  # another owner's test is not this one's


def test_a_failure_and_a_dead_process_are_said_in_words(sample_dir, tmp_path):
    with pytest.raises(DataError, match="prepared dataset"):
        start_lr_find(TrainConfig(data=str(sample_dir)))
    gone = TrainConfig(data=str(sample_dir), manifest_path=str(tmp_path / "gone.json"))
    start_lr_find(gone)
    failed = wait_for()
    assert failed["state"] == "failed" and "gone.json does not exist" in failed["message"]
    assert found(failed) is None
    # a job whose process died without a word (killed, machine restarted) reads as failed
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_json_atomic(job_path(), {"state": "running", "pid": dead.pid, "queued_at": 0})
    job = lr_find_job()
    assert job["state"] == "failed" and "Interrupted" in job["message"]


def test_train_page_starts_the_sweep_and_draws_it_when_done(sample_dir, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("the range test ran inside the Streamlit process")

    monkeypatch.setattr("tlcore.training.lr_find.lr_find", not_here)
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["tl_selections"] = {
        "data": {"kind": "sample", "source": str(sample_dir), "label": "Sample: ants vs bees"},
        "val_fraction": 0.2, "seed": 0, "model": "tf_efficientnet_lite0", "weights": "bundled",
        "freeze": {"preset": "features"}, "train": {"img_size": 64}, "run_id": None,
        "data_version": None,
    }  # fmt: skip
    at.run()
    at.switch_page("pages/train.py").run()
    at.button(key="find_lr").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Trying learning rates" in texts(at.info) or "Starting the learning" in texts(at.info)
    assert "carries on if you click elsewhere" in texts(at.info)
    assert not at.get("plotly_chart")
    done = wait_for()
    assert done["state"] == "done", done
    at.run()  # the page's next refresh (its fragment polls every second)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1  # the loss against the learning rate
    suggestion = min(max(found(done).suggested_lr, 1e-5), 1.0)
    use = at.button(key="use_lr")
    assert use.label == f"Use {suggestion:.1e}"
    use.click().run()
    assert at.session_state["tl_selections"]["train"]["lr"] == pytest.approx(suggestion)
