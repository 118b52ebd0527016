"""The split and its manifest: stratified, deterministic per seed, disjoint, saved atomically."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from tlcore.data.manifest import Manifest, ManifestItem, make_split
from tlcore.data.prepare import prepare_data
from tlcore.errors import ConfigError, DataError

SIZES = {"cats": 10, "dogs": 7, "owls": 2, "rats": 1}


def samples(root="/data", sizes=SIZES):
    return [(f"{root}/{c}/{i:03d}.jpg", c) for c, n in sizes.items() for i in range(n)]


def val_paths(manifest):
    return {item.path for item in manifest.items_for("val")}


def test_split_is_stratified_with_at_least_one_of_each():
    m = make_split("/data", list(SIZES), samples(), val_fraction=0.2, seed=0)
    counts = m.counts()
    assert counts["val"] == {"cats": 2, "dogs": 1, "owls": 1, "rats": 0}
    assert counts["train"] == {"cats": 8, "dogs": 6, "owls": 1, "rats": 1}
    for item in m.items:  # labels follow the class list
        assert f"/{m.classes[item.label]}/" in item.path
    assert m.split_source == "random" and m.val_fraction == 0.2 and m.seed == 0


def test_split_pauses_the_garbage_collector_only_while_it_runs():
    import gc

    seen = []
    gc.callbacks.append(lambda phase, info: seen.append(phase))
    try:
        assert gc.isenabled()
        many = samples(sizes={"cats": 30_000, "dogs": 30_000})  # enough to set off collections
        gc.collect()  # allocation counts back to zero: what follows is the split's own
        seen.clear()
        m = make_split("/data", ["cats", "dogs"], many, seed=0)
        assert gc.isenabled()  # on again afterwards
        # it catches up once, when turned back on (169 collections without the pause)
        assert seen.count("start") <= 2
        gc.disable()  # and a collector the caller had turned off stays off
        make_split("/data", ["cats", "dogs"], samples(sizes={"cats": 5, "dogs": 5}), seed=0)
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.callbacks.pop()
    assert m.counts()["val"] == {"cats": 6_000, "dogs": 6_000}


def test_split_is_disjoint_and_complete():
    m = make_split("/data", list(SIZES), samples(), val_fraction=0.3, seed=5)
    train = {i.path for i in m.items_for("train")}
    val = val_paths(m)
    assert not train & val
    assert train | val == {p for p, _ in samples()}
    assert len(m.items) == len(samples())


def test_split_is_deterministic_per_seed_and_changes_with_it():
    a = make_split("/data", list(SIZES), samples(), seed=1)
    b = make_split("/data", list(SIZES), list(reversed(samples())), seed=1)
    assert val_paths(a) == val_paths(b)
    assert a.fingerprint() == b.fingerprint()
    others = [val_paths(make_split("/data", list(SIZES), samples(), seed=s)) for s in range(2, 6)]
    assert any(v != val_paths(a) for v in others)


def test_split_does_not_depend_on_where_the_folder_lives():
    a = make_split("/data", list(SIZES), samples("/data"), seed=3)
    b = make_split("/elsewhere/x", list(SIZES), samples("/elsewhere/x"), seed=3)
    strip = lambda paths, root: {p.removeprefix(root) for p in paths}  # noqa: E731
    assert strip(val_paths(a), "/data") == strip(val_paths(b), "/elsewhere/x")


def test_fast_sort_keys_equal_pathlibs_for_odd_paths_too():
    """The split orders files by ``_sort_key``; ``_sort_keys`` slices strings where that
    gives the same answer and asks pathlib everywhere else."""
    from tlcore.data.manifest import _all_plain, _sort_key, _sort_keys

    root = "/data/set"
    paths = ["/data/set/a/1.jpg", "/data/set/b/x y.png", "/data/set//a/2.jpg", "/data/set/./a/3.jpg",
             "/data/set/a/./4.jpg", "/data/set/a//5.jpg", "/data/set/a/6.jpg/", "/data/set/a/.",
             "/data/setx/7.jpg", "/elsewhere/8.jpg", "/data/set/a/../b/9.jpg", "/data/set"]  # fmt: skip
    for where in (root, root + "/", "/data/./set"):
        assert _sort_keys(where, paths) == {p: _sort_key(where, p) for p in paths}
    # where every path is plain the split sorts the paths themselves: the same order
    plain = [p for p in paths if _all_plain(root, [p])]
    assert plain == ["/data/set/a/1.jpg", "/data/set/b/x y.png", "/data/set/a/../b/9.jpg"]
    assert _all_plain(root + "/", plain) and not _all_plain(root, paths)
    assert not _all_plain("//server/set", ["//server/set/a.jpg"])  # pathlib keeps a leading //
    many = plain + [
        f"/data/set/{c}/{i}.jpg" for c in ("b", "a-b", "a b", "A", "é") for i in range(30)
    ]
    random.Random(0).shuffle(many)
    assert sorted(many) == sorted(many, key=lambda p: _sort_key(root, p))


def test_identical_files_stay_on_one_side():
    pairs = samples(sizes={"cats": 10, "dogs": 10})
    groups = {
        p: ("twin" if p.endswith(("/000.jpg", "/001.jpg")) and "cats" in p else p) for p, _ in pairs
    }
    for seed in range(10):
        m = make_split("/data", ["cats", "dogs"], pairs, seed=seed, groups=groups)
        split_of = {i.path: i.split for i in m.items}
        assert split_of["/data/cats/000.jpg"] == split_of["/data/cats/001.jpg"]


def test_bad_fraction_is_a_config_error():
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ConfigError, match="val_fraction"):
            make_split("/data", list(SIZES), samples(), val_fraction=bad)


def test_save_load_roundtrip_is_atomic(tmp_path):
    m = make_split("/data", list(SIZES), samples(), seed=2)
    path = m.save(tmp_path / "sub" / "manifest.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json"]
    loaded = Manifest.load(path)
    assert loaded == m and loaded.fingerprint() == m.fingerprint()
    data = json.loads(path.read_text())
    assert {"root", "classes", "items", "seed", "val_fraction", "split_source"} <= set(data)
    assert data["items"][0].keys() == {"path", "label", "split"}
    changed = Manifest(m.root, m.classes, m.items[:-1], m.seed, m.val_fraction, m.split_source)
    assert changed.fingerprint() != m.fingerprint()


def test_broken_manifests_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        Manifest.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot be read"):
        Manifest.load(tmp_path / "bad.json")
    (tmp_path / "wrong.json").write_text(
        json.dumps(
            {"root": "/", "classes": ["a"], "items": [{"path": "x", "label": 3, "split": "train"}]}
        )
    )
    with pytest.raises(DataError, match="bad label"):
        Manifest.load(tmp_path / "wrong.json")
    m = Manifest("/", ["a"], [ManifestItem("/a/1.jpg", 0, "train")])
    with pytest.raises(DataError, match="Unknown split"):
        m.items_for("holdout")


def test_prepare_data_writes_a_stratified_manifest_of_real_files(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("ants", 10), ("bees", 5)):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / "d" / name / f"{i}.png")
    first = prepare_data(tmp_path / "d", val_fraction=0.2, seed=7)
    assert first.manifest_path.is_file()
    assert first.manifest_path.is_relative_to(tmp_path / "uploads" / "manifests")
    assert first.manifest.counts() == {
        "train": {"ants": 8, "bees": 4},
        "val": {"ants": 2, "bees": 1},
    }
    assert Manifest.load(first.manifest_path) == first.manifest
    assert all(item.path.startswith(str(tmp_path)) for item in first.manifest.items)
    again = prepare_data(tmp_path / "d", val_fraction=0.2, seed=7)
    assert again.manifest.fingerprint() == first.manifest.fingerprint()
    other = prepare_data(tmp_path / "d", val_fraction=0.2, seed=8)
    assert other.manifest_path != first.manifest_path
    with pytest.raises(ConfigError):
        prepare_data(tmp_path / "d", val_fraction=0.0)
