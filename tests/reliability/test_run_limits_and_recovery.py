"""Runs under abuse: settings out of bounds, stop in every state, resume past a
damaged checkpoint, one broken run among many, an unusable runs folder.

CLI tests replace ``Run.spawn_worker`` so that, should a bad setting get through, no
worker starts training a billion epochs on the test machine: the test just fails.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from apptest_helpers import go, open_app, texts
from safetensors.torch import save_file

from tlcore import settings
from tlcore.cli import main as cli
from tlcore.errors import ConfigError, RunError, TLCoreError
from tlcore.runs.run import Run, list_runs
from tlcore.training.checkpoints import load_checkpoint

from .conftest import error_line, quick_config


@pytest.fixture(scope="module")
def trained(sample_dir, tmp_path_factory) -> Path:
    from trained_run_fixture import trained_run_dir

    return trained_run_dir(sample_dir, tmp_path_factory.getbasetemp())


@pytest.fixture()
def no_worker(monkeypatch):
    def refuse(self, *, resume):
        raise AssertionError(f"a worker was about to start for {self.id}: the setting got through")

    monkeypatch.setattr(Run, "spawn_worker", refuse)


def _runs_made() -> list[str]:
    root = settings.runs_dir()
    return (
        sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
        if root.exists()
        else []
    )


def _copy_into_runs(trained: Path, name: str | None = None) -> Run:
    dest = settings.runs_dir() / (name or trained.name)
    shutil.copytree(trained, dest, ignore=shutil.ignore_patterns("exports", "evaluation*"))
    return Run(dest)


# -- 4, 8, 9: bounds before a run exists ---------------------------------------------------------

BAD_FLAGS = {
    "epochs": (["--epochs", "1000000000"], "--epochs '1000000000' is not valid"),
    "seed": (["--seed", str(2**70)], "--seed '1180591620717411303424' is not valid"),
    "img_size": (["--img-size", "100000"], "--img-size '100000' is not valid"),
    "batch_size": (["--batch-size", "10000000"], "--batch-size '10000000' is not valid"),
}


@pytest.mark.parametrize("flag", list(BAD_FLAGS))
def test_out_of_bounds_flags_are_refused_before_a_run_exists(tiny_data, no_worker, capsys, flag):
    extra, message = BAD_FLAGS[flag]
    code = cli(["train", "--data", str(tiny_data), "--img-size", "64", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in error_line(err)
    assert _runs_made() == []


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 10**9), ("seed", 2**64), ("seed", -1), ("img_size", 100_000),
     ("batch_size", 10**7), ("num_workers", 10**6), ("early_stopping", 10**9)],
)  # fmt: skip
def test_the_library_refuses_the_same_settings(tiny_data, field, value):
    with pytest.raises(ConfigError, match=f"{field} = "):
        Run.create(quick_config(tiny_data, **{field: value}))
    assert _runs_made() == []


def test_a_batch_that_cannot_fit_in_memory_is_refused_with_the_estimate(tiny_data):
    config = quick_config(tiny_data, img_size=2048, batch_size=512, freeze="full")
    with pytest.raises(ConfigError, match=r"needs at least an estimated [\d,.]+ GB"):
        Run.create(config)
    assert _runs_made() == []
    Run.create(quick_config(tiny_data, img_size=64, batch_size=512, freeze="full"))  # fits


# -- 4: stop works in every state ------------------------------------------------------------


def test_stop_before_training_started_ends_the_run_without_a_step(tiny_data):
    """Asked to stop while queued or loading, the worker ends before it trains at all."""
    run = Run.create(quick_config(tiny_data, epochs=3))
    run.stop()
    assert run.stop_path.exists()
    run.spawn_worker(resume=False)
    status = run.wait(timeout=120)
    assert status["state"] == "stopped", status
    assert "before training started" in status["message"]
    assert [e for e in run.metrics() if e.get("type") == "step"] == []


# -- 10: resume past a damaged checkpoint --------------------------------------------------------


def test_resume_skips_a_truncated_last_checkpoint_and_uses_best(trained, tmp_path):
    """The worker's resume step on a real run: last.state.pt cut short, best intact."""
    from safetensors.torch import load_file

    from tlcore.data.manifest import Manifest
    from tlcore.runs.worker import choose_trainer, resume_from_intact_checkpoint

    run = _copy_into_runs(trained)
    state = run.checkpoints_dir / "last.state.pt"
    state.write_bytes(state.read_bytes()[:3000])
    trainer = choose_trainer(run.config, Manifest.load(run.manifest_path), [], tmp_path)
    note = resume_from_intact_checkpoint(run, trainer)
    assert "last.state.pt is damaged" in note and "resumed from the 'best' checkpoint" in note
    best_epoch = max((e for e in run.epochs() if e.get("is_best")), key=lambda e: e["epoch"])
    assert trainer.epoch == best_epoch["epoch"] > 0
    best = load_file(str(run.checkpoints_dir / "best.safetensors"))
    assert all(torch.equal(best[k], v) for k, v in trainer.model.state_dict().items())


def test_a_truncated_last_safetensors_is_reported_as_damaged_and_leaves_the_model(tmp_path):
    from tlcore.training.checkpoints import CheckpointDamaged

    model = torch.nn.Linear(4, 2)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "last.safetensors"), metadata={"step": "7"})  # fmt: skip
    torch.save({"step": 7}, folder / "last.state.pt")
    weights = folder / "last.safetensors"
    weights.write_bytes(weights.read_bytes()[:60])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointDamaged, match="last.safetensors is damaged"):
        load_checkpoint(folder, "last", model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# -- 11: one broken run does not hide the others ---------------------------------------------


def _broken_runs() -> dict[str, str]:
    broken = {"20990101-000000-bad-json": "{bad", "20990101-000001-a-list": "[]",
              "20990101-000002-no-config": json.dumps({"id": "x", "config": 5})}  # fmt: skip
    for name, text in broken.items():
        (settings.runs_dir() / name).mkdir(parents=True)
        (settings.runs_dir() / name / "config.json").write_text(text)
    return broken


def test_runs_lists_the_good_runs_and_the_broken_ones_as_broken(trained, capsys):
    good = _copy_into_runs(trained)
    broken = _broken_runs()
    assert cli(["runs"]) == 0
    out = capsys.readouterr().out
    assert good.id in out and "finished" in out
    for name in broken:
        assert f"{name}" in out and "broken" in out
    assert cli(["runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().split("\n")[-1])["runs"]
    states = {r["id"]: r["state"] for r in rows}
    assert states == {good.id: "finished", **dict.fromkeys(broken, "broken")}
    assert all("Cannot be read" in r["message"] for r in rows if r["state"] == "broken")


def test_the_runs_page_shows_the_others_and_names_the_broken(trained):
    good = _copy_into_runs(trained)
    broken = _broken_runs()
    at = go(open_app(), "runs")
    assert at.selectbox(key="open_run").options == [good.id]
    warnings = texts(at.warning)
    for name in broken:
        assert f"Run {name}: Cannot be read" in warnings


# -- smaller: a damaged status.json, an unreadable --weights file ----------------------------


def test_a_corrupt_status_json_does_not_turn_a_finished_run_into_interrupted(trained):
    run = _copy_into_runs(trained)
    run.status_path.write_text('{"state": "finis')
    status = run.status()
    assert status["state"] == "finished" and status["epoch"] == 3, status
    assert "status.json is damaged" in status["message"]
    assert list_runs()[0].summary()["state"] == "finished"


def test_an_unreadable_weights_file_is_refused_before_a_run_exists(tiny_data, tmp_path):
    notes = tmp_path / "weights.pth"
    notes.write_text("these are not weights")
    with pytest.raises(TLCoreError, match="weights.pth"):
        Run.create(quick_config(tiny_data, weights=str(notes)))
    assert _runs_made() == []


# -- 15: a runs folder that is a file ----------------------------------------------------------


def test_a_runs_folder_that_is_a_file_is_one_line(tiny_data, tmp_path, monkeypatch, no_worker,
                                                  capsys):  # fmt: skip
    blocker = tmp_path / "runs-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(blocker))
    assert cli(["train", "--data", str(tiny_data), "--img-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "TLCORE_RUNS_DIR" in error_line(err)
    with pytest.raises(RunError, match="cannot create a run"):
        Run.create(quick_config(tiny_data))
    assert os.path.isfile(blocker)
