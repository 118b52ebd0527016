"""The Few-shot and Domain adaptation pages through AppTest, on the real sample and real runs."""

from __future__ import annotations

import json
from pathlib import Path

from apptest_helpers import APP, go, texts
from domain_runs_fixture import pair_runs
from streamlit.testing.v1 import AppTest

from appkit.text import md
from tlcore.runs.run import Run, list_runs


def app_with_sample() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.button(key="try_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_fewshot_page_without_data_points_to_the_data_page():
    at = go(AppTest.from_file(APP, default_timeout=120).run(), "fewshot")
    assert "Choose a dataset on the Data page" in texts(at.warning)


def test_fewshot_page_draws_accuracy_vs_shots_and_classifies_a_photo():
    at = go(app_with_sample(), "fewshot")
    at.selectbox(key="fewshot_size").set_value(96)
    at.slider(key="fewshot_repeats").set_value(10)
    at.button(key="fewshot_measure").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1 and not at.error
    ladder = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]  # the whole ladder
    assert ladder["x"][:5] == ["0 (zero-shot)", "1 (one-shot)", "2 (few-shot)", "5 (few-shot)",
                               "10 (few-shot)"]  # fmt: skip
    assert ladder["y"][0] > 0.7  # class names alone: measured 0.975 at 96 px
    assert {m.label for m in at.metric} >= {"Zero-shot accuracy", "Chance (guessing)"}
    table = at.dataframe[0].value
    assert list(table["photos per class"]) == [1, 2, 5, 10]
    assert table["accuracy (mean)"].iloc[-1] > 0.7  # measured 0.84 at 96 px
    options = at.selectbox(key="fewshot_example").options
    bee = next(o for o in options if o.startswith("bees"))
    at.selectbox(key="fewshot_example").set_value(bee).run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"**{md(bee)}** → **bees**" in texts(at.markdown)  # the file name as typed


def test_domain_page_compares_dann_with_its_baseline(sample_dir, tmp_path_factory, monkeypatch):
    baseline, dann, _ = pair_runs(sample_dir, tmp_path_factory.getbasetemp())
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(baseline.dir.parent))
    at = go(app_with_sample(), "domain")
    metrics = {m.label: m.value for m in at.metric}
    base_acc = baseline.epochs()[-1]["target_acc"]
    dann_acc = dann.epochs()[-1]["target_acc"]
    assert metrics["Target accuracy without adaptation"] == f"{base_acc:.1%}"
    assert metrics["Target accuracy with DANN"] == f"{dann_acc:.1%}"
    table = at.dataframe[0].value
    assert sorted(table["adaptation"]) == ["DANN", "none (baseline)"]
    assert "scored on 40 labelled target photos" in texts(at.caption).lower()


def test_domain_page_makes_a_demo_target_and_starts_the_pair(monkeypatch):
    # Training itself is covered by test_domain_adaptation; here the page must create the
    # right two runs, so their workers are not spawned (each would train for real).
    monkeypatch.setattr(Run, "spawn_worker", lambda self, resume: 0)
    at = go(app_with_sample(), "domain")
    assert at.button(key="domain_start").disabled  # no target photos yet
    at.button(key="domain_make_demo").click().run()
    assert not at.exception, [e.value for e in at.exception]
    target = Path(texts(at.success).split("`")[1])
    assert sorted(p.name for p in target.iterdir()) == ["ants", "bees"]
    assert len(list((target / "bees").iterdir())) == 20
    at.number_input(key="domain_epochs").set_value(2)
    at.button(key="domain_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    configs = sorted((r.config for r in list_runs()), key=lambda c: c.domain_adaptation)
    assert [c.domain_adaptation for c in configs] == ["dann", "none"]
    assert all(c.target_data == str(target) and c.epochs == 2 for c in configs)
    assert configs[0].freeze == configs[1].freeze == {"preset": "last-k", "k": 2}
    assert len(at.dataframe[0].value) == 2
