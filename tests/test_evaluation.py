"""Per-class scores, confusion matrices, confused pairs and top losses, by hand and on a real run."""

from __future__ import annotations

import math

import pytest
import torch
from trained_run_fixture import trained_run_dir

from tlcore.data.manifest import Manifest
from tlcore.results.evaluation import confused_pairs, evaluate_probabilities
from tlcore.runs.run import Run
from tlcore.runs.scoring import evaluate_run, load_predictor


@pytest.fixture(scope="session")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


def test_report_from_hand_made_probabilities():
    classes = ["cat", "dog", "fox"]
    probs = torch.tensor(
        [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]]
    )
    targets = [0, 1, 1, 2, 0]  # wrong: #2 (dog as cat, p=0.3), #4 (cat as dog, p=0.3)
    report = evaluate_probabilities(probs, targets, classes, [f"f{i}" for i in range(5)], worst_k=3)
    assert report.confusion == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert report.confusion_normalized[0] == [0.5, 0.5, 0.0]
    assert report.accuracy == pytest.approx(3 / 5)
    cat = report.per_class[0]
    assert (cat["precision"], cat["recall"], cat["support"]) == (0.5, 0.5, 2)
    assert report.per_class[2]["f1"] == 1.0
    assert report.macro_f1 == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert [p["text"] for p in report.confused_pairs] == [
        "1 cat predicted as dog",
        "1 dog predicted as cat",
    ]
    assert [m.path for m in report.worst] == ["f2", "f4", "f1"]
    assert report.worst[0].loss == pytest.approx(-math.log(0.3))
    assert (report.worst[0].predicted, report.worst[0].confidence) == ("cat", pytest.approx(0.6))
    assert not report.worst[0].correct and report.worst[2].correct
    assert "precision" in report.text() and "dog predicted as cat" in report.text()
    assert report.to_dict()["worst"][0]["path"] == "f2"


def test_confused_pairs_are_sorted_and_worded():
    pairs = confused_pairs([[5, 12, 0], [1, 9, 3], [0, 0, 4]], ["ants", "bees", "wasps"])
    assert [p["text"] for p in pairs] == [
        "12 ants predicted as bees",
        "3 bees predicted as wasps",
        "1 bees predicted as ants",
    ]


def test_evaluating_a_real_run_matches_its_record_and_a_hand_count(run):
    report = evaluate_run(run, "last")
    recorded = run.epochs()[-1]
    assert report.accuracy == pytest.approx(recorded["val_acc"])
    assert report.confusion == run.latest_confusion()["matrix"]
    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for("val")
    preds = load_predictor(run, "last").predict([it.path for it in items]).argmax(1).tolist()
    hand = [[0, 0], [0, 0]]
    for item, pred in zip(items, preds, strict=True):
        hand[item.label][pred] += 1
    assert report.confusion == hand
    assert report.n_images == 40 and [r["support"] for r in report.per_class] == [20, 20]
    tp = hand[0][0]
    assert report.per_class[0]["precision"] == pytest.approx(tp / (hand[0][0] + hand[1][0]))
    assert report.per_class[0]["recall"] == pytest.approx(tp / 20)
    # probabilities are calibrated: the raw model's loss is the recorded one,
    # and the fitted temperature only lowers it
    raw = evaluate_run(run, "last", predictor=load_predictor(run, "last").set_trust(None))
    assert raw.loss == pytest.approx(recorded["val_loss"], rel=1e-4)
    assert report.loss <= raw.loss + 1e-6
    losses = [m.loss for m in report.worst]
    assert losses == sorted(losses, reverse=True) and len(report.worst) == 12
    wrong = hand[0][1] + hand[1][0]
    assert sum(not m.correct for m in report.worst) == min(wrong, 12)


def test_a_finished_run_keeps_its_score_for_the_evaluate_page(run):
    """The worker scores the run once when it finishes: the page reads the file, not the photos."""
    import os

    from tlcore.runs.scoring import evaluation_path, stored_evaluation
    from tlcore.training.checkpoints import checkpoint_paths

    assert "(best)" in stored_evaluation(run, "best").source
    if evaluation_path(run, "last").is_file():  # kept too when best and last are the same
        assert "(last)" in stored_evaluation(run, "last").source
    kept, fresh = stored_evaluation(run, "best"), evaluate_run(run, "best")
    assert (kept.accuracy, kept.confusion, kept.per_class) == (
        fresh.accuracy,
        fresh.confusion,
        fresh.per_class,
    )
    assert [m.path for m in kept.worst] == [m.path for m in fresh.worst]
    # a checkpoint replaced later (a resumed run) makes the kept score stale: not used
    weights = checkpoint_paths(run.checkpoints_dir, "best")[0]
    stat = weights.stat()
    try:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert stored_evaluation(run, "best") is None
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert stored_evaluation(run, "best") is not None
