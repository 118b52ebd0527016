"""Every page of the wizard through Streamlit's AppTest: renders, has its widgets, acts.

Each test starts from ``app.py`` (so the sidebar and navigation are the real ones)
and moves with ``switch_page``. Runs and uploads live in the test's tmp folders
(conftest); datasets are real JPEGs (the bundled sample, or made with PIL).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_helpers import go, open_app, texts
from PIL import Image
from streamlit.testing.v1 import AppTest

from tlcore import settings
from tlcore.runs.run import list_runs


def choose_sample(at: AppTest) -> AppTest:
    at.button(key="try_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def make_images(folder: Path, n: int, colour: tuple[int, int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shade = tuple(min(255, c + 9 * i) for c in colour)
        Image.new("RGB", (48, 40), shade).save(folder / f"img_{i:02d}.jpg", quality=90)


# --- Start ------------------------------------------------------------------------------------
def test_start_page_says_what_to_do_and_the_sample_fills_the_data_report():
    at = open_app()
    assert not at.exception
    assert "one folder per label" in texts(at.markdown)
    assert "Data:** — not chosen yet" in texts(at.sidebar.markdown)

    choose_sample(at)

    assert at.title[0].value == "1 · Your data"  # the button moves on to the Data page
    assert "Ready to train: 2 labels (ants, bees), 120 usable images" in texts(at.success)
    assert at.get("plotly_chart"), "images-per-class chart"
    assert len(at.get("image")) >= 2, "thumbnails per class"
    # counts on the bars, a train/val table per label, one-line captions
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [[int(n) for n in bar["text"]] for bar in chart["data"]] == [[40, 40], [20, 20]]
    split = at.dataframe[0].value
    assert split.to_dict("records") == [
        {"label": "ants", "training photos": 40, "validation photos": 20},
        {"label": "bees", "training photos": 40, "validation photos": 20},
    ]
    long = [c for c in at.caption if c.proto.help and "…" in c.value]
    assert long and all(len(c.value.replace("\\", "")) <= 16 for c in long)
    assert "Sample: ants vs bees" in texts(at.sidebar.markdown)
    saved = json.loads((settings.runs_dir() / "app-state.json").read_text())
    assert saved["data"]["kind"] == "sample"


# --- Data -------------------------------------------------------------------------------------
def test_data_page_without_a_choice_offers_the_sources():
    at = go(open_app(), "data")
    assert "Choose one of the options" in texts(at.info)
    assert "not chosen yet" in texts(at.sidebar.markdown)  # drawn even when the page stops
    assert at.button(key="use_sample") is not None
    # sample, zip, images per label, a CSV of texts; no server folder unless TLCORE_DATA_ROOT is set
    assert [t.label for t in at.tabs][-1] == "Texts: upload a CSV" and len(at.tabs) == 4
    at.button(key="use_sample").click().run()
    assert "Ready to train" in texts(at.success)


def test_make_run_starts_with_the_sample_chosen_but_keeps_a_later_choice(monkeypatch):
    monkeypatch.setenv("TLCORE_START_WITH_SAMPLE", "1")  # what `make run` sets
    at = go(open_app(), "train")
    assert "Sample: ants vs bees" in texts(at.sidebar.markdown)
    assert "(ants, bees)" in texts(at.markdown) and not at.button(key="start").disabled
    # a user who chose otherwise keeps their choice on the next visit
    go(at, "data").button(key="use_sample").click().run()
    saved = json.loads((settings.runs_dir() / "app-state.json").read_text())
    saved["data"] = None
    saved["model"] = "resnet18"
    (settings.runs_dir() / "app-state.json").write_text(json.dumps(saved))
    again = open_app()
    assert "not chosen yet" in texts(again.sidebar.markdown)


def test_data_page_lists_problems_by_file_and_refuses_paths_outside_the_root(tmp_path, monkeypatch):
    root = tmp_path / "server-data"
    make_images(root / "pets" / "cats", 12, (200, 40, 40))
    make_images(root / "pets" / "dogs", 3, (40, 40, 200))
    (root / "pets" / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    monkeypatch.setenv("TLCORE_DATA_ROOT", str(root))

    at = go(open_app(), "data")
    assert len(at.tabs) == 5  # the server folder tab joins sample, zip, images, texts
    at.text_input(key="root_typed").input("../").run()
    at.button(key="use_folder").click().run()
    assert "outside the allowed data folder" in texts(at.error)
    assert at.session_state["tl_selections"]["data"] is None  # nothing chosen, nothing lost

    at.text_input(key="root_typed").input("pets").run()
    at.button(key="use_folder").click().run()
    assert not at.exception
    warnings = texts(at.warning)
    assert "broken.jpg" in warnings  # the unreadable file is named
    assert at.session_state["tl_selections"]["data"]["kind"] == "folder"

    # no val/ folder here: the split is random and follows the slider
    at.slider(key="w_val_fraction_0").set_value(0.5).run()
    assert not at.exception
    assert at.session_state["tl_selections"]["val_fraction"] == 0.5
    manifest = at.session_state["tl_prepared"][1].manifest
    assert manifest.val_fraction == 0.5
    assert sum(manifest.counts()["val"].values()) >= 6


def test_data_page_shows_an_untrainable_dataset_as_an_error(tmp_path, monkeypatch):
    root = tmp_path / "server-data"
    make_images(root / "only" / "cats", 5, (200, 40, 40))
    monkeypatch.setenv("TLCORE_DATA_ROOT", str(root))
    at = go(open_app(), "data")
    at.text_input(key="root_typed").input("only").run()
    at.button(key="use_folder").click().run()
    assert not at.exception
    assert "Not ready to train" in texts(at.error)
    assert "ERROR" in texts(at.error)


# --- Model ------------------------------------------------------------------------------------
def test_model_page_shows_the_catalog_and_records_the_choice():
    at = go(open_app(), "model")
    table = at.dataframe[0].value
    assert "tf_efficientnet_lite0" in list(table["model"])
    assert {"parameters (M)", "ImageNet top-1 (%)", "input size (px)", "weights"} <= set(table)
    assert table.set_index("model").loc["tf_efficientnet_lite0", "weights"].startswith("bundled")
    assert "pretrained" in texts(at.info)
    assert at.selectbox(key="model_pick").value == "tf_efficientnet_lite0"

    at.selectbox(key="model_pick").set_value("tf_efficientnet_lite1").run()
    assert at.session_state["tl_selections"]["model"] == "tf_efficientnet_lite1"
    at.radio(key="weights_kind").set_value("scratch").run()
    assert at.session_state["tl_selections"]["weights"] == "scratch"
    assert "tf_efficientnet_lite1" in texts(at.sidebar.markdown)

    at.toggle(key="w_expert_model_0").set_value(True).run()
    at.text_input(key="model_query").input("resnet18").run()
    assert "resnet18" in at.selectbox(key="model_pick_any").options
    assert not at.exception


# --- Layers -----------------------------------------------------------------------------------
def trainable(at: AppTest) -> int:
    metric = next(m for m in at.metric if m.label == "Trainable parameters")
    return int(metric.value.replace(",", ""))


def test_layers_presets_and_toggles_change_the_trainable_count():
    at = go(open_app(), "layers")
    assert at.get("plotly_chart"), "layer-group diagram"
    total = int(next(m for m in at.metric if m.label == "of all parameters").value.replace(",", ""))
    head_only = trainable(at)
    assert 0 < head_only < total / 100

    at.button(key="preset_full").click().run()
    assert trainable(at) == total
    at.button(key="preset_last-k").click().run()
    last_three = trainable(at)
    assert head_only < last_three < total
    assert at.session_state["tl_selections"]["freeze"]["preset"] == "last-k"

    at.button(key="preset_features").click().run()
    assert trainable(at) == head_only
    model = at.session_state["tl_selections"]["model"]
    groups = f"w_groups_{at.session_state['tl_widget_generations']['groups']}_{model}"
    at.toggle(key=f"{groups}_train_0").set_value(True).run()  # the stem, by hand
    freeze = at.session_state["tl_selections"]["freeze"]
    assert freeze["preset"] == "custom" and freeze["trainable"][0] is True
    assert head_only < trainable(at) < total

    at.number_input(key=f"{groups}_lr_0").set_value(0.1).run()
    assert at.session_state["tl_selections"]["freeze"]["lr_mult"][0] == pytest.approx(0.1)
    assert not at.exception


def test_a_broken_saved_plan_is_an_error_message_not_a_traceback():
    settings.runs_dir().mkdir(parents=True, exist_ok=True)
    (settings.runs_dir() / "app-state.json").write_text(json.dumps({"freeze": {"preset": "nope"}}))
    at = go(open_app(), "layers")
    assert "freeze.preset must be one of" in texts(at.error)
    at.button(key="reset_plan").click().run()
    assert not at.error and trainable(at) > 0


# --- Train and Runs ---------------------------------------------------------------------------
def test_train_page_needs_data_first():
    at = go(open_app(), "train")
    assert "Choose a dataset" in texts(at.warning)
    assert at.button(key="start").disabled


@pytest.mark.slow
def test_train_page_starts_a_run_that_the_page_and_the_runs_list_show():
    at = go(choose_sample(open_app()), "train")
    assert at.number_input(key="w_train_epochs_0").value == 5  # TrainConfig's default
    at.number_input(key="w_train_epochs_0").set_value(1)
    at.select_slider(key="w_train_img_size_0").set_value(64)
    at.radio(key="w_train_augment_0").set_value("none")
    at.run()

    at.button(key="find_lr").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Use " in b.label for b in at.button), "suggested learning rate"

    at.button(key="start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    runs = list_runs()
    assert len(runs) == 1 and runs[0].dir.is_dir()
    run = runs[0]
    assert at.session_state["tl_selections"]["run_id"] == run.id
    assert at.query_params["run"] in (run.id, [run.id])
    config = run.config
    assert (config.epochs, config.img_size, config.augment) == (1, 64, "none")
    assert config.freeze["preset"] == "features"

    assert run.wait(timeout=240)["state"] == "finished", run.log_path.read_text()
    at.run()
    final = run.epochs()[-1]
    shown = next(m for m in at.metric if m.label == "Final validation accuracy").value
    assert shown == f"{final['val_acc']:.1%}"
    # loss, accuracy, confusion; the head was solved (fast path): no learning rate to draw,
    # and the page says why instead of an empty chart
    drawn = {chart.key for chart in at.get("plotly_chart")}
    assert final.get("head") and {"train-loss", "train-acc", "train-confusion"} <= drawn
    assert "train-lr" not in drawn
    from appkit.runview import SOLVED_HEAD_NO_LR

    assert SOLVED_HEAD_NO_LR in [c.value for c in at.caption]

    # a new tab (new session, same URL) finds the run and the choices
    other = open_app(run=run.id)
    sidebar = texts(other.sidebar.markdown)
    assert run.id in sidebar and "ants vs bees" in sidebar

    go(at, "runs")
    table = at.dataframe[0].value
    assert list(table["run"]) == [run.id]
    assert table.loc[0, "status"] == "finished"
    assert table.loc[0, "best val accuracy"] == pytest.approx(final["val_acc"])


def test_on_a_multi_gpu_machine_the_train_page_trains_with_several_processes(monkeypatch):
    """The GPU count is patched (this machine has none): the page's choice reaches torchrun,
    which then trains two gloo processes on the CPU."""
    import tlcore.training.distributed

    at = go(choose_sample(open_app()), "train")
    assert not [s for s in at.selectbox if s.label == "GPUs (processes)"]  # none here: no choice
    monkeypatch.setattr(tlcore.training.distributed, "gpu_count", lambda: 2)
    at.run()
    at.number_input(key="w_train_epochs_0").set_value(1)
    at.select_slider(key="w_train_img_size_0").set_value(64)
    at.radio(key="w_train_augment_0").set_value("none")
    at.selectbox(key="w_train_nproc_0").set_value(2)
    at.run()
    at.button(key="start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [run] = list_runs()
    assert run.config.nproc == 2
    assert run.wait(timeout=240)["state"] == "finished", run.log_path.read_text()[-3000:]
    assert "rank 1 of 2 (gloo)" in run.log_path.read_text()


def test_runs_page_without_runs_says_so():
    at = go(open_app(), "runs")
    assert "No runs yet" in texts(at.info)


def test_an_unknown_run_in_the_url_is_forgotten_quietly():
    at = open_app(run="20990101-000000-nothing")
    assert not at.exception
    assert at.session_state["tl_selections"]["run_id"] is None


@pytest.mark.slow
def test_stop_then_resume_from_the_train_page():
    at = go(choose_sample(open_app()), "train")
    at.number_input(key="w_train_epochs_0").set_value(3)
    at.select_slider(key="w_train_img_size_0").set_value(64)
    at.radio(key="w_train_augment_0").set_value("light")  # the full-model path: slow enough
    at.run()
    # augmentation that changes every epoch: the estimate says so and names the fast choice
    assert "Estimated time: about" in texts(at.info) and "augmentation 'none'" in texts(at.caption)
    at.button(key="start").click().run()
    run = list_runs()[0]
    assert at.button(key="stop") is not None
    at.button(key="stop").click().run()
    status = run.wait(timeout=240)
    assert status["state"] == "stopped", run.log_path.read_text()
    at.run()
    assert "stopped" in texts(at.markdown)
    labels = [m.label for m in at.metric]
    assert "Latest validation accuracy" in labels and not any("Final" in x for x in labels)
    at.button(key="resume").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert run.wait(timeout=300)["state"] == "finished", run.log_path.read_text()
    at.run()
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3]
    assert "finished" in texts(at.markdown)
    assert "Final validation accuracy" in [m.label for m in at.metric]


def test_train_page_offers_settings_that_suit_a_new_freeze_plan():
    """Fine-tuning left at feature-extraction settings trains worse than it should, so the
    page offers the settings that suit the plan, says why, and applies them on request."""
    from tlcore.training.config import suggested_settings

    at = go(choose_sample(open_app()), "train")
    assert "Estimated time: about" in texts(at.success)  # feature extraction: the fast path
    assert not [b for b in at.button if b.key == "use_suggested"]  # the defaults already suit
    # the solved head ignores the learning rate: the page says so, and only then
    assert "Not used with these settings" in texts(at.caption)
    assert "calculated in one go" in texts(at.caption) and "L-BFGS" not in texts(at.caption)
    at.radio(key="w_train_augment_0").set_value("light").run()
    assert "Not used with these settings" not in texts(at.caption)
    at.radio(key="w_train_augment_0").set_value("none").run()
    go(at, "layers")
    at.button(key="preset_last-k").click().run()
    go(at, "train")
    wanted = suggested_settings("last-k")
    assert "Suggested for Fine-tune the last" in texts(at.markdown)
    at.button(key="use_suggested").click().run()
    assert not at.exception, [e.value for e in at.exception]
    chosen = at.session_state["tl_selections"]["train"]
    assert chosen["epochs"] == wanted["epochs"] and chosen["augment"] == wanted["augment"]
    epochs = next(n for n in at.number_input if n.label == "Epochs")
    assert epochs.value == wanted["epochs"]  # the widgets show the new values
    if "backbone_lr_scale" in wanted:
        mult = at.session_state["tl_selections"]["freeze"]["lr_mult"]
        assert mult[-1] == 1.0 and set(mult[:-1]) == {wanted["backbone_lr_scale"]}
    assert not [b for b in at.button if b.key == "use_suggested"]  # applied: no more offer
    assert "Estimated time: about" in texts(at.info)  # fine-tuning: not the fast path
    assert "Not used with these settings" not in texts(at.caption)  # its lr is used


# --- the embedding pass's bar -----------------------------------------------------------------
def test_a_run_embedding_its_photos_shows_a_count_and_time_left(sample_dir):
    """Before the first epoch the fast path embeds every photo once: the run's status holds
    that pass (``tlcore.runs.worker``) and the page draws it as its own bar."""
    import subprocess
    import sys

    from tlcore.data.progress import Progress
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    run = Run.create(TrainConfig(data=str(sample_dir), img_size=64, epochs=2))
    # a live process that looks like this run's worker (the status check reads /proc)
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "tlcore.runs.worker", run.dir.name]
    )
    try:
        embedding = Progress("Embedding the photos once (fast path)", 30, 120, 6.0).to_dict()
        run.write_status("running", pid=stand_in.pid, message="Embedding…", embedding=embedding)
        at = go(open_app(), "runs")
        bars = {e.proto.text: e.proto.value for e in at.get("progress")}
        text = "Embedding the photos once (fast path): 30 of 120 · about 18 s left"
        assert bars.get(text) == 25, bars
    finally:
        stand_in.kill()


def test_the_sidebar_says_which_epoch_its_accuracy_is_from():
    """The sidebar said 98.4 % (the last epoch) while Evaluate said 99.0 % (the best)."""
    from appkit.runview import accuracy_words

    epochs = [{"epoch": 1, "val_acc": 0.99}, {"epoch": 2, "val_acc": 0.984}]
    assert accuracy_words(epochs) == (
        "validation accuracy 98.4% (last epoch); best 99.0% (epoch 1), the model Evaluate scores"
    )
    assert accuracy_words(epochs[:1]) == "validation accuracy 99.0% (last epoch)"


def test_the_embedding_map_gives_twelve_classes_twelve_colours():
    """Plotly's ten default colours came round again: 12 flowers, two of them both blue."""
    import pandas as pd

    from appkit.charts import embedding_map

    labels = [f"flower {i:02d}" for i in range(12)]
    frame = pd.DataFrame({"x": range(24), "y": range(24), "label": labels * 2, "file": "a.jpg"})
    colours = {trace.name: trace.marker.color for trace in embedding_map(frame).data}
    assert sorted(colours) == labels and len(set(colours.values())) == 12
