"""One server for a class: a first-come-first-served queue, a namespace per browser, caps, pruning.

Real runs on the bundled ants/bees photos (64 px, fast path) with real workers;
the Runs page is driven through Streamlit's AppTest as a student and as the admin.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tlcore import settings
from tlcore.cli import main as cli
from tlcore.errors import ConfigError, DataError, RunError
from tlcore.runs.run import Run, is_live, list_runs
from tlcore.training.config import TrainConfig

APP = str(Path(__file__).resolve().parents[1] / "app.py")
OWNERS = ["student-1", "student-2", "student-3"]


def small(sample_dir: Path, **changes) -> TrainConfig:
    values = dict(data=str(sample_dir), img_size=64, epochs=1, lr=3e-3, augment="none",
                  device="cpu", batch_size=16)  # fmt: skip
    return TrainConfig(**{**values, **changes})


def training_window(run: Run) -> tuple[float, float]:
    """When the run trained: its first step and its last epoch, from its own metrics."""
    events = run.metrics()
    first = min(e["time"] for e in events if e.get("type") == "step")
    last = max(e["time"] for e in events if e.get("type") == "epoch")
    return first, last


def runs_page(**query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.skipif(sys.platform == "win32", reason="the device queue uses flock")
def test_three_sessions_with_one_slot_run_in_submission_order_and_see_their_own(
    sample_dir, monkeypatch
):
    import fcntl

    monkeypatch.setenv("TLCORE_MAX_CONCURRENT_RUNS", "1")
    root = settings.runs_dir()
    root.mkdir(parents=True)
    # the device is busy while the three are submitted, so all three wait: the queue decides
    with open(root / ".device-cpu-0.lock", "a+") as busy:
        fcntl.flock(busy, fcntl.LOCK_EX)
        runs = [Run.start(small(sample_dir, owner=owner)) for owner in OWNERS]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            messages = [r.status().get("message", "") for r in runs]
            if all(m.startswith("Queued: waiting for") for m in messages):
                break
            time.sleep(0.2)
        assert all(m.startswith("Queued: waiting for") for m in messages), messages
        assert "1 earlier run(s)" in messages[1] and "2 earlier run(s)" in messages[2]
    for run in runs:
        assert run.wait(timeout=240)["state"] == "finished", run.log_path.read_text()[-2000:]
    windows = [training_window(r) for r in runs]
    for before, after in zip(windows, windows[1:], strict=False):
        assert after[0] >= before[1], windows  # one after another, first submitted first

    for owner, run in zip(OWNERS, runs, strict=True):
        assert [r.id for r in list_runs(owner=owner)] == [run.id]
        assert run.summary()["owner"] == owner
    assert {r.id for r in list_runs()} == {r.id for r in runs}

    # the Runs page: a student's browser lists only that student's run; the admin sees all
    monkeypatch.setenv("TLCORE_ADMIN_TOKEN", "class-secret")
    student = runs_page(user=OWNERS[1])
    assert student.dataframe[0].value["run"].tolist() == [runs[1].id]
    assert student.query_params["user"] in (OWNERS[1], [OWNERS[1]])
    admin = runs_page(user=OWNERS[0], admin="class-secret")
    table = admin.dataframe[0].value
    assert sorted(table["run"]) == sorted(r.id for r in runs)
    assert sorted(table["owner"]) == OWNERS
    wrong = runs_page(user=OWNERS[0], admin="guess")
    assert wrong.dataframe[0].value["run"].tolist() == [runs[0].id]


def test_caps_refuse_a_run_with_a_message_naming_the_limit(sample_dir, monkeypatch, capsys):
    monkeypatch.setenv("TLCORE_MAX_EPOCHS", "3")
    monkeypatch.setenv("TLCORE_MAX_IMG_SIZE", "96")
    with pytest.raises(ConfigError, match=r"epochs = 5 is above this server's limit of 3 "
                       r"\(set by the admin with TLCORE_MAX_EPOCHS\): choose 3 or fewer"):  # fmt: skip
        Run.start(small(sample_dir, epochs=5))
    with pytest.raises(ConfigError, match=r"image size 128 px is above .* limit of 96"):
        Run.start(small(sample_dir, img_size=128))
    with pytest.raises(ConfigError, match=r"224 px \(the model's default\)"):
        Run.start(small(sample_dir, img_size=None))
    assert cli(["train", "--data", str(sample_dir), "--epochs", "4", "--img-size", "64"]) == 2
    assert "error: epochs = 4 is above this server's limit of 3" in capsys.readouterr().err

    monkeypatch.setenv("TLCORE_MAX_DATASET_IMAGES", "100")  # the sample has 120 photos
    with pytest.raises(DataError, match=r"120 images, which is above .* limit of 100"):
        Run.create(small(sample_dir))
    assert not list_runs()  # nothing was created by a refused run

    monkeypatch.delenv("TLCORE_MAX_DATASET_IMAGES")
    monkeypatch.setenv("TLCORE_MAX_QUEUED_PER_USER", "1")
    waiting = Run.create(small(sample_dir, owner="student-1"))  # queued, its worker not yet up
    with pytest.raises(RunError, match=r"you already have 1 run\(s\) waiting or training"):
        Run.start(small(sample_dir, owner="student-1"))
    stopped = Run.create(small(sample_dir, owner="student-1"))
    stopped.write_status("stopped", message="Stopped by request.")
    with pytest.raises(RunError, match=r"you already have 1 run\(s\)"):
        stopped.resume()  # resuming queues it again: the same cap
    assert stopped.status()["state"] == "stopped"
    other = Run.create(small(sample_dir, owner="student-2"))  # another student is not blocked
    assert {r.id for r in list_runs()} == {waiting.id, stopped.id, other.id}


def test_prune_deletes_only_ended_runs_chosen_by_state_and_age(sample_dir, capsys):
    runs = {state: Run.create(small(sample_dir, name=state)) for state in
            ("failed", "stopped", "finished", "old-failed")}  # fmt: skip
    for name, run in runs.items():
        run.write_status(name.removeprefix("old-"), pid=None)
    old = runs["old-failed"]
    status = json.loads(old.status_path.read_text())
    status["heartbeat_unix"] = time.time() - 10 * 86_400
    old.status_path.write_text(json.dumps(status))
    active = Run.create(small(sample_dir, name="queued"))  # waiting: never pruned

    assert cli(["runs", "--prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 3 run(s)" in out and all(r.dir.is_dir() for r in runs.values())

    assert cli(["runs", "--prune", "--older-than", "7"]) == 0
    assert "deleted 1 run(s)" in capsys.readouterr().out
    assert not old.dir.exists() and runs["failed"].dir.is_dir()

    assert cli(["runs", "--prune", "--state", "failed,stopped,finished", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(r["state"] for r in result["pruned"]) == ["failed", "finished", "stopped"]
    assert [r.id for r in list_runs()] == [active.id]

    assert cli(["runs", "--prune", "--state", "running"]) == 2
    assert "runs waiting or training are never pruned" in capsys.readouterr().err


def test_queue_tickets_keep_submission_order_and_drop_runs_that_ended(sample_dir):
    from tlcore.runs import queue as run_queue

    runs = [Run.create(small(sample_dir, owner=owner)) for owner in OWNERS]
    tickets = [run_queue.enqueue(r.dir, "cpu") for r in runs]
    assert tickets == sorted(tickets) and len(set(tickets)) == 3
    assert run_queue.ahead_of(runs[0].dir, "cpu", is_live) == []
    assert run_queue.ahead_of(runs[2].dir, "cpu", is_live) == [runs[0].id, runs[1].id]
    assert run_queue.ahead_of(runs[2].dir, "cuda", is_live) == []  # another device's queue
    runs[0].write_status("failed", message="Unexpected error")  # it will never take its turn
    assert run_queue.ahead_of(runs[2].dir, "cpu", is_live) == [runs[1].id]
    assert run_queue.ticket_of(runs[0].dir) is None  # its stale entry was removed
    run_queue.enqueue(runs[0].dir, "cpu")  # resumed: a new ticket, at the back of the queue
    runs[0].write_status("queued", message="Resuming")
    assert run_queue.ahead_of(runs[0].dir, "cpu", is_live) == [runs[1].id, runs[2].id]


def test_each_browser_gets_its_own_namespace_kept_in_the_url(monkeypatch):
    monkeypatch.setenv("TLCORE_MULTI_USER", "1")

    def sidebar(at: AppTest) -> str:
        return "\n".join(str(m.value) for m in at.sidebar.markdown)

    first = AppTest.from_file(APP, default_timeout=120).run()
    owner = first.query_params["user"]
    owner = owner[0] if isinstance(owner, list) else owner
    first.button(key="try_sample").click().run()
    assert not first.exception, [e.value for e in first.exception]
    assert (settings.runs_dir() / f"app-state-{owner}.json").is_file()
    assert not (settings.runs_dir() / "app-state.json").exists()

    second = AppTest.from_file(APP, default_timeout=120).run()  # another student's browser
    assert second.query_params["user"] not in (owner, [owner])
    assert "Data:** — not chosen yet" in sidebar(second)

    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["user"] = owner  # the first student refreshes the page
    assert "ants vs bees" in sidebar(again.run())


def test_the_admin_link_survives_a_menu_click_and_a_refresh(monkeypatch):
    """The menu's links drop ``?admin=``: the session remembers it and puts it back in the URL."""
    from apptest_helpers import go, open_app, texts

    monkeypatch.setenv("TLCORE_ADMIN_TOKEN", "class-secret")
    at = open_app(admin="class-secret")  # the Home page, as the teacher's link opens it
    at.query_params.pop("admin", None)  # what a click on a menu link does to the address
    go(at, "challenge")
    assert "Teacher view" in texts(at.caption)
    assert at.query_params.get("admin") in ("class-secret", ["class-secret"])  # kept for a refresh
    student = go(open_app(admin="guess"), "challenge")
    assert "Teacher view" not in texts(student.caption)
