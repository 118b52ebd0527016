"""The Evaluate and Predict pages through Streamlit's AppTest, on a real trained run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apptest_helpers import texts
from streamlit.testing.v1 import AppTest
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.runs.run import Run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture
def runs_here(run, monkeypatch) -> Run:
    """The pages list runs from TLCORE_RUNS_DIR: point it at the trained run's folder."""
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(run.dir.parent))
    return run


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=240)


def test_pages_without_a_trained_run_point_to_train():
    for name in ("evaluate", "predict"):
        at = page(name).run()
        assert not at.exception, [e.value for e in at.exception]
        assert "No trained model yet" in texts(at.info)


def test_evaluate_page_shows_scores_confusion_mistakes_and_gradcam(runs_here):
    at = page("evaluate").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="evaluate_run").value == runs_here.id
    accuracy = f"{runs_here.epochs()[-1]['val_acc']:.1%}"
    at.radio(key="evaluate_ckpt").set_value("last").run()
    assert [m.value for m in at.metric][0] == accuracy
    table = at.dataframe[0].value
    assert list(table["class"]) == ["ants", "bees"] and list(table["support"]) == [20, 20]
    assert "predicted as" in texts(at.markdown)
    assert (
        "Grad-CAM" in texts(at.subheader) and len(at.get("image")) >= 10
    )  # 8 hardest + photo + heat map
    assert not at.error
    at.radio(key="confusion_view").set_value("share of each true class").run()
    assert not at.exception
    at.button(key="draw_embedding").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_predict_page_batch_from_a_server_folder_with_a_corrupt_file(
    runs_here, tmp_path, monkeypatch
):
    items = Manifest.load(runs_here.manifest_path).items_for("val")
    folder = tmp_path / "data" / "new-photos"
    folder.mkdir(parents=True)
    for i, item in enumerate(items[:3]):
        shutil.copy(item.path, folder / f"p{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    monkeypatch.setenv("TLCORE_DATA_ROOT", str(tmp_path / "data"))
    at = page("predict").run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="predict_folder").set_value("new-photos")
    at.button(key="predict_folder_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["file"]) == ["broken.jpg", "p0.jpg", "p1.jpg", "p2.jpg"]
    assert table["error"].iloc[0] and set(table["prediction"].iloc[1:]) <= {"ants", "bees"}
    assert "broken.jpg" in texts(at.error) and "3 photos predicted" in texts(at.success)


def test_predict_page_shows_top_classes_and_gradcam_for_one_photo(runs_here):
    at = page("predict").run()
    options = at.selectbox(key="predict_example").options
    ant = next(o for o in options if o.startswith("ants"))
    at.selectbox(key="predict_example").set_value(ant).run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"**{ant}** → **" in texts(at.markdown)
    assert len(at.get("vega_lite_chart")) == 1  # the top-k bar chart
    assert len(at.get("image")) == 2 and not at.error  # the photo and its Grad-CAM overlay


def test_evaluate_scores_a_run_in_training_only_when_asked(run, tmp_path, monkeypatch):
    """A run still training writes a new model every epoch; the page must not rescore it on
    every visit (that kept a shared CPU busy), but on request, and then keep the result."""
    import subprocess
    import sys

    runs = tmp_path / "runs"
    copy = Path(shutil.copytree(run.dir, runs / run.dir.name))
    # a live process that looks like this run's worker (the status check reads /proc)
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "tlcore.runs.worker", copy.name]
    )
    try:
        Run.open(copy).write_status("running", pid=stand_in.pid)
        monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs))
        at = page("evaluate").run()
        assert not at.exception, [e.value for e in at.exception]
        assert "still training" in texts(at.info) and not at.metric
        at.button(key="evaluate_score_now").click().run()
        assert not at.exception, [e.value for e in at.exception]
        best = max(e["val_acc"] for e in run.epochs())
        assert [m.value for m in at.metric][0] == f"{best:.1%}"
        at.radio(key="confusion_view").set_value("share of each true class").run()
        assert [m.value for m in at.metric][0] == f"{best:.1%}"  # kept, not asked again
    finally:
        stand_in.kill()
        stand_in.wait()
