"""The feature-extraction fast path trains the same head as the full model, much faster."""

from __future__ import annotations

import pytest
import torch

from tlcore.data.prepare import prepare_data
from tlcore.training.config import TrainConfig
from tlcore.training.estimate import uses_fast_path
from tlcore.training.trainer import Callback, Trainer


@pytest.fixture(scope="module")
def manifest(sample_dir, tmp_path_factory):
    return prepare_data(sample_dir, manifest_path=tmp_path_factory.mktemp("m") / "m.json").manifest


class EpochLog(Callback):
    def __init__(self) -> None:
        self.events: list[dict] = []

    def on_epoch_end(self, trainer, event):
        self.events.append(event)


class EmbedProgress(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_embed_progress(self, trainer, done, total):
        self.seen.append((done, total))


def test_fast_and_slow_path_give_the_same_head(manifest, sample_dir):
    config = TrainConfig(data=str(sample_dir), epochs=2, img_size=96, batch_size=16,
                         augment="none", label_smoothing=0.1, seed=3,
                         head_solver="optimizer")  # fmt: skip
    results = {}
    for fast in (True, False):
        log = EpochLog()
        trainer = Trainer(config, manifest, callbacks=[log])
        assert trainer.fast_path, trainer.fast_path_reason
        trainer.fast_path = fast  # the switch under test: same init, same batch order
        assert trainer.fit() == "finished"
        head = trainer.model.get_classifier()
        results[fast] = (head.weight.detach().clone(), head.bias.detach().clone(), log.events)
    (w_fast, b_fast, ev_fast), (w_slow, b_slow, ev_slow) = results[True], results[False]
    assert not torch.equal(w_fast, torch.zeros_like(w_fast))
    torch.testing.assert_close(w_fast, w_slow, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(b_fast, b_slow, atol=2e-5, rtol=1e-4)
    for fast_event, slow_event in zip(ev_fast, ev_slow, strict=True):
        assert fast_event["fast_path"] and not slow_event["fast_path"]
        assert fast_event["train_loss"] == pytest.approx(slow_event["train_loss"], abs=1e-4)
        assert fast_event["val_acc"] == slow_event["val_acc"]
        assert fast_event["confusion"] == slow_event["confusion"]
    fast_s = min(e["seconds"] for e in ev_fast)  # min: robust to a busy shared CPU
    slow_s = min(e["seconds"] for e in ev_slow)
    print(f"epoch seconds: fast path {fast_s:.4f}, full model {slow_s:.3f}")
    assert fast_s * 3 < slow_s, (fast_s, slow_s)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"augment": "light"}, "augmentation"),
        ({"freeze": {"preset": "full"}}, "epoch 1"),
        ({"freeze": {"preset": "last-k", "k": 2}}, "epoch 1"),
        ({"freeze": {"preset": "progressive", "every": 2}}, "epoch 3"),
    ],
)
def test_fast_path_only_when_only_the_head_trains_on_fixed_pixels(
    manifest, sample_dir, changes, reason
):
    base = {"data": str(sample_dir), "epochs": 3, "img_size": 64, "augment": "none"}
    config = TrainConfig(**(base | changes))
    trainer = Trainer(config, manifest)
    assert not trainer.fast_path and reason in trainer.fast_path_reason
    assert not uses_fast_path(config, len(trainer.groups))  # the Train page's estimate agrees


def test_embedding_cache_is_reused_and_gives_the_same_head(manifest, sample_dir, tmp_path):
    config = TrainConfig(data=str(sample_dir), epochs=1, img_size=64, augment="none")
    from appkit.runview import speed_text

    heads = []
    for expected_hits in (0, 2):
        progress, log = EmbedProgress(), EpochLog()
        trainer = Trainer(config, manifest, cache_dir=tmp_path, callbacks=[progress, log])
        assert uses_fast_path(config, len(trainer.groups))  # the Train page's estimate agrees
        trainer.fit()
        assert trainer.embedding_cache_hits == expected_hits
        # a solved head streams no images: no images/s, but the solve's and the pass's times
        event = log.events[-1]
        assert event["images_per_s"] is None and event["head"]["solve_seconds"] >= 0
        assert event["embedding"]["photos"] == 120
        assert event["embedding"]["from_cache"] == expected_hits
        shown = speed_text(log.events)
        assert "head solved in" in shown and "images/s" not in shown
        cached = "embeddings read from the cache" in shown
        assert cached == bool(expected_hits) and ("photos/s" in shown) != cached
        # the run's status can say "embedding k of N" from the first photo to the last
        assert progress.seen[0] == (0, 120) and progress.seen[-1] == (120, 120)
        assert [d for d, _ in progress.seen] == sorted(d for d, _ in progress.seen)
        if not expected_hits:
            assert len(progress.seen) > 3  # batch by batch, not only at the end
        heads.append(trainer.model.get_classifier().weight.detach().clone())
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # one row per photo, train and val
    torch.testing.assert_close(heads[0], heads[1])
    other = Trainer(
        TrainConfig(**(config.to_dict() | {"img_size": 96})), manifest, cache_dir=tmp_path
    )
    other.embed_datasets()
    assert other.embedding_cache_hits == 0  # different pixels, different key


def test_a_photo_replaced_under_the_same_name_is_embedded_again(sample_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    manifest = prepare_data(data, manifest_path=tmp_path / "m.json").manifest
    config = TrainConfig(data=str(data), epochs=1, img_size=64, augment="none")
    first = Trainer(config, manifest, cache_dir=tmp_path / "cache")
    first.embed_datasets()
    assert first.embedding_cache_hits == 0
    again = Trainer(config, manifest, cache_dir=tmp_path / "cache")
    again.embed_datasets()
    assert again.embedding_cache_hits == 2
    # same path, other pixels: an ant photo overwritten by a bee photo
    ant = sorted((data / "train" / "ants").glob("*.jpg"))[0]
    bee = sorted((data / "train" / "bees").glob("*.jpg"))[0]
    shutil.copyfile(bee, ant)
    changed = Trainer(config, manifest, cache_dir=tmp_path / "cache")
    changed.embed_datasets()
    fresh = Trainer(config, manifest)  # no cache at all
    fresh.embed_datasets()
    row = [item.path for item in manifest.items_for("train")].index(str(ant))
    before, after = first.embeddings["train"][0], changed.embeddings["train"][0]
    assert not torch.allclose(before[row], after[row], atol=1e-3)  # that photo embedded again
    torch.testing.assert_close(after, fresh.embeddings["train"][0], atol=1e-4, rtol=1e-4)
