"""Few-shot prototypes on the real sample with the bundled weights: accuracy vs shots, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from tlcore.cli import main
from tlcore.data.images import load_rgb
from tlcore.errors import ConfigError, DataError
from tlcore.lab.fewshot import (
    Embedder,
    PrototypeClassifier,
    classify_images,
    curve_from_embeddings,
    load_manifest,
    parse_shots,
    prototypes_for,
    shots_curve,
)

IMG_SIZE = 128


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fewshot-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir) -> Embedder:
    return Embedder(img_size=IMG_SIZE, device="cpu", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def manifest(sample_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # the manifest file goes to a tmp folder
        patch.setenv("TLCORE_UPLOADS_DIR", str(tmp_path_factory.mktemp("uploads")))
        return load_manifest(sample_dir)


def test_ten_shots_are_well_above_chance_and_beat_one_shot(manifest, embedder, cache_dir):
    curve = shots_curve(manifest, shots=(1, 2, 5, 10), repeats=30, seed=0, embedder=embedder)
    means = {p.shots: p.mean for p in curve.points}
    assert list(means) == [1, 2, 5, 10] and curve.n_val == 40 and curve.chance == 0.5
    assert means[10] > 0.75, curve.text()  # measured 0.87-0.89 at 128 px
    assert means[10] >= means[1] and means[5] >= means[1]
    assert curve.all_train_acc >= means[10] - 0.05 and curve.all_train_acc > 0.85
    assert all(p.low <= p.mean <= p.high and p.repeats == 30 for p in curve.points)
    assert len(list(cache_dir.glob("*.safetensors"))) == 1  # train + val: one backbone's rows
    again = shots_curve(manifest, shots=(1, 2, 5, 10), repeats=30, seed=0, embedder=embedder)
    assert again.to_dict() == curve.to_dict()  # same seed, same draws; read from the cache


def test_prototypes_classify_new_photos_and_need_every_class(manifest, embedder, sample_dir):
    classifier = prototypes_for(manifest, embedder)
    assert classifier.shots == [40, 40]
    paths = [*sorted((sample_dir / "val" / "ants").iterdir())[:4],
             *sorted((sample_dir / "val" / "bees").iterdir())[:4]]  # fmt: skip
    ranked = classify_images(classifier, embedder, [load_rgb(p) for p in paths])
    assert [len(r) for r in ranked] == [2] * 8
    assert all(abs(sum(s for _, s in r) - 1) < 1e-5 for r in ranked)
    correct = sum(r[0][0] == p.parent.name for r, p in zip(ranked, paths, strict=True))
    assert correct >= 6
    x, y = embedder.embed_split(manifest, "train")
    with pytest.raises(DataError, match="'bees' has no example"):
        PrototypeClassifier.fit(x[y == 0], y[y == 0], manifest.classes)


def test_shots_beyond_the_smallest_class_are_skipped_with_a_reason(manifest, embedder):
    train = embedder.embed_split(manifest, "train")
    val = embedder.embed_split(manifest, "val")
    curve = curve_from_embeddings(train, val, manifest.classes, shots=(2, 41), repeats=3)
    assert [p.shots for p in curve.points] == [2]
    assert "only 40 training photos" in curve.skipped[41]
    with pytest.raises(DataError, match="no validation images"):
        curve_from_embeddings(train, (val[0][:0], val[1][:0]), manifest.classes)
    assert parse_shots("10, 1,2") == (1, 2, 10)
    for bad in ("", "1,x", "0"):
        with pytest.raises(ConfigError):
            parse_shots(bad)
    assert torch.equal(val[1], embedder.embed_split(manifest, "val")[1])


def test_cli_fewshot_prints_the_curve_as_json_and_refuses_bad_flags(sample_dir, capsys):
    photo = sorted((sample_dir / "val" / "bees").iterdir())[0]
    code = main(["fewshot", "--data", str(sample_dir), "--img-size", "64", "--shots", "1,10",
                 "--repeats", "5", "--predict", str(photo), "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p["shots"] for p in result["points"]] == [1, 10]
    assert result["predictions"][0]["label"] in ("ants", "bees")
    assert main(["fewshot", "--data", str(sample_dir), "--repeats", "zero"]) == 2
    assert "--repeats 'zero' is not valid" in capsys.readouterr().err
    assert main(["fewshot", "--data", str(sample_dir / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
