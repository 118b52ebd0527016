"""A finished run reads its validation items once per checkpoint, from the end of training to
the Evaluate page's first paint (calibration, "none of these", scoring, clickable cells,
worst mistakes), and the numbers kept are the ones a fresh pass gives.

Real photos (ants/bees) and the bundled Lite0 weights, trained in this process (the worker's
``execute``) so every model call can be counted. Two runs: the fast path (the defaults:
frozen backbone, the held embeddings serve everything, so no validation photo is read
again) and a fine-tuned one whose best and last checkpoints differ (one pass each).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.results.predict import Predictor
from tlcore.runs import outputs as outputs_module
from tlcore.runs.checkpoint_model import raw_predictor
from tlcore.runs.outputs import outputs_path, stored_outputs, validation_outputs
from tlcore.runs.run import Run
from tlcore.runs.scoring import stored_evaluation
from tlcore.runs.trust_store import stored_trust
from tlcore.runs.worker import execute
from tlcore.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


class ModelReads:
    """Counts, per validation item, how often a trained model read it (any Predictor call)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, val: list[str]) -> None:
        self.val, self.reads = set(val), Counter()
        for name in ("logits", "logits_and_features", "embed"):
            original = getattr(Predictor, name)

            def counted(predictor, items, _original=original):
                self.reads.update(str(item) for item in items if str(item) in self.val)
                return _original(predictor, items)

            monkeypatch.setattr(Predictor, name, counted)

    @property
    def most(self) -> int:
        return max(self.reads.values(), default=0)


def _train(tmp_path: Path, monkeypatch, **settings_: object) -> tuple[Run, list[str]]:
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TLCORE_UPLOADS_DIR", str(tmp_path / "uploads"))
    config = TrainConfig(data=str(ROOT / "assets" / "ants-bees"), device="cpu", augment="none",
                         batch_size=16, **settings_)  # fmt: skip
    run = Run.create(config)
    val = [it.path for it in Manifest.load(run.manifest_path).items_for("val")]
    return run, val


def _first_paint_of_evaluate(run: Run) -> None:
    """What the Evaluate page reads for its first paint, through the same appkit calls."""
    from apptest_helpers import go, open_app

    at = go(open_app(), "evaluate")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="evaluate_run").value == run.id
    assert at.dataframe, "the page did not paint its scores"


@pytest.mark.slow
def test_fast_path_run_reads_no_validation_photo_after_training(tmp_path, monkeypatch):
    run, val = _train(tmp_path, monkeypatch, img_size=96, epochs=3)
    reads = ModelReads(monkeypatch, val)
    outputs_module.PASSES.clear()
    assert execute(run, resume=False) == 0
    assert run.status()["state"] == "finished"
    # training embedded each photo once; everything after it came from those embeddings
    assert reads.most == 0, reads.reads.most_common(3)
    for checkpoint in ("best", "last"):
        assert outputs_path(run, checkpoint).is_file()
        assert stored_trust(run, checkpoint) is not None
        assert stored_evaluation(run, checkpoint) is not None
    _first_paint_of_evaluate(run)
    assert reads.most <= 1, reads.reads.most_common(3)  # Grad-CAM of the hardest photo, once
    assert sum(outputs_module.PASSES.values()) == 0

    # the held embeddings give what a fresh pass of the checkpoint's model gives
    kept = stored_outputs(run, "best")
    fresh = outputs_module.score_validation(run, "best")
    assert torch.allclose(kept.features, fresh.features, atol=1e-4)
    assert torch.allclose(kept.logits, fresh.logits, atol=1e-4)
    assert torch.equal(kept.targets, fresh.targets)
    report = stored_evaluation(run, "best")
    probs = fresh.probabilities(stored_trust(run, "best").calibration.temperature)
    assert report.accuracy == pytest.approx(
        float((probs.argmax(1) == fresh.targets).float().mean())
    )


@pytest.mark.slow
def test_fine_tuned_run_reads_validation_once_per_checkpoint(tmp_path, monkeypatch):
    # two epochs of the last block at a high rate: best and last differ on this data
    run, val = _train(tmp_path, monkeypatch, img_size=64, epochs=2, freeze={"preset": "last-k",
                      "k": 2}, lr=0.05, early_stopping=0)  # fmt: skip
    reads = ModelReads(monkeypatch, val)
    outputs_module.PASSES.clear()
    assert execute(run, resume=False) == 0
    assert run.status()["state"] == "finished"
    from tlcore.runs.checkpoint_model import same_weights

    scored = 1 if same_weights(run) else 2
    assert Run.open(run.dir).status().get("fast_path") is False
    assert sum(outputs_module.PASSES.values()) == scored
    assert reads.most == scored, reads.reads.most_common(3)
    _first_paint_of_evaluate(run)
    assert reads.most <= scored + 1  # Grad-CAM of the hardest photo
    # a later call reads the kept file: no new pass
    validation_outputs(run, "best")
    assert sum(outputs_module.PASSES.values()) == scored


def test_outputs_of_a_replaced_checkpoint_are_not_used(tmp_path, monkeypatch):
    """A resumed run that rewrites the checkpoint voids what was kept for it."""
    import shutil

    src = ROOT / "tests" / "data" / "before-tasks" / "run"
    runs = tmp_path / "runs"
    run_dir = shutil.copytree(src, runs / "old-run")
    manifest = (run_dir / "manifest.json").read_text()
    (run_dir / "manifest.json").write_text(manifest.replace("/tmp/base/assets/", f"{ROOT}/assets/"))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs))
    run = Run.open(run_dir)
    first = validation_outputs(run, "best")  # a run from before: scored once, then kept
    assert stored_outputs(run, "best") is not None
    weights = run.checkpoints_dir / "best.safetensors"
    weights.write_bytes(weights.read_bytes())  # same bytes, a new file time
    import os

    os.utime(weights, ns=(1, 1))
    assert stored_outputs(run, "best") is None
    again = validation_outputs(run, "best")
    assert torch.allclose(first.logits, again.logits)
    assert raw_predictor(run, "best").classes == ["ants", "bees"]
    assert settings.runs_dir() == runs
