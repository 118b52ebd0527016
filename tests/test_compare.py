"""The Compare experiment on the bundled ants/bees photos with the real bundled weights.

The classroom claim is tested as stated: at one fixed budget, every transfer
variant (b)-(e) ends with a higher validation accuracy than training from
scratch (a). The budget is small so the five real runs (five worker processes,
one after another) finish in 85-115 s on a loaded 2-core machine: 96 px, 2 epochs,
no augmentation (so (b) takes the embedding-cache fast path).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tlcore.cli import main as cli_main
from tlcore.errors import ConfigError, DataError, RunError
from tlcore.lab.compare import (
    FINE_TUNE_LR_DECAY,
    VARIANTS,
    Experiment,
    list_experiments,
)
from tlcore.runs.run import Run, list_runs
from tlcore.training.config import TrainConfig

IMG_SIZE, EPOCHS, LR = 96, 2, 0.003
HEAD_PARAMS = 1280 * 2 + 2  # EfficientNet-Lite0's new head for two classes


@pytest.fixture(autouse=True)
def one_thread_per_worker(monkeypatch):
    """Workers inherit this: on a shared 2-core machine 2 OpenMP threads per worker thrash."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_every_transfer_variant_beats_scratch_at_the_same_budget(sample_dir, capsys):
    code = cli_main(
        ["compare", "--data", str(sample_dir), "--epochs", str(EPOCHS), "--img-size",
         str(IMG_SIZE), "--lr", str(LR), "--device", "cpu", "--json"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    result = last_json(out)
    rows = {r["key"]: r for r in result["results"]}
    print(
        {k: (r["val_acc"], round(r["seconds"], 1), r["trainable_params"]) for k, r in rows.items()}
    )
    assert result["state"] == "finished"
    assert [r["state"] for r in rows.values()] == ["finished"] * 5, out
    assert "(b) Feature extraction" in out and "(fast path)" in out  # the per-run lines

    scratch = rows["a"]["val_acc"]
    for key in "bcde":
        assert rows[key]["val_acc"] > scratch, (key, rows[key]["val_acc"], scratch)

    # what each variant trained: head only < last groups < everything (= scratch's count)
    params = {k: r["trainable_params"] for k, r in rows.items()}
    assert params["b"] == HEAD_PARAMS
    assert params["b"] < params["c"] < params["d"] == params["a"]
    assert HEAD_PARAMS < params["e"] < params["d"]  # progressive: head + one group by epoch 2
    assert rows["b"]["fast_path"] is True
    assert not any(rows[k]["fast_path"] for k in "acde")
    assert all(r["seconds"] > 0 and r["epochs_done"] == EPOCHS for r in rows.values())

    # the same budget, read back from the run directories the engine wrote
    experiment = Experiment.open(result["dir"])
    assert list_experiments()[0].id == experiment.id
    configs = {r["key"]: Run.open(r["run_id"]).config for r in result["results"]}
    budget = {
        (c.manifest_path, c.seed, c.epochs, c.img_size, c.batch_size, c.lr, c.augment)
        for c in configs.values()
    }
    assert len(budget) == 1
    assert {c.experiment for c in configs.values()} == {experiment.id}
    assert configs["a"].weights == "scratch"
    assert {configs[k].weights for k in "bcde"} == {"bundled"}
    assert [configs[k].freeze["preset"] for k in "abcde"] == [
        "full", "features", "last-k", "full", "progressive",
    ]  # fmt: skip
    assert configs["d"].freeze["lr_decay"] == FINE_TUNE_LR_DECAY
    assert len(list_runs()) == 5
    summary = experiment.summary()
    assert [len(r["curve"]) for r in summary] == [EPOCHS] * 5
    assert summary[1]["curve"][-1]["val_acc"] == rows["b"]["val_acc"]
    assert experiment.status() == {"state": "finished", "done": 5, "total": 5}


def test_a_stopped_experiment_continues_in_a_detached_driver(sample_dir):
    base = TrainConfig(data=str(sample_dir), img_size=64, epochs=1, augment="none", device="cpu")
    experiment = Experiment.create(base, keys="b")
    experiment.stop()  # asked to stop before anything ran: nothing starts
    assert experiment.run_all()[0]["state"] == "waiting"
    assert experiment.status()["state"] == "stopped"
    assert list_runs() == []

    experiment.start()  # the page's path: `python -m tlcore.lab.compare DIR`, detached
    with pytest.raises(RunError, match="already running"):
        experiment.start()
    deadline = time.monotonic() + 180
    while experiment.status()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert experiment.status()["state"] == "finished", experiment.log_path.read_text()[-2000:]
    row = experiment.summary()[0]
    assert row["state"] == "finished" and row["fast_path"] is True
    assert "(b) Feature extraction: run" in experiment.log_path.read_text()


def test_the_plan_is_checked_before_anything_trains(sample_dir, tmp_path):
    base = TrainConfig(data=str(sample_dir), img_size=64, epochs=2, weights="scratch")
    experiment = Experiment.create(base, keys="bab")
    plan = experiment.record["variants"]
    assert [v["key"] for v in plan] == ["b", "a"]  # each once, in the order asked
    # a base that chose scratch still compares against the pretrained weights
    assert plan[0]["config"]["weights"] == "bundled" and plan[1]["config"]["weights"] == "scratch"
    assert all(v["config"]["early_stopping"] == 0 for v in plan)
    assert list_runs() == []  # nothing trained yet

    with pytest.raises(RunError, match="unknown comparison variant 'x'"):
        Experiment.create(base, keys="ax")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot"):
        Experiment.create(TrainConfig(data=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match="epochs"):
        Experiment.create(TrainConfig(data=str(sample_dir), epochs=0))
    assert [e.id for e in list_experiments()] == [experiment.id]  # failures left nothing behind
    with pytest.raises(RunError, match="no comparison experiment"):
        Experiment.open(tmp_path / "nowhere")
    assert len(VARIANTS) == 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "--epochs '0' is not valid"),
        (["--img-size", "8"], "--img-size '8' is not valid"),
        (["--only", "az"], "unknown comparison variant 'z'"),
    ],
)
def test_cli_refuses_bad_flags_with_one_line(sample_dir, capsys, flags, message):
    assert cli_main(["compare", "--data", str(sample_dir), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert list_runs() == []


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    assert cli_main(["compare", "--data", str(tmp_path / "missing")]) == 2
    assert "error: " in capsys.readouterr().err
    assert not Path(tmp_path / "runs" / "experiments").exists()


def test_the_plan_is_estimated_per_variant_before_anything_trains(sample_dir):
    from tlcore.data.prepare import prepare_trainable
    from tlcore.lab.compare import estimate_plan
    from tlcore.training.estimate import MachineSpeed

    prepared = prepare_trainable(str(sample_dir), "compare on")
    base = TrainConfig(data=str(sample_dir), epochs=3, img_size=IMG_SIZE, augment="none",
                       manifest_path=str(prepared.manifest_path))  # fmt: skip

    def measured(model: str, size: int | None, device: str) -> MachineSpeed:
        return MachineSpeed(model, size or IMG_SIZE, device, forward_s=0.01, train_s=0.04,
                            n_groups=9, measured_at=time.time())  # fmt: skip

    plan = dict((v.key, e) for v, e in estimate_plan(base, prepared.manifest, measure=measured))
    assert list(plan) == list("abcde") and not list_runs()  # nothing started
    assert plan["b"].fast_path and not any(plan[k].fast_path for k in "acde")
    # every layer forward and backward each epoch costs more than one pass for the head
    assert plan["a"].seconds == plan["d"].seconds > plan["c"].seconds > plan["b"].seconds
