"""Learn mode in the app (AppTest from ``app.py``): the panels, the glossary, the two demo pages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from apptest_helpers import go, texts
from streamlit.testing.v1 import AppTest

from appkit.learn import EXPLANATIONS, GLOSSARY, LEARN_PREFIX
from tlcore.lab.compare import Experiment, list_experiments
from tlcore.training.config import TrainConfig

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def one_thread_per_worker(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # workers on a shared 2-core machine


def open_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def with_sample() -> AppTest:
    at = open_app()
    at.button(key="try_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def learn_panels(at: AppTest) -> list:
    return [e for e in at.expander if e.label.startswith(LEARN_PREFIX)]


def test_every_wizard_step_has_one_learn_panel_closed_until_opened():
    at = with_sample()
    expected = {
        "data": "over-fitting",
        "model": "pretrained",
        "layers": "Progressive unfreezing",
        "train": "learning rate",
    }
    for page, words in expected.items():
        go(at, page)
        panels = learn_panels(at)
        assert len(panels) == 1, (page, [e.label for e in at.expander])
        assert panels[0].label == f"{LEARN_PREFIX} {EXPLANATIONS[page][0]}"
        assert panels[0].proto.expanded is False, page
        assert words in texts(panels[0].markdown), page


def test_the_glossary_ties_each_term_to_what_the_app_does():
    at = go(open_app(), "glossary")
    page = texts(at.markdown)
    for term in (
        "Inductive transfer learning",
        "Transductive transfer learning",
        "Domain adaptation",
        "Multitask learning",
        "One-shot learning",
        "Few-shot learning",
        "Zero-shot learning",
    ):
        assert f"**{term}**" in page, term
    assert page.count("*In this app:*") == len(GLOSSARY)
    assert "Not done here" in page  # it says what the app does not do, too
    assert len(learn_panels(at)) == 4 and not any(p.proto.expanded for p in learn_panels(at))


def test_what_the_network_sees_shows_filters_maps_and_the_imagenet_guess(sample_dir):
    at = go(with_sample(), "network")
    assert len(learn_panels(at)) == 1
    assert len(at.get("image")) >= 3  # filters, the model's input, the feature maps

    bees = sorted(p.name for p in (sample_dir / "val" / "bees").iterdir())
    at.selectbox(key="net_photo").set_value(f"bees · {bees[1]}").run()
    assert not at.exception
    top5 = at.dataframe[0].value
    assert list(top5["rank"]) == [1, 2, 3, 4, 5]
    assert "bee" in [label.split(",")[0] for label in top5["ImageNet class"]]

    at.select_slider(key="net_depth").set_value(4).run()
    captions = "\n".join(c for image in at.get("image") for c in image.captions)
    assert "7x7 pixels each" in captions  # 224 px / 32 at the deepest stage
    filters_before = len(at.get("image"))
    at.toggle(key="net_random").set_value(True).run()
    assert len(at.get("image")) == filters_before + 1  # random filters beside the pretrained


def test_compare_page_runs_the_experiment_from_the_button_and_can_stop_it():
    at = go(open_app(), "compare")
    assert "Choose a dataset" in texts(at.warning)
    assert at.button(key="compare_start").disabled

    at = go(with_sample(), "compare")
    assert len(learn_panels(at)) == 1
    at.number_input(key="compare_epochs").set_value(1).run()
    at.select_slider(key="compare_img_size").set_value(64).run()
    # the five trainings' cost is said before any starts
    said = [s.value for s in at.success if s.value.startswith("Estimated time on this machine")]
    assert len(said) == 1 and all(f"({key}) " in said[0] for key in "abcde"), said
    assert not list_experiments()
    at.button(key="compare_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    experiment = list_experiments()[0]
    experiment.stop()  # the lesson is the click, not the minutes of training
    base = experiment.record["base"]
    assert (base["epochs"], base["img_size"], base["augment"]) == (1, 64, "none")
    assert [v["key"] for v in experiment.record["variants"]] == list("abcde")

    deadline = time.monotonic() + 150
    while experiment.status()["state"] in ("running", "stopping"):
        assert time.monotonic() < deadline, experiment.log_path.read_text()[-2000:]
        time.sleep(0.3)
    experiment.wait_for_runs(timeout=120)
    assert experiment.status()["state"] == "stopped"
    at.run()
    table = at.dataframe[0].value
    assert list(table["way to train"])[0] == "(a) From scratch"
    assert len(table) == 5
    assert at.button(key="compare_continue") is not None  # stopped: it can go on later
    assert "stopped" in at.get("progress")[0].proto.text


def test_compare_page_overlays_the_curves_and_tabulates_a_finished_experiment(sample_dir):
    base = TrainConfig(data=str(sample_dir), img_size=64, epochs=2, augment="none", device="cpu")
    experiment = Experiment.create(base, keys="b")
    experiment.run_all()

    at = go(with_sample(), "compare")
    assert at.selectbox(key="compare_pick").value == experiment.id
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert row["way to train"] == "(b) Feature extraction" and row["status"] == "finished"
    assert 0.5 < row["validation accuracy"] <= 1.0
    assert row["trainable parameters"] == 1280 * 2 + 2
    assert row["epochs"] == "2/2"
    assert len(at.get("plotly_chart")) == 2  # accuracy and loss, one line per variant
    assert at.get("progress")[0].proto.text == "finished · 1 of 1 runs done"
