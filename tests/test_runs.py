"""The run directory protocol: files, states, dead workers, and a live reader of metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tlcore.errors import RunError
from tlcore.runs.files import keep_history_until, read_events
from tlcore.runs.run import Run, list_runs
from tlcore.training.config import TrainConfig


def _config(sample_dir, **kw) -> TrainConfig:
    base = dict(data=str(sample_dir), img_size=64, epochs=1, batch_size=16)
    return TrainConfig(**(base | kw))


def test_create_writes_a_reproducible_run_directory(sample_dir):
    run = Run.create(_config(sample_dir, seed=7, name="first"))
    record = json.loads((run.dir / "config.json").read_text())
    assert record["config"]["seed"] == 7 and record["config"]["model"] == "tf_efficientnet_lite0"
    assert record["data"]["classes"] == ["ants", "bees"]
    assert record["data"]["counts"]["train"] == {"ants": 40, "bees": 40}
    assert len(record["data"]["fingerprint"]) == 64
    assert {"torch", "timm", "tlcore"} <= set(record["versions"])
    assert (run.dir / "manifest.json").is_file()
    assert run.status()["state"] == "queued"  # no worker yet, but within the start-up grace
    assert run.id.split("-")[2:4] == ["lite0", "features"]
    assert Run.open(run.id).dir == run.dir == Run.open(str(run.dir)).dir
    second = Run.create(_config(sample_dir))
    assert [r.id for r in list_runs()][:2] == sorted([run.id, second.id], reverse=True)
    assert run.summary()["name"] == "first"
    with pytest.raises(RunError, match="no training run"):
        Run.open("does-not-exist")


def test_dead_worker_is_reported_as_interrupted(sample_dir):
    run = Run.create(_config(sample_dir))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run.write_status("running", pid=gone.pid, epoch=1, step=5)
    status = run.status()
    assert status["state"] == "failed" and status["interrupted"]
    assert "Resume" in status["message"] and str(gone.pid) in status["message"]
    # a queued run whose worker never said hello is caught after the grace period
    run.write_status("queued", pid=None)
    record = json.loads(run.status_path.read_text())
    record["heartbeat_unix"] -= 3600
    run.status_path.write_text(json.dumps(record))
    assert run.status()["state"] == "failed"


def test_event_file_tolerates_partial_lines_and_truncates_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"type": "step", "epoch": 1, "step": s} for s in (1, 2, 3)]
    lines += [{"type": "epoch", "epoch": 1, "step": 3}, {"type": "step", "epoch": 2, "step": 4}]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"type": "st')
    assert read_events(path) == lines
    keep_history_until(path, epoch=1, step=3)
    assert read_events(path) == lines[:4]


def test_stop_is_only_requested_for_active_runs(sample_dir):
    run = Run.create(_config(sample_dir))
    run.write_status("finished", pid=None)
    run.stop()
    assert not run.stop_path.exists()
    with pytest.raises(RunError, match="finished"):
        run.resume()


def test_metrics_parse_line_by_line_while_the_worker_writes(sample_dir):
    """A reader polling the raw file never sees a complete line that is not valid JSON."""
    run = Run.start(_config(sample_dir, epochs=2, batch_size=4, augment="light"))
    reads, parsed, partial_seen = 0, 0, 0
    while run.status()["state"] in ("queued", "running"):
        raw = run.metrics_path.read_bytes() if run.metrics_path.exists() else b""
        *complete, tail = raw.split(b"\n")
        partial_seen += bool(tail)
        for line in complete:
            json.loads(line)
        parsed = max(parsed, len(complete))
        reads += 1
        assert len(run.metrics()) >= len(complete)
        time.sleep(0.02)
    status = run.wait(5)
    assert status["state"] == "finished", status
    assert reads > 20 and parsed > 0
    events = run.metrics()
    assert [e["step"] for e in events if e["type"] == "step"] == list(range(1, 41))
    assert [e["epoch"] for e in run.epochs()] == [1, 2]


def test_one_run_trains_at_a_time_the_other_waits_queued(sample_dir):
    runs = [Run.start(_config(sample_dir, epochs=2, batch_size=8, augment="light")) for _ in "ab"]
    queued_messages = []
    while True:
        states = [r.status() for r in runs]
        assert [s["state"] for s in states].count("running") <= 1
        queued_messages += [s["message"] for s in states if "Queued: waiting for" in s["message"]]
        if all(s["state"] not in ("queued", "running") for s in states):
            break
        time.sleep(0.05)
    assert [r.wait(1)["state"] for r in runs] == ["finished", "finished"]
    assert any(r.id in m for r in runs for m in queued_messages), queued_messages
