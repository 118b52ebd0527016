"""The whole wizard in a real browser: sample data → bundled Lite0 → feature extraction → train.

Starts ``streamlit run app.py`` on a free port and drives Debian's Chromium with
Playwright, like a newcomer clicking through. It checks that what the page shows
(final validation accuracy, epochs, state) is what the run directory holds, that a
refresh finds the same run, and saves a screenshot of every page to
``test-artifacts/screenshots/`` (copied to ``docs/screenshots/`` for the README).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.streamlit_server import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_app

from tlcore.errors import RunError
from tlcore.runs.run import list_runs
from tlcore.training.config import TrainConfig

playwright = pytest.importorskip("playwright.sync_api")
# a page that is busy re-running on a loaded 2-core machine needs more than 5 s to settle
playwright.expect.set_options(timeout=30_000)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]

SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
# `make screenshots` sets it: a full-page picture of every step, copied to docs/ for the README.
# `make test` does not (about 1.5 s a picture, and a clean tree after the suite).
TAKE_SHOTS = os.environ.get("TLCORE_SCREENSHOTS") == "1"
RUN_TIMEOUT_MS = 150_000
MENU_LINK = '[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]'  # app.py's menu
# every link of Streamlit's automatic menu of pages/ file names the page ever showed (app.py
# draws its own menu; the automatic one flashed on the first paint after a server start)
SEEN_FILE_MENU = """window.seenFileMenu = [];
new MutationObserver(() => document.querySelectorAll('[data-testid="stSidebarNavLink"]')
  .forEach((a) => window.seenFileMenu.push(a.innerText))).observe(document, {subtree: true,
  childList: true});"""


@contextlib.contextmanager
def chromium_page() -> Iterator[tuple[Any, Any]]:
    """Debian's Chromium and one page (1400 x 900, 60 s actions), closed however the test ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            yield browser, page
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to fit."""
    _wait_idle(page)
    if not TAKE_SHOTS:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 600), 4000)})
    page.wait_for_timeout(400)  # let plotly re-layout to the new size
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)  # the README's pictures
    shutil.copy2(SHOTS / f"{name}.png", DOCS_SHOTS / f"{name}.png")
    page.set_viewport_size(size)


def _wait_idle(page) -> None:
    """Streamlit shows its 'running' widget while a script run is in flight."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)


def _go(page, link: str, heading: str) -> None:
    page.locator(MENU_LINK, has_text=link).click()
    page.get_by_role("heading", name=heading).first.wait_for()
    _wait_idle(page)


def _metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


@pytest.fixture()
def app_url(tmp_path):
    env = {
        "TLCORE_RUNS_DIR": os.environ["TLCORE_RUNS_DIR"],
        "TLCORE_UPLOADS_DIR": os.environ["TLCORE_UPLOADS_DIR"],
        "HF_HUB_OFFLINE": "1",
    }
    log = ROOT / "test-artifacts" / "streamlit-e2e.log"
    try:
        with streamlit_app(env, log) as url:
            yield url
    finally:  # workers outlive the server by design: ask any still running to stop
        for run in list_runs():
            run.stop()
            with contextlib.suppress(RunError):
                run.wait(timeout=60)


def test_wizard_end_to_end_in_chromium(app_url):
    from playwright.sync_api import expect

    runs_dir = Path(os.environ["TLCORE_RUNS_DIR"])
    with chromium_page() as (browser, page):
        # Start: one sentence and the sample button, and the app's menu from the first paint
        page.add_init_script(SEEN_FILE_MENU)
        page.goto(app_url)
        sample = page.get_by_role("button", name=re.compile("Try the sample"))
        sample.wait_for()
        expect(page.locator(MENU_LINK, has_text="4 · Train")).to_be_visible()
        assert page.evaluate("window.seenFileMenu") == []
        _shot(page, "01-start")

        # Data: the sample's report, chart and thumbnails
        sample.click()
        expect(page.get_by_text("Ready to train: 2 labels (ants, bees)")).to_be_visible()
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        expect(page.locator('[data-testid="stImage"]').first).to_be_visible()
        _shot(page, "02-data")

        # Model: the catalog, with the bundled default chosen
        _go(page, "2 · Model", "2 · A model that already knows how to see")
        chosen = page.locator('[data-testid="stMarkdownContainer"]', has_text="Chosen:")
        expect(chosen).to_contain_text("tf_efficientnet_lite0")
        expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
        _shot(page, "03-model")

        # Layers: feature extraction → only the head trains
        _go(page, "3 · Layers", "3 · Which layers learn?")
        page.get_by_role("button", name=re.compile("Feature extraction")).click()
        _wait_idle(page)
        expect(page.get_by_text("Plan: Feature extraction (head only)")).to_be_visible()
        trainable = int(_metric(page, "Trainable parameters").replace(",", ""))
        total = int(_metric(page, "of all parameters").replace(",", ""))
        assert 0 < trainable < total / 100, (trainable, total)
        _shot(page, "04-layers")

        # Train: 2 epochs at 128 px without augmentation (the fast path)
        _go(page, "4 · Train", "4 · Train")
        epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
        epochs.fill("2")
        epochs.press("Enter")
        _wait_idle(page)
        page.get_by_text("none: the photos as they are").click()
        _wait_idle(page)
        size = page.locator('[data-testid="stSlider"]', has_text="Image size").get_by_role("slider")
        size.focus()
        for _ in range(len(["64", "96", "128", "160", "192", "224", "240"])):
            if size.get_attribute("aria-valuetext") == "128":
                break
            size.press("ArrowLeft")
            page.wait_for_timeout(200)
        _wait_idle(page)
        page.get_by_role("button", name="Start training").click()

        expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
        page.wait_for_timeout(2_000)  # the last fragment refresh and the full redraw
        _wait_idle(page)
        expect(page.get_by_text("Loss (lower is better)")).to_be_visible()
        expect(
            page.get_by_text(re.compile(r"Validation confusion matrix \(epoch 2\)"))
        ).to_be_visible()

        # The numbers on the page are the run directory's numbers
        run_id = re.search(r"[?&]run=([^&]+)", page.url).group(1)
        run_dir = runs_dir / run_id
        config = json.loads((run_dir / "config.json").read_text())["config"]
        assert (config["epochs"], config["img_size"], config["augment"]) == (2, 128, "none")
        assert config["freeze"]["preset"] == "features"
        assert config["model"] == "tf_efficientnet_lite0" and config["weights"] == "bundled"
        assert config["lr"] == TrainConfig().lr and config["batch_size"] == TrainConfig().batch_size
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
        epochs_done = [e for e in events if e["type"] == "epoch"]
        assert [e["epoch"] for e in epochs_done] == [1, 2]
        assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
        final = epochs_done[-1]
        assert _metric(page, "Final validation accuracy") == f"{final['val_acc']:.1%}"
        assert _metric(page, "Final error score (loss)") == f"{final['val_loss']:.3f}"
        expect(page.get_by_text("epoch 2/2").first).to_be_visible()
        _shot(page, "05-train")

        # A refresh finds the same run and choices
        page.reload()
        expect(page.get_by_text(run_id).first).to_be_visible()
        expect(page.get_by_text("finished", exact=True).first).to_be_visible()

        # Runs: the run is listed; its curves open
        _go(page, "Runs", "Runs")
        expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
        expect(page.get_by_text("Accuracy (higher is better)")).to_be_visible()
        _shot(page, "06-runs")

        # Evaluate: the accuracy shown is the run's last validation accuracy
        # (best == last here: 2 epochs of the head on the fast path can only improve)
        _go(page, "5 · Evaluate", "Evaluate")
        expect(page.get_by_text("Per class")).to_be_visible(timeout=90_000)
        _wait_idle(page)
        shown = float(_metric(page, "Accuracy").rstrip("%")) / 100
        best = max(e["val_acc"] for e in epochs_done)
        assert abs(shown - best) < 0.006, (shown, best)
        _shot(page, "07-evaluate")

        # Predict: upload a real bee photo the model never trained on
        _go(page, "6 · Predict", "Predict")
        bee = sorted((ROOT / "assets" / "ants-bees" / "val" / "bees").glob("*.jpg"))[0]
        page.locator('[data-testid="stFileUploader"]', has_text="one or more photos").locator(
            "input[type=file]"
        ).set_input_files(bee)
        verdict = page.get_by_text(re.compile(rf"{re.escape(bee.name)} → (ants|bees) \("))
        expect(verdict).to_be_visible(timeout=90_000)
        expect(page.get_by_text("where it looked (red = most)")).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
        _shot(page, "08-predict")

        # A new tab starts from the same choices
        other = browser.new_page(viewport={"width": 1400, "height": 900})
        other.goto(app_url)
        expect(other.locator('[data-testid="stSidebar"]')).to_contain_text("ants vs bees")
        other.close()


def _zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*.jpg")):
            archive.write(path, path.relative_to(folder).as_posix())
    return target


def test_uploads_in_chromium_zip_bad_zip_and_images_per_label(app_url, sample_dir, tmp_path):
    from playwright.sync_api import expect

    good = _zip_folder(sample_dir / "train", tmp_path / "my-insects.zip")
    bad = tmp_path / "holiday.zip"
    bad.write_text("this is not a zip archive")
    with chromium_page() as (browser, page):
        page.goto(f"{app_url}/data")
        page.get_by_role("heading", name="1 · Your data").wait_for()

        # a zip of class folders (no val/): checked, then split at random
        page.get_by_role("tab", name="Upload a zip").click()
        page.locator('[data-testid="stFileUploader"]', has_text="A .zip").locator(
            "input[type=file]"
        ).set_input_files(good)
        _wait_idle(page)
        page.get_by_role("button", name="Use this zip").click()
        expect(page.get_by_text("Ready to train: 2 labels (ants, bees), 80")).to_be_visible()
        expect(page.get_by_text("Share of photos kept for validation")).to_be_visible()
        sidebar = page.locator('[data-testid="stSidebar"]')
        expect(sidebar).to_contain_text("Zip: my-insects.zip")

        # a broken zip: a message in words, and the good dataset stays chosen
        page.get_by_role("tab", name="Upload a zip").click()
        page.locator('[data-testid="stFileUploader"]', has_text="A .zip").locator(
            "input[type=file]"
        ).set_input_files(bad)
        _wait_idle(page)  # the upload's own rerun must end before the click is sent
        page.get_by_role("button", name="Use this zip").click()
        expect(page.locator('[data-testid="stAlertContentError"]').first).to_contain_text(
            "holiday.zip", timeout=30_000
        )
        expect(page.get_by_text("Traceback")).to_have_count(0)
        expect(sidebar).to_contain_text("Zip: my-insects.zip")

        # images label by label
        page.get_by_role("tab", name="Upload images per label").click()
        for label in ("ants", "bees"):
            photos = sorted((sample_dir / "train" / label).glob("*.jpg"))[:6]
            page.get_by_label("Label for this batch").fill(label)
            page.get_by_label("Label for this batch").press("Enter")
            page.wait_for_timeout(1_000)  # the label's rerun, slow on a busy machine
            _wait_idle(page)
            uploader = page.locator('[data-testid="stFileUploader"]', has_text="Images of")
            uploader.locator("input[type=file]").set_input_files(photos)
            # the upload reached the server (the uploader shortens long names)
            expect(uploader).to_contain_text(photos[-1].name[:7])
            _wait_idle(page)
            add = page.get_by_role("button", name="Add these images")
            expect(add).to_be_enabled()
            add.click()
            expect(page.get_by_text(f"Added 6 images as '{label}'")).to_be_visible()
        expect(page.get_by_text("Ready to train: 2 labels (ants, bees), 12")).to_be_visible()
        expect(sidebar).to_contain_text("Your images: 12 in 2 labels")


def test_newcomer_first_hour_fine_tune_settings_and_an_export_race(
    app_url, sample_dir, tmp_path_factory
):
    """A newcomer's first hour in Chromium: a fine-tuning plan gets its own settings (and says why), and an
    export clicked while another is being written does not cancel it."""
    from playwright.sync_api import expect
    from trained_run_fixture import trained_run_dir

    finished = trained_run_dir(sample_dir, tmp_path_factory.getbasetemp())
    run_dir = Path(shutil.copytree(finished, Path(os.environ["TLCORE_RUNS_DIR"]) / finished.name))
    with chromium_page() as (browser, page):
        page.goto(app_url)
        page.get_by_role("button", name=re.compile("Try the sample")).click()
        expect(page.get_by_text("Ready to train: 2 labels (ants, bees)")).to_be_visible()

        # Layers: fine-tune the last K groups → Train offers settings that suit it
        _go(page, "3 · Layers", "3 · Which layers learn?")
        page.get_by_role("button", name=re.compile("Fine-tune the last K groups")).click()
        _wait_idle(page)
        _go(page, "4 · Train", "4 · Train")
        expect(page.get_by_text(re.compile("Suggested for Fine-tune the last"))).to_be_visible()
        estimate = page.get_by_text(re.compile(r"Estimated time: about"))
        expect(estimate).to_be_visible(timeout=120_000)  # measured once on this machine
        page.locator(".st-key-use_suggested button").click()
        _wait_idle(page)
        # the rerun replaces the old settings form; its stale copy stays on the page until
        # the run ends, which measures the new plan's speed first (seconds on a busy CPU)
        page.wait_for_function(
            "() => { const e = [...document.querySelectorAll('input[aria-label=\"Epochs\"]')];"
            " return e.length === 1 && e[0].value === '10'; }",
            timeout=RUN_TIMEOUT_MS,
        )
        epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
        expect(epochs).to_have_value("10")
        _shot(page, "09-finetune-settings")

        # Export: the bundle, then ONNX 2 s later; both files arrive, both say so
        _go(page, "7 · Export", "7 · Export")
        page.locator(".st-key-export_bundle button").first.click()
        page.wait_for_timeout(2_000)
        page.locator(".st-key-export_onnx button").first.click()
        for name in ("bundle.zip", "model.onnx"):
            expect(
                page.get_by_role("button", name=re.compile(rf"Download .*-{re.escape(name)}"))
            ).to_be_visible(timeout=RUN_TIMEOUT_MS)
        _wait_idle(page)
        for fmt in ("bundle", "onnx"):
            expect(page.locator(f".st-key-export_{fmt} button").first).to_contain_text(
                "Export again"
            )
            state = json.loads((run_dir / "exports" / "jobs" / f"{fmt}.json").read_text())
            assert state["state"] == "done", state
        assert (run_dir / "exports" / "bundle.zip").is_file()
        assert (run_dir / "exports" / "model.onnx").is_file()
        expect(page.get_by_text("Traceback")).to_have_count(0)
        _shot(page, "10-export")


def test_text_sample_data_train_evaluate_predict_in_chromium(app_url):
    """Texts in Chromium: the same wizard for labelled sentences, typed into the Predict page."""
    from playwright.sync_api import expect

    with chromium_page() as (browser, page):
        page.goto(app_url)
        page.locator(MENU_LINK, has_text="1 · Data").click()
        page.get_by_role("button", name="Use the text sample").click()
        expect(page.get_by_text("Ready to train: 2 labels (negative, positive)")).to_be_visible()
        expect(page.get_by_text("Examples per label")).to_be_visible()
        _shot(page, "11-text-data")

        _go(page, "2 · Model", "2 · A model that already knows language")
        expect(page.get_by_text("all-MiniLM-L6-v2 (bundled · offline)")).to_be_visible()

        _go(page, "4 · Train", "4 · Train")
        epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
        epochs.fill("1")
        epochs.press("Enter")
        _wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        expect(page.get_by_text("finished", exact=True).first).to_be_visible(
            timeout=2 * RUN_TIMEOUT_MS  # 1,000 sentences through the encoder once
        )
        run_id = re.search(r"[?&]run=([^&]+)", page.url).group(1)
        run_dir = Path(os.environ["TLCORE_RUNS_DIR"]) / run_id
        config = json.loads((run_dir / "config.json").read_text())["config"]
        assert (config["model"], config["augment"]) == ("all-MiniLM-L6-v2", "none")

        _go(page, "5 · Evaluate", "Evaluate")
        expect(page.get_by_text("Hardest texts")).to_be_visible(timeout=90_000)
        expect(page.locator(".tl-why").first).to_be_visible(timeout=90_000)
        _shot(page, "12-text-evaluate")

        _go(page, "6 · Predict", "Predict")
        box = page.get_by_label("A sentence to classify")
        box.fill("Awful phone, it broke after a day.")
        box.press("Control+Enter")  # Streamlit takes a text area's value on Ctrl+Enter
        _wait_idle(page)
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(page.get_by_text(re.compile(r"^negative · \d+\.\d%$"))).to_be_visible()
        expect(page.locator(".tl-why span").first).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
        _shot(page, "13-text-predict")


def test_predict_says_not_sure_for_a_coffee_cup_in_chromium(app_url, sample_dir):
    """Chromium: a photo of none of the classes gets "Not sure — this looks like none of"."""
    from playwright.sync_api import expect

    from tlcore.runs.run import Run

    config = TrainConfig(data=str(sample_dir), img_size=128, epochs=2, augment="none",
                         device="cpu", name="coffee")  # fmt: skip
    run = Run.start(config)
    assert run.wait(timeout=RUN_TIMEOUT_MS / 1000)["state"] == "finished"
    assert (run.dir / "trust-best.json").is_file()  # fitted by the worker as the run finished
    with chromium_page() as (browser, page):
        page.goto(f"{app_url}/predict?run={run.id}")
        page.get_by_role("heading", name="Predict").first.wait_for()
        _wait_idle(page)
        page.locator('[data-testid="stFileUploader"]', has_text="one or more photos").locator(
            "input[type=file]"
        ).set_input_files(ROOT / "tests" / "data" / "coffee.jpg")
        not_sure = page.get_by_text("Not sure — this looks like none of: ants, bees").first
        expect(not_sure).to_be_visible(timeout=90_000)
        # the headline says it too: a skimming reader must not read the forced guess as the
        # answer ("coffee.jpg → bees (93.8 %)" used to stand above the box)
        expect(page.get_by_text("coffee.jpg → Not sure (none of: ants, bees)")).to_be_visible()
        expect(page.get_by_text(re.compile(r"coffee\.jpg → (ants|bees) \("))).to_have_count(0)
        expect(
            page.get_by_text(re.compile(r"If it had to choose, it would say (ants|bees)"))
        ).to_be_visible()
        expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible()  # the bars
        expect(page.get_by_text("Traceback")).to_have_count(0)
        _shot(page, "14-predict-not-sure")


def test_fewshot_ladder_from_class_names_to_ten_photos_in_chromium(app_url):
    """Chromium: one chart from zero-shot (class names only) to 10 photos per class."""
    from playwright.sync_api import expect

    with chromium_page() as (browser, page):
        page.goto(app_url)
        page.get_by_role("button", name=re.compile("Try the sample")).click()
        expect(page.get_by_text("Ready to train: 2 labels (ants, bees)")).to_be_visible()
        _go(page, "Few-shot", "Few-shot")
        page.get_by_role("button", name="Measure accuracy from 0 to 10 photos per class").click()
        chart = page.locator(".js-plotly-plot", has_text="transfer-learning ladder")
        expect(chart).to_be_visible(timeout=240_000)
        expect(chart).to_contain_text("0 (zero-shot)")
        expect(chart).to_contain_text("10 (few-shot)")
        expect(page.get_by_text("Zero-shot accuracy", exact=True)).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
        _shot(page, "15-fewshot-ladder")


def test_doctor_finds_suspects_and_a_decision_becomes_the_version_train_uses_in_chromium(app_url):
    """Chromium: Data → Doctor → check → leave one suspect out → save → Train names the version.
    (clothing4's suggestions are all unsure ones: no relabel is offered for them.)"""
    from playwright.sync_api import expect

    with chromium_page() as (browser, page):
        page.goto(f"{app_url}/data")
        page.get_by_role("button", name="Use the clothing sample").click()
        expect(page.get_by_text(re.compile(r"Ready to train: 4 labels"))).to_be_visible()
        _go(page, "Doctor", "Doctor")
        page.get_by_role("button", name="Check the photos").click()
        checked = page.get_by_text(re.compile(r"Checked \d+ photos in [\d.]+ s"))
        expect(checked).to_be_visible(timeout=RUN_TIMEOUT_MS)  # one embedding pass
        expect(page.get_by_text("Labels that look wrong")).to_be_visible()
        _wait_idle(page)
        _shot(page, "16-doctor")
        expect(
            page.get_by_text(re.compile(r"^Unsure: a model that never saw")).first
        ).to_be_visible()
        page.get_by_text(re.compile(r"^Leave out$")).first.click()
        _wait_idle(page)
        page.get_by_role("button", name="Save 1 decision as a new version").click()
        expect(page.get_by_text(re.compile(r"Saved v1"))).to_be_visible()
        _go(page, "4 · Train", "4 · Train")
        expect(page.get_by_text(re.compile(r"Dataset version: v1"))).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
