"""The Export page through AppTest, on a real finished run: export, check, download."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from apptest_helpers import texts
from streamlit.testing.v1 import AppTest
from trained_run_fixture import trained_run_dir

from tlcore.export.exporter import FORMATS, recorded_exports
from tlcore.export.jobs import ACTIVE, export_job
from tlcore.runs.run import Run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture
def own_run(run, tmp_path, monkeypatch) -> Run:
    """A copy of the finished run in this test's runs folder, so exports stay here."""
    copy = Run(shutil.copytree(run.dir, tmp_path / "runs" / run.id))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(copy.dir.parent))
    return copy


def wait_for_exports(run: Run, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while any((export_job(run, f) or {}).get("state") in ACTIVE for f in FORMATS):
        assert time.monotonic() < deadline, [export_job(run, f) for f in FORMATS]
        time.sleep(0.3)


def test_export_page_writes_a_bundle_and_a_script_and_offers_downloads(own_run):
    at = AppTest.from_file(str(ROOT / "pages" / "export.py"), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="export_run").value == own_run.id
    assert not at.get("download_button")  # nothing exported yet
    at.button(key="export_bundle").click().run()
    assert not at.exception, [e.value for e in at.exception]
    # a second click while the bundle is being written must not cancel it
    assert export_job(own_run, "bundle")["state"] in (*ACTIVE, "done")
    at.button(key="export_script").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert export_job(own_run, "script")["state"] in (*ACTIVE, "done")
    wait_for_exports(own_run)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert {f: export_job(own_run, f)["state"] for f in ("bundle", "script")} == {
        "bundle": "done",
        "script": "done",
    }
    buttons = at.get("download_button")
    assert len(buttons) == 2
    labels = [b.proto.label for b in buttons]
    assert labels[0].startswith(f"Download {own_run.id}-bundle.zip")
    assert labels[1].startswith(f"Download {own_run.id}-reproduce.zip")
    assert set(recorded_exports(own_run)) == {"bundle", "script"}
    assert "Validation metrics" in texts(at.markdown) and "ants-bees" in texts(at.markdown)
    assert "def main():" in texts(at.code)
    # every exported format's button says the same thing; the others still say Export
    assert [at.button(key=f"export_{f}").label for f in FORMATS] == [
        "Export again" if f in ("bundle", "script") else "Export" for f in FORMATS
    ]
    assert not at.warning

    # a run still training saves a newer best model: the page says the export lags
    import os

    from tlcore.training.checkpoints import checkpoint_paths

    later = time.time() + 60
    for path in checkpoint_paths(own_run.checkpoints_dir, "best"):
        if path.is_file():
            os.utime(path, (later, later))
    at.run()
    assert "saved a newer model after this file was written" in texts(at.warning)


def test_the_wizard_has_an_export_step_that_points_to_train_without_a_run():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/export.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "No trained model yet" in texts(at.info)
    assert "7 · Export" in texts(at.title)


def test_a_running_export_shows_its_count_and_time_left(own_run, monkeypatch):
    """What the job process records (``tlcore.export.jobs``) is the page's bar, and a step
    of unlike parts says its time left is unknown rather than guess."""
    from tlcore.data.progress import Progress
    from tlcore.export import jobs
    from tlcore.runs.files import write_json_atomic

    monkeypatch.setattr(jobs, "_alive", lambda run, pid: True)  # as if its process were at work
    now = time.time()
    scoring = Progress("Exporting bundle · Scoring the val images", 10, 40, 2.0)
    writing = Progress("Exporting ONNX · writing the ONNX file", 2, 3, 9.0, "steps", timed=False)
    for fmt, progress in (("bundle", scoring), ("onnx", writing)):
        jobs.job_path(own_run, fmt).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(jobs.job_path(own_run, fmt), {
            "format": fmt, "checkpoint": "best", "state": "running", "pid": 1, "queued_at": now,
            "started_at": now, "message": "Writing the file.", "progress": progress.to_dict(),
        })  # fmt: skip
    at = AppTest.from_file(str(ROOT / "pages" / "export.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    bars = {e.proto.text: e.proto.value for e in at.get("progress")}
    assert bars == {
        "Exporting bundle · Scoring the val images: 10 of 40 · about 6 s left": 25,
        "Exporting ONNX · writing the ONNX file: 2 of 3 steps · time left: unknown": 66,
    }
