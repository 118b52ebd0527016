"""The Export page through AppTest, on a real finished run: export, check, download."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apptest_helpers import texts
from streamlit.testing.v1 import AppTest
from trained_run_fixture import trained_run_dir

from tlcore.export.exporter import recorded_exports
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


def test_export_page_writes_a_bundle_and_a_script_and_offers_downloads(own_run):
    at = AppTest.from_file(str(ROOT / "pages" / "export.py"), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="export_run").value == own_run.id
    assert not at.get("download_button")  # nothing exported yet
    at.button(key="export_bundle").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="export_script").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    buttons = at.get("download_button")
    assert len(buttons) == 2
    labels = [b.proto.label for b in buttons]
    assert labels[0].startswith(f"Download {own_run.id}-bundle.zip")
    assert labels[1].startswith(f"Download {own_run.id}-reproduce.zip")
    assert set(recorded_exports(own_run)) == {"bundle", "script"}
    assert "Validation metrics" in texts(at.markdown) and "ants-bees" in texts(at.markdown)
    assert "def main():" in texts(at.code)
    assert at.button(key="export_bundle").label == "Export again"
    assert not at.warning

    # a run still training saves a newer best model: the page says the export lags
    import os
    import time

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
