"""The Evaluate and Predict pages through Streamlit's AppTest, on a real trained run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apptest_helpers import go, open_app, texts
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


def test_evaluate_page_shows_scores_confusion_mistakes_and_gradcam(runs_here, monkeypatch):
    import appkit.inference

    def not_again(*args, **kwargs):
        raise AssertionError("the finished run was scored again instead of read back")

    # the worker scored the run when it finished: the page reads that, it does not rescore
    monkeypatch.setattr(appkit.inference, "evaluate_run", not_again)
    at = go(open_app(), "evaluate")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="evaluate_run").value == runs_here.id
    assert at.radio(key="evaluate_ckpt").value == "best"
    accuracy = f"{max(e['val_acc'] for e in runs_here.epochs()):.1%}"
    assert [m.value for m in at.metric][0] == accuracy
    # plain words first, the expert's term in the tooltip
    labels = {m.label: m.proto.help for m in at.metric}
    assert "Macro F1" in labels["Average of the per-class scores"]
    table = at.dataframe[0].value
    assert list(table["class"]) == ["ants", "bees"] and list(table["support"]) == [20, 20]
    assert "predicted as" in texts(at.markdown)
    assert (
        "Grad-CAM" in texts(at.subheader) and len(at.get("image")) >= 10
    )  # 8 hardest + photo + heat map
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert any(c.startswith("the whole photo") for c in captions)
    assert any("what the model saw (the centre" in c for c in captions), captions
    assert "layer" not in " ".join(captions)  # "bn2" lives in a tooltip now
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


def test_predict_page_shows_top_classes_and_gradcam_for_one_photo(runs_here, monkeypatch):
    import json

    import appkit.inference

    calls = {"gradcam": 0, "load": 0}

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(appkit.inference, "gradcam", counted("gradcam", appkit.inference.gradcam))
    monkeypatch.setattr(
        appkit.inference, "load_predictor", counted("load", appkit.inference.load_predictor)
    )
    appkit.inference._predictor.clear()
    appkit.inference._explained.clear()
    at = page("predict").run()
    options = at.selectbox(key="predict_example").options
    ant = next(o for o in options if o.startswith("ants"))
    at.selectbox(key="predict_example").set_value(ant).run()
    assert not at.exception, [e.value for e in at.exception]
    from appkit.text import md

    assert f"**{md(ant)}** → **" in texts(at.markdown)
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert len(charts) == 1  # the top-k bar chart, most likely class on top
    spec = json.loads(charts[0].proto.spec)
    assert spec["encoding"]["y"]["sort"] == {"field": "probability", "order": "descending"}
    assert len(at.get("image")) == 2 and not at.error  # the photo and its Grad-CAM overlay
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert "on the part it saw: the centre" in captions[1], captions  # the crop, said so
    # the model is loaded once and a photo is looked at once: a rerun reuses both
    assert calls == {"gradcam": 1, "load": 1}
    at.slider[0].set_value(1).run()
    assert not at.exception and calls == {"gradcam": 1, "load": 1}


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
        at = go(open_app(), "evaluate")
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


def test_switching_datasets_follows_each_ones_own_run_and_offers_the_earlier_one(runs_here):
    """After choosing the reviews, the Train page still showed the photo run (and its
    confusion matrix); the photos could only be had again by uploading them again."""
    at = go(open_app(), "data")
    at.button(key="use_sample").click().run()  # the ants/bees sample: runs_here trained on it
    assert at.session_state["tl_selections"]["run_id"] == runs_here.id
    at.button(key="use_sample_text").click().run()
    chosen = at.session_state["tl_selections"]
    assert chosen["data"]["source"].endswith("reviews.csv")
    assert chosen["run_id"] is None  # no run on the reviews yet: the photo run is not followed
    go(at, "train")
    assert runs_here.id not in texts(at.markdown) + texts(at.sidebar.markdown)
    go(at, "data")
    assert any(tab.label == "Used before (1)" for tab in at.tabs)
    at.button(key="use_recent_0").click().run()  # the photos again, without an upload
    chosen = at.session_state["tl_selections"]
    assert chosen["data"]["label"] == "Sample: ants vs bees" and chosen["run_id"] == runs_here.id
    assert chosen["recent_data"][0]["source"].endswith("reviews.csv")
