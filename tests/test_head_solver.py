"""The fast path's head trained to convergence (L-BFGS, C by k-fold CV on training photos).

One Trainer on the real ants/bees photos at 64 px with the bundled Lite0 weights:
feature extraction, light augmentation with 2 cached views per training photo.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcore.data.prepare import prepare_data
from tlcore.training import head_solver
from tlcore.training.config import TrainConfig, suggested_settings
from tlcore.training.trainer import Callback, Trainer


class Events(Callback):
    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.epochs: list[dict] = []

    def on_step_end(self, trainer, event):
        self.steps.append(event)

    def on_epoch_end(self, trainer, event):
        self.epochs.append(event)


@pytest.fixture(scope="module")
def fitted(sample_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("head")
    manifest = prepare_data(sample_dir, manifest_path=tmp / "m.json").manifest
    config = TrainConfig(data=str(sample_dir), epochs=3, img_size=64, augment="light",
                         augment_views=2, device="cpu")  # fmt: skip
    events = Events()
    trainer = Trainer(config, manifest, callbacks=[events], cache_dir=tmp / "cache")
    assert trainer.fast_path, trainer.fast_path_reason  # augmented, yet embedded only once
    assert trainer.fit() == "finished"
    return trainer, events, manifest, tmp / "cache"


def test_head_is_the_tuned_logistic_regression_on_real_embeddings(fitted):
    from sklearn.linear_model import LogisticRegression

    trainer = fitted[0]
    x, y = trainer.train_views[0].double(), trainer.embeddings["train"][1]
    xv, yv = (t.numpy() for t in trainer.embeddings["val"])
    criterion = torch.nn.CrossEntropyLoss()
    fit = head_solver.choose_l2(x[None], y, 2, criterion, seed=0)
    assert fit.folds == 5 and set(fit.cv_accuracy) == {f"{c:g}" for c in head_solver.C_GRID}
    head = head_solver.LogisticHead(x, y, 2, criterion, fit.c).solve()
    assert head.converged and head.gradient < 1e-4
    # the optimum itself: scikit-learn's (binary) logistic regression with the same C
    ours = ((head.weight[1] - head.weight[0]) / head.scale).detach().numpy()  # raw features
    sk = LogisticRegression(C=fit.c, max_iter=5000, tol=1e-10).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(ours, sk.coef_[0], atol=2e-3 * np.abs(sk.coef_).max())
    # so on validation it predicts exactly what the tuned logistic regression predicts
    ours_val = head.logits(torch.from_numpy(xv)).argmax(1).numpy()
    np.testing.assert_array_equal(ours_val, sk.predict(xv))
    # and the C it chose is the best held-out accuracy of the grid, on training photos only
    assert fit.cv_accuracy[f"{fit.c:g}"] == max(fit.cv_accuracy.values())


def test_the_runs_events_and_model_hold_the_converged_head(fitted):
    trainer, events = fitted[0], fitted[1]
    assert [e["epoch"] for e in events.epochs] == [1, 2, 3]
    assert events.steps and all(s["loss"] > 0 for s in events.steps)
    last = events.epochs[-1]
    assert last["head"]["solver"] == "lbfgs" and last["head"]["converged"]
    assert last["lr"] == {}  # no learning rate to plot: the line search sets each step
    # the model's own classifier gives the event's validation accuracy
    x, y = trainer.embeddings["val"]
    trainer.model.eval()
    with torch.no_grad():
        predicted = trainer.model.get_classifier()(x).argmax(1)
    assert float((predicted == y).float().mean()) == pytest.approx(last["val_acc"])
    # the objective (loss + L2 penalty) falls as the solver works, epoch by epoch
    objectives = [e["head"]["objective"] for e in events.epochs]
    assert objectives == sorted(objectives, reverse=True)


def test_augmented_views_are_embedded_once_and_read_back(fitted):
    trainer, _, manifest, cache = fitted
    views = trainer.train_views
    assert views.shape[:2] == (3, 80)  # the photo as it is, then 2 augmented views
    assert not torch.allclose(views[0], views[1]) and not torch.allclose(views[1], views[2])
    assert len(list(cache.glob("*.safetensors"))) == 3  # the photos (train and val), views 1, 2
    again = Trainer(trainer.config, manifest, cache_dir=cache)
    again.embed_datasets()
    assert again.embedding_cache_hits == 4
    torch.testing.assert_close(again.train_views, views)


def test_folds_split_photos_evenly_by_class():
    labels = torch.tensor([0] * 13 + [1] * 7 + [2] * 5)
    folds = head_solver.stratified_folds(labels, 5, seed=0)
    joined = torch.cat(folds)
    assert sorted(joined.tolist()) == list(range(25))  # disjoint, and every photo once
    for fold in folds:
        counts = torch.bincount(labels[fold], minlength=3)
        assert counts[2] == 1 and counts[1] in (1, 2) and counts[0] in (2, 3)


def test_feature_extraction_defaults_keep_the_fast_path():
    features = suggested_settings("features")
    assert features["augment"] == "none" and features["head_solver"] == "lbfgs"
    assert suggested_settings({"preset": "full"})["augment"] != "none"
    defaults = TrainConfig()
    assert (defaults.augment, defaults.head_solver) == (features["augment"], "lbfgs")


def test_cv_in_the_span_of_the_rows_solves_the_same_problems(fitted):
    """choose_l2 fits its folds in the span of the training rows (fewer photos than
    features): the same objective and the same held-out predictions as in all D features."""
    trainer = fitted[0]
    views, y = trainer.train_views, trainer.embeddings["train"][1]
    z = head_solver.row_space(views)
    flat, zflat = views.reshape(-1, views.shape[2]).double(), z.reshape(-1, z.shape[2])
    assert z.shape[2] <= len(flat) < views.shape[2]
    # an isometry of the span: every distance between rows is kept
    distances = torch.cdist(flat, flat)
    torch.testing.assert_close(torch.cdist(zflat, zflat), distances,
                               atol=1e-6 * float(distances.max()), rtol=0)  # fmt: skip
    train, held = torch.arange(0, len(y), 2), torch.arange(1, len(y), 2)
    criterion = torch.nn.CrossEntropyLoss()
    for c in (0.01, 0.1):  # (weaker L2 on these near-separable rows: both stop within the
        heads = [head_solver.LogisticHead(v[:, train].reshape(-1, v.shape[2]),
                                          y[train].repeat(len(v)), 2, criterion, c).solve()
                 for v in (views, z)]  # fmt: skip
        # gradient tolerance at objectives 0.5 % apart, the projected one the lower)
        assert all(h.converged for h in heads)
        assert abs(heads[0].loss - heads[1].loss) <= 1e-3 * heads[0].loss
        raw, projected = heads[0].logits(views[0, held]), heads[1].logits(z[0, held])
        assert torch.equal(raw.argmax(1), projected.argmax(1))
        torch.testing.assert_close(raw.softmax(1), projected.softmax(1), atol=2e-2, rtol=0)
    # many photos (rows >= features): nothing to gain, the embeddings come back as they are
    wide = torch.randn(1, 40, 16)
    assert head_solver.row_space(wide) is wide


def test_the_l2_is_chosen_with_three_shuffles_on_a_small_set_and_one_on_a_large_one(monkeypatch):
    """Three shuffles break ties on a few dozen photos; on hundreds one shuffle decides as
    well, in a third of the time (the default run's head is then seconds, not tens of them)."""
    from tlcore.training import head_solver

    solves = []
    original = head_solver.LogisticHead.solve

    def counted(self):
        solves.append(1)
        return original(self)

    monkeypatch.setattr(head_solver.LogisticHead, "solve", counted)
    criterion = torch.nn.CrossEntropyLoss()
    for photos, expected in ((head_solver.CV_SMALL_SET, 3), (head_solver.CV_SMALL_SET + 1, 1)):
        solves.clear()
        generator = torch.Generator().manual_seed(0)
        labels = torch.arange(photos) % 2
        views = (torch.randn(1, photos, 8, generator=generator) + labels[None, :, None]).float()
        fit = head_solver.choose_l2(views, labels, 2, criterion, seed=0)
        assert fit.folds == 5
        assert len(solves) == expected * 5 * len(head_solver.C_GRID), photos
