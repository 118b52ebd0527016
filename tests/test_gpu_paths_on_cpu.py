"""The code that only a GPU takes, run here on the CPU so a lent GPU is not its first user.

bf16 autocast and channels_last are switched on for the CPU by patching the
two helpers in ``tlcore.training.devices`` that decide them (CPU autocast supports
bf16); ``TrainConfig(compile=True)`` needs no patch, torch.compile works on
CPUs too. Each trains a real run against the same run in plain fp32 eager.
"""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from tlcore.data.manifest import Manifest
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_predictor
from tlcore.runs.worker import execute
from tlcore.training import devices
from tlcore.training import trainer as train_module
from tlcore.training.config import TrainConfig


def step_losses(run: Run) -> list[float]:
    return [e["loss"] for e in run.metrics() if e.get("type") == "step"]


def train_in_process(config: TrainConfig) -> Run:
    run = Run.create(config)
    assert execute(run, resume=False) == 0, run.log_path.read_text()[-3000:]
    assert run.status()["state"] == "finished"
    return run


def gpu_precision_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``tlcore.training.devices`` decides on a CUDA GPU with bf16, decided for the CPU."""
    monkeypatch.setattr(devices, "autocast_dtype", lambda device: torch.bfloat16)
    monkeypatch.setattr(devices, "uses_channels_last", lambda device: True)
    monkeypatch.setattr(train_module, "uses_channels_last", lambda device: True)


def test_bf16_autocast_and_channels_last_train_save_and_predict_like_fp32(sample_dir, monkeypatch):
    # last-3 groups train, so the backbone's convolutions run forward and backward in bf16
    common = dict(data=str(sample_dir), img_size=64, epochs=2, lr=3e-3, augment="none",
                  freeze="last-3", num_workers=0, seed=0, device="cpu")  # fmt: skip
    fp32 = train_in_process(TrainConfig(**common))
    with monkeypatch.context() as patch:
        gpu_precision_on_cpu(patch)
        trainer = train_module.Trainer(TrainConfig(**common), Manifest.load(fp32.manifest_path))
        conv = next(p for p in trainer.model.parameters() if p.dim() == 4)
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
        bf16 = train_in_process(TrainConfig(**common))
        photos = [str(p) for p in sorted((sample_dir / "val").rglob("*.jpg"))[::5]]
        bf16_probs = load_predictor(bf16).predict(photos)

    first, second = step_losses(fp32), step_losses(bf16)
    assert len(first) == len(second) == 10
    assert first != second  # bf16 arithmetic really ran: not bit-identical to fp32
    assert second[0] == pytest.approx(first[0], rel=0.05)  # same weights, same batch: rounding only
    assert sum(second) == pytest.approx(sum(first), rel=0.15)  # and it trains the same way
    [acc1, acc2] = [
        [e["val_acc"] for e in r.metrics() if e.get("type") == "epoch"] for r in (fp32, bf16)
    ]
    assert abs(acc1[-1] - acc2[-1]) <= 0.1 and acc2[-1] >= 0.6, (acc1, acc2)
    # the channels_last bf16 checkpoint loads into an ordinary fp32 model and agrees with itself
    plain = load_predictor(bf16).predict(photos)
    assert plain.shape == (len(photos), 2)
    assert torch.allclose(plain, bf16_probs, atol=0.05)


def test_compile_trains_like_eager_and_keeps_checkpoint_names(sample_dir):
    """torch.compile (what --compile and TrainConfig(compile=True) do), on a tiny timm model
    so the compiler's start-up stays under a minute on two cores."""
    common = dict(data=str(sample_dir), model="test_efficientnet", weights="scratch", img_size=32,
                  epochs=2, augment="none", freeze="full", num_workers=0, seed=0, device="cpu")  # fmt: skip
    eager = train_in_process(TrainConfig(**common))
    counters.clear()
    compiled = train_in_process(TrainConfig(**common, compile=True))
    # really compiled (a failed compile would fall back to eager and match it trivially)
    assert counters["frames"]["ok"] >= 1 and not counters["aot_autograd"].get("not_ok"), counters
    assert step_losses(compiled) == pytest.approx(step_losses(eager), rel=1e-3)
    [e1], [e2] = (
        [e for e in r.metrics() if e.get("type") == "epoch"][-1:] for r in (eager, compiled)
    )
    assert e2["val_loss"] == pytest.approx(e1["val_loss"], rel=1e-3)
    # compiled in place: the checkpoint has the plain model's names and loads without compiling
    names = {run: set(load_predictor(run).model.state_dict()) for run in (eager, compiled)}
    assert names[eager] == names[compiled] and not any("_orig_mod" in n for n in names[compiled])


def test_a_compiler_that_fails_costs_speed_not_the_run(sample_dir, tmp_path, monkeypatch):
    """No working C++ compiler (as on a bare laptop): the run trains eagerly and says why,
    up front (torch used to try for ten seconds or more before falling back)."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # nothing cached
    run = Run.start(TrainConfig(data=str(sample_dir), model="test_efficientnet", weights="scratch",
                                img_size=32, epochs=1, augment="none", freeze="full",
                                num_workers=0, device="cpu", compile=True))  # fmt: skip
    status = run.wait(timeout=300)
    log = run.log_path.read_text()
    assert status["state"] == "finished", log[-3000:]
    assert "torch.compile off: the C++ compiler CXX=" in log and "not found" in log
    assert "torch.compile on" not in log  # no compiling was tried
    assert [e["epoch"] for e in run.metrics() if e.get("type") == "epoch"] == [1]
