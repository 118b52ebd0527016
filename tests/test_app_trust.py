"""Trust on the pages: the clothing sample, honest percentages, clickable cells,
and "Not sure" on Predict, through Streamlit's AppTest on the shared real run."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_helpers import go, open_app, texts
from streamlit.testing.v1 import AppTest
from trained_run_fixture import trained_run_dir

from appkit.text import md
from tlcore.data.manifest import Manifest
from tlcore.runs.run import Run
from tlcore.runs.scoring import stored_evaluation
from tlcore.runs.trust_store import stored_trust

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture
def runs_here(run, monkeypatch) -> Run:
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(run.dir.parent))
    return run


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=240)


def test_data_page_offers_the_clothing_sample_too():
    at = go(open_app(), "data")
    at.button(key="use_sample_clothing").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Ready to train: 4 labels (longsleeve, outwear, shirt, shorts)" in texts(at.success)
    assert "Sample: clothing" in texts(at.sidebar.markdown)


def test_evaluate_shows_calibration_and_the_photos_of_a_chosen_cell(runs_here):
    at = go(open_app(), "evaluate")
    assert "Can you believe its percentages?" in texts(at.subheader)
    cal = stored_trust(runs_here, "best").calibration
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Calibration error, raw"] == f"{cal.ece_before:.1%}"
    assert metrics["Calibration error, calibrated"] == f"{cal.ece_after:.1%}"
    assert "None of these." in texts(at.markdown)
    report = stored_evaluation(runs_here, "best")
    at.selectbox(key="cell_true").set_value("bees").run()
    at.selectbox(key="cell_predicted").set_value("ants").run()
    assert not at.exception, [e.value for e in at.exception]
    n = report.confusion[1][0]
    photos = "photo" if n == 1 else "photos"
    assert f"**{n}** validation {photos} of **bees** called **ants**" in texts(at.markdown)
    shown = [c.value for c in at.caption if c.value.endswith("%") and " · ants " in c.value]
    assert len(shown) == min(n, 12)


def test_predict_says_not_sure_below_the_threshold_set_by_the_slider(runs_here):
    at = page("predict").run()
    assert not at.exception, [e.value for e in at.exception]
    slider = at.slider(key="predict_unknown_threshold")
    assert slider.value == pytest.approx(
        stored_trust(runs_here, "best").detector.threshold, abs=1e-3
    )
    trust = stored_trust(runs_here, "best")
    items = Manifest.load(runs_here.manifest_path).items_for("val")
    accepted = next(  # a validation photo within the threshold (95 % of them are)
        Path(it.path).name
        for it, score in zip(items, trust.val_scores, strict=True)
        if score <= trust.detector.threshold
    )
    options = at.selectbox(key="predict_example").options
    choice = next(o for o in options if o.endswith(md(accepted)) or o.endswith(accepted))
    at.selectbox(key="predict_example").set_value(choice).run()
    assert "Not sure" not in texts(at.warning)  # its own validation photo: known
    at.slider(key="predict_unknown_threshold").set_value(0.0).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Not sure — this looks like none of: ants, bees." in texts(at.warning)
