"""One embedding cache: the doctor, few-shot and the trainer's fast path share each photo's row.

On the bundled ants/bees photos at a tiny size, the photos the doctor embedded are
read back by few-shot and by the trainer instead of being run through the backbone
again; a photo replaced under the same name, another size or another backbone is
embedded anew.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from tlcore.data.prepare import prepare_data
from tlcore.lab.fewshot import Embedder
from tlcore.results.doctor import diagnose
from tlcore.training import embedding_cache, features
from tlcore.training.config import TrainConfig
from tlcore.training.trainer import Trainer

IMG_SIZE = 64


@pytest.fixture
def embedded(monkeypatch) -> list[int]:
    """How many photos went through a backbone, call by call (every caller uses ``features.embed``)."""
    counts: list[int] = []
    real = features.embed

    def counting(*args, **kwargs):
        x, y = real(*args, **kwargs)
        counts.append(len(x))
        return x, y

    monkeypatch.setattr(features, "embed", counting)
    return counts


def test_the_doctor_few_shot_and_the_trainer_embed_each_photo_once(sample_dir, tmp_path, embedded):
    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    manifest = prepare_data(data, manifest_path=tmp_path / "m.json").manifest
    cache = embedding_cache.folder(tmp_path / "runs")
    n = len(manifest.items)

    report = diagnose(manifest, img_size=IMG_SIZE, cache_dir=cache, device="cpu")
    assert not report.cache_hit and sum(embedded) == n  # every photo once, by the doctor

    embedder = Embedder(img_size=IMG_SIZE, device="cpu", cache_dir=cache)
    x_train, y_train = embedder.embed_split(manifest, "train")
    x_val, _ = embedder.embed_split(manifest, "val")
    assert sum(embedded) == n  # few-shot read the doctor's rows
    assert len(x_train) + len(x_val) == n and y_train.tolist() == [
        item.label for item in manifest.items_for("train")
    ]

    config = TrainConfig(data=str(data), epochs=1, img_size=IMG_SIZE, augment="none",
                         device="cpu")  # fmt: skip
    trainer = Trainer(config, manifest, cache_dir=cache)
    assert trainer.fast_path, trainer.fast_path_reason
    trainer.embed_datasets()
    assert sum(embedded) == n and trainer.embedding_cache_hits == 2  # nothing embedded again
    # the rows are the ones a fresh pass gives (the trainer batches and normalises its own way)
    fresh = Trainer(config, manifest)
    fresh.embed_datasets()
    torch.testing.assert_close(trainer.embeddings["train"][0], fresh.embeddings["train"][0],
                               atol=1e-4, rtol=1e-4)  # fmt: skip
    torch.testing.assert_close(trainer.embeddings["val"][0], x_val, atol=0, rtol=0)
    assert torch.equal(trainer.embeddings["train"][1], fresh.embeddings["train"][1])
    assert len(list(cache.glob("*.safetensors"))) == 1  # one backbone and size: one file
    embedded.clear()

    # a photo replaced under the same name is embedded again, and only that one
    ant = sorted((data / "train" / "ants").glob("*.jpg"))[0]
    shutil.copyfile(sorted((data / "train" / "bees").glob("*.jpg"))[0], ant)
    again = Embedder(img_size=IMG_SIZE, device="cpu", cache_dir=cache)
    again.embed_split(manifest, "train")
    assert embedded == [1]

    # another size is another backbone input: its own file, every photo embedded
    embedded.clear()
    Embedder(img_size=IMG_SIZE + 32, device="cpu", cache_dir=cache).embed_split(manifest, "val")
    assert sum(embedded) == len(manifest.items_for("val"))
    assert len(list(cache.glob("*.safetensors"))) == 2


def test_a_torn_cache_file_is_embedded_again_and_replaced(sample_dir, tmp_path, embedded):
    manifest = prepare_data(sample_dir, manifest_path=tmp_path / "m.json").manifest
    embedder = Embedder(img_size=IMG_SIZE, device="cpu", cache_dir=tmp_path / "cache")
    first, _ = embedder.embed_split(manifest, "val")
    [stored] = (tmp_path / "cache").glob("*.safetensors")
    stored.write_bytes(stored.read_bytes()[:100])
    second, _ = embedder.embed_split(manifest, "val")
    assert embedded == [len(first), len(first)]
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    third, _ = embedder.embed_split(manifest, "val")
    assert len(embedded) == 2 and torch.equal(third, first)
