"""Zero-shot from class names (ConSE) with the bundled Lite0 and the bundled MiniLM, offline."""

from __future__ import annotations

import json
from functools import partial

import pytest

from tlcore.cli import main
from tlcore.data.images import load_rgb
from tlcore.errors import ConfigError
from tlcore.lab.fewshot import Embedder, curve_from_embeddings, load_manifest
from tlcore.lab.ladder import build_ladder, trained_rung
from tlcore.lab.zeroshot import (
    ZeroShotClassifier,
    classify_images,
    parse_class_names,
    zero_shot_accuracy,
)
from tlcore.models import minilm

IMG_SIZE = 128


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> Embedder:
    return Embedder(img_size=IMG_SIZE, device="cpu", cache_dir=tmp_path_factory.mktemp("emb"))


@pytest.fixture(scope="module")
def manifest(sample_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # the manifest file goes to a tmp folder
        patch.setenv("TLCORE_UPLOADS_DIR", str(tmp_path_factory.mktemp("uploads")))
        return load_manifest(sample_dir)


def test_minilm_is_found_without_importing_it_and_extracted_once(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("TLCORE_CACHE_DIR", str(tmp_path))
    folder = minilm.minilm_dir()
    assert minilm.MODULE not in sys.modules  # its __init__ prints: never imported
    assert folder.parent == tmp_path and (folder / "model.safetensors").stat().st_size > 80e6
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert minilm.minilm_dir() == folder  # the second call finds it, nothing extracted again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no staging left behind


def test_zero_shot_beats_chance_by_a_wide_margin_on_ants_and_bees(manifest, embedder):
    result = zero_shot_accuracy(manifest, embedder=embedder)
    assert result.classes == ["ants", "bees"] and result.n_images == 40 and result.chance == 0.5
    assert result.accuracy >= 0.8, result  # measured 0.925 at 128 px (0.975 at 224)
    assert all(acc >= 0.7 for acc in result.per_class.values()), result.per_class
    # The names carry the answer: swapping them turns most right answers wrong.
    swapped = zero_shot_accuracy(manifest, "bee, ant", embedder=embedder)
    assert swapped.accuracy <= 0.2 and swapped.names == ["bee", "ant"]  # measured 0.075


def test_typed_names_classify_photos_with_no_example(embedder, sample_dir):
    classifier = ZeroShotClassifier.from_names(["ant", "bee", "sports car"])
    photos = [sorted((sample_dir / "val" / c).iterdir())[0] for c in ("ants", "bees")]
    ranked = classify_images(classifier, embedder, [load_rgb(p) for p in photos])
    assert [r[0][0] for r in ranked] == ["ant", "bee"]
    assert all(abs(sum(s for _, s in r) - 1) < 1e-5 and r[-1][0] == "sports car" for r in ranked)


def test_class_names_are_checked_in_words():
    assert parse_class_names(" ant ,bee_hive, ") == ["ant", "bee hive"]
    for bad, words in [("ant", "at least two"), ("ant, Ant", "twice"), ("a, " + "x" * 99, "long")]:
        with pytest.raises(ConfigError, match=words):
            parse_class_names(bad)


def test_cli_measures_accuracy_and_names_photos(sample_dir, capsys, monkeypatch):
    from tlcore.data import progress

    # every line of the stderr bar, however short the step (off a tty it waits 1 s otherwise)
    monkeypatch.setattr(progress, "terminal_bar", partial(progress.terminal_bar, quiet_for_s=0))
    code = main(["zeroshot", "--data", str(sample_dir), "--img-size", str(IMG_SIZE), "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert code == 0 and out["classes"] == ["ants", "bees"] and out["chance"] == 0.5
    assert out["accuracy"] >= 0.8 and out["seconds"] > 0 and out["top_t"] == 10
    n_val = out["n_images"]  # the bar: reading the photos, then embedding, each k of N
    assert "Reading photos: 0 of " in captured.err and "time left: unknown" in captured.err
    assert f"Embedding the val photos: {n_val} of {n_val}" in captured.err
    monkeypatch.undo()
    bee = sorted((sample_dir / "val" / "bees").iterdir())[1]
    code = main(["zeroshot", "--classes", "ant, bee", "--photos", str(bee), "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["predictions"][0]["label"] == "bee"
    code = main(["zeroshot", "--data", str(sample_dir), "--classes", "a,b,c"])
    err = capsys.readouterr().err
    assert code == 2 and "one name per class folder" in err and len(err.splitlines()) == 1


def test_the_ladder_runs_from_names_to_a_trained_model(
    manifest, embedder, sample_dir, tmp_path_factory, monkeypatch
):
    from trained_run_fixture import trained_run_dir

    train, val = embedder.embed_split(manifest, "train"), embedder.embed_split(manifest, "val")
    curve = curve_from_embeddings(train, val, manifest.classes, (1, 2, 5, 10), repeats=5)
    zero = zero_shot_accuracy(manifest, embedder=embedder)
    run_dir = trained_run_dir(sample_dir, tmp_path_factory.getbasetemp())
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(run_dir.parent))
    trained = trained_rung(load_manifest(sample_dir))
    assert trained is not None and trained.accuracy > 0.8  # the same photos, so it counts
    ladder = build_ladder(curve, zero, trained)
    kinds = [r.kind for r in ladder.rungs]
    assert kinds == ["zero-shot", "one-shot", "few-shot", "few-shot", "few-shot", "all photos",
                     "trained"]  # fmt: skip
    assert [r.photos_per_class for r in ladder.rungs][:5] == [0, 1, 2, 5, 10]
    assert ladder.rungs[0].accuracy == zero.accuracy and ladder.chance == 0.5
