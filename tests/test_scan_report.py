"""Scanning folders and reporting every bad case, on real files made here."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from tlcore.data.prepare import prepare_data, validate_folder
from tlcore.data.scan import scan_folder
from tlcore.errors import DataError


def photo(path, seed=0, size=(64, 48), fmt=None):
    """A unique noisy RGB image (unique content, so no accidental duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(
        path, fmt or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None)
    )
    return path


def classes_folder(root, sizes: dict[str, int], seed=0):
    for c, (name, n) in enumerate(sizes.items()):
        for i in range(n):
            photo(root / name / f"{name}_{i:02d}.jpg", seed=seed * 1000 + c * 100 + i)
    return root


def codes(report, severity=None):
    return {p.code for p in report.problems if severity in (None, p.severity)}


def problem(report, code):
    found = [p for p in report.problems if p.code == code]
    assert found, f"no {code!r} in {[p.code for p in report.problems]}"
    return found


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """One dataset with every bad case the report must explain."""
    root = tmp_path_factory.mktemp("messy")
    classes_folder(root, {"ants": 12, "bees": 12})
    ants, bees = root / "ants", root / "bees"
    (ants / "zero.jpg").write_bytes(b"")
    (ants / "text.jpg").write_text("not an image at all\n" * 10)
    full = photo(root / "tmp_full.jpg", seed=99, size=(200, 150)).read_bytes()
    (root / "tmp_full.jpg").unlink()
    (bees / "cut.jpg").write_bytes(full[: len(full) // 2])
    photo(bees / "really_jpeg.png", seed=800, fmt="JPEG")
    Image.new("CMYK", (40, 40), (0, 200, 200, 0)).save(ants / "cmyk.jpg")
    Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(ants / "deep.png")
    pal = Image.new("P", (40, 40), 0)
    pal.putpalette([0, 0, 0, 250, 250, 0] + [0] * 762)
    pal.paste(1, (0, 0, 20, 40))
    pal.save(bees / "pal.png", transparency=0)
    Image.new("L", (40, 40), 90).save(bees / "gray.jpg")
    frames = [Image.new("RGB", (40, 40), (200, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 200))]
    frames[0].save(bees / "anim.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (80, 40), (10, 200, 10)).save(ants / "rotated.jpg", exif=exif)
    Image.new("RGB", (1, 1), (5, 5, 5)).save(ants / "dot.png")
    photo(bees / "bee ñ 蜂 photo.JPG", seed=500)
    photo(bees / "2019" / "summer" / "deep_bee.jpeg", seed=501)
    (ants / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (bees / "Thumbs.db").write_bytes(b"junk")
    photo(root / "__MACOSX" / "ants" / "._x.jpg", seed=502)
    photo(ants / ".hidden.jpg", seed=503)
    same = photo(ants / "same.jpg", seed=600).read_bytes()
    (bees / "same_copy.jpg").write_bytes(same)
    dup = photo(ants / "dup_a.jpg", seed=601).read_bytes()
    (ants / "dup_b.jpg").write_bytes(dup)
    (root / "wasps").mkdir()
    photo(root / "loose.jpg", seed=700)
    (root / "README.txt").write_text("my dataset")
    started = time.perf_counter()
    scan, report = validate_folder(root)
    return root, scan, report, time.perf_counter() - started


def test_messy_folder_counts_only_usable_images(messy):
    root, scan, report, _ = messy
    assert scan.layout == "class_folders"
    assert report.classes == ["ants", "bees"]  # the empty "wasps" is left out
    # ants: 12 + cmyk, deep, rotated, dot, dup_a, dup_b (same.jpg is a label conflict)
    # bees: 12 + really_jpeg, pal, gray, anim, unicode, nested (same_copy conflicts)
    assert report.counts == {"all": {"ants": 18, "bees": 18}}
    assert report.trainable, report.reason
    assert report.reason is None
    names = {p.split("/")[-1] for img in report.images for p in [img.path]}
    assert "bee ñ 蜂 photo.JPG" in names and "deep_bee.jpeg" in names
    assert not {"same.jpg", "same_copy.jpg", "._x.jpg", ".hidden.jpg", "loose.jpg"} & names


def test_unreadable_files_are_skipped_each_with_a_reason(messy):
    report = messy[2]
    unreadable = {p.files[0]: p.message for p in problem(report, "unreadable")}
    assert set(unreadable) == {"ants/zero.jpg", "ants/text.jpg", "bees/cut.jpg"}
    assert "empty file" in unreadable["ants/zero.jpg"]
    assert "not an image" in unreadable["ants/text.jpg"]
    assert "truncated" in unreadable["bees/cut.jpg"]
    assert all(p.severity == "warning" for p in problem(report, "unreadable"))


def test_conversions_orientation_and_format_are_reported_as_info(messy):
    report = messy[2]
    converted = {p.message: p.files for p in problem(report, "converted")}
    kinds = " ".join(converted)
    for kind in ("CMYK", "16-bit", "palette with transparency", "grayscale"):
        assert kind in kinds, kind
    assert problem(report, "exif_rotated")[0].files == ["ants/rotated.jpg"]
    assert problem(report, "animated")[0].files == ["bees/anim.gif"]
    assert problem(report, "extension_mismatch")[0].files == ["bees/really_jpeg.png"]
    assert problem(report, "nested")[0].severity == "info"
    for code in ("converted", "exif_rotated", "animated", "extension_mismatch", "nested"):
        assert all(p.severity == "info" for p in problem(report, code))


def test_tiny_duplicates_conflicts_and_layout_warnings(messy):
    report = messy[2]
    assert problem(report, "tiny_image")[0].files == ["ants/dot.png"]
    conflict = problem(report, "label_conflict")[0]
    assert conflict.severity == "warning"
    assert sorted(conflict.files) == ["ants/same.jpg", "bees/same_copy.jpg"]
    assert "ants/same.jpg" in conflict.message and "bees/same_copy.jpg" in conflict.message
    assert sorted(problem(report, "duplicate")[0].files) == ["ants/dup_a.jpg", "ants/dup_b.jpg"]
    assert "wasps" in problem(report, "empty_class")[0].message
    assert problem(report, "loose_images")[0].files == ["loose.jpg"]
    assert "README.txt" in problem(report, "other_files")[0].files
    assert problem(report, "hidden_files")[0].severity == "info"
    assert not report.errors
    json.dumps(report.to_dict())  # JSON-able for the UI and --json


def test_full_inspection_is_fast_on_the_sample(sample_dir):
    started = time.perf_counter()
    scan, report = validate_folder(sample_dir)
    assert time.perf_counter() - started < 3.0
    assert scan.layout == "split_folders"
    assert report.classes == ["ants", "bees"]
    assert report.counts == {"train": {"ants": 40, "bees": 40}, "val": {"ants": 20, "bees": 20}}
    assert report.trainable and report.split_source == "folders"
    assert not report.errors and not report.warnings


def test_prepare_sample_keeps_the_given_val_folder(sample_dir, tmp_path):
    prepared = prepare_data(sample_dir, manifest_path=tmp_path / "m.json")
    assert prepared.report.trainable
    assert prepared.manifest.split_source == "folders"
    assert prepared.manifest.counts() == {
        "train": {"ants": 40, "bees": 40},
        "val": {"ants": 20, "bees": 20},
    }
    assert prepared.manifest_path == tmp_path / "m.json" and prepared.manifest_path.exists()
    assert prepared.report.split_counts == prepared.manifest.counts()


def test_one_class_is_not_trainable_with_a_one_sentence_reason(tmp_path):
    report = validate_folder(classes_folder(tmp_path / "d", {"cats": 5}))[1]
    assert not report.trainable
    assert "one class" in report.reason.lower() and "cats" in report.reason
    assert report.reason.count(". ") == 0 and report.reason.endswith(".")


def test_one_image_class_cannot_be_split(tmp_path):
    report = validate_folder(classes_folder(tmp_path / "d", {"cats": 5, "dogs": 1}))[1]
    assert not report.trainable
    assert problem(report, "class_too_small")[0].severity == "error"
    assert "'dogs'" in report.reason


def test_imbalance_is_a_warning(tmp_path):
    report = validate_folder(classes_folder(tmp_path / "d", {"a": 16, "b": 4}))[1]
    assert report.trainable
    assert problem(report, "imbalance")[0].severity == "warning"
    balanced = validate_folder(classes_folder(tmp_path / "e", {"a": 12, "b": 10}, seed=1))[1]
    assert "imbalance" not in codes(balanced)


def test_empty_and_unreadable_only_folders_say_why(tmp_path):
    (tmp_path / "empty").mkdir()
    report = validate_folder(tmp_path / "empty")[1]
    assert not report.trainable and problem(report, "no_images")
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "x.jpg").write_text("nope")
    report = validate_folder(tmp_path / "bad")[1]
    assert not report.trainable and "No usable images" in report.reason
    with pytest.raises(DataError, match="does not exist"):
        prepare_data(tmp_path / "missing")


def test_repeated_wrapper_folders_are_unwrapped(tmp_path):
    classes_folder(tmp_path / "outer" / "inner" / "data", {"a": 3, "b": 3})
    (tmp_path / "outer" / "notes.txt").write_text("x")
    scan = scan_folder(tmp_path / "outer")
    assert scan.unwrapped == ["inner", "data"]
    assert scan.classes == ["a", "b"]
    report = validate_folder(tmp_path / "outer")[1]
    assert report.trainable and problem(report, "unwrapped")[0].severity == "info"


def test_split_folders_case_insensitive_with_test(tmp_path):
    root = tmp_path / "d"
    classes_folder(root / "Train", {"a": 4, "b": 4})
    classes_folder(root / "VAL", {"a": 2, "b": 2}, seed=1)
    classes_folder(root / "test", {"a": 1, "b": 1}, seed=2)
    photo(root / "Train" / "a" / "UPPER.JPEG", seed=3000)
    prepared = prepare_data(root)
    assert prepared.report.layout == "split_folders"
    assert prepared.manifest.counts() == {
        "train": {"a": 5, "b": 4},
        "val": {"a": 2, "b": 2},
        "test": {"a": 1, "b": 1},
    }


def test_train_only_split_layout_falls_back_to_random_split(tmp_path):
    classes_folder(tmp_path / "d" / "train", {"a": 5, "b": 5})
    prepared = prepare_data(tmp_path / "d", val_fraction=0.2)
    assert prepared.report.split_source == "random"
    assert prepared.manifest.counts()["val"] == {"a": 1, "b": 1}


def test_class_only_in_val_is_an_error(tmp_path):
    classes_folder(tmp_path / "d" / "train", {"a": 3, "b": 3})
    classes_folder(tmp_path / "d" / "val", {"a": 1, "b": 1, "c": 2}, seed=1)
    report = validate_folder(tmp_path / "d")[1]
    assert not report.trainable and "'c'" in report.reason
    assert problem(report, "no_train_images")


def test_duplicate_across_train_and_val_folders_is_called_optimistic(tmp_path):
    root = tmp_path / "d"
    classes_folder(root / "train", {"a": 3, "b": 3})
    classes_folder(root / "val", {"a": 1, "b": 1}, seed=1)
    (root / "val" / "a" / "leak.jpg").write_bytes((root / "train" / "a" / "a_00.jpg").read_bytes())
    report = validate_folder(root)[1]
    dup = problem(report, "duplicate")[0]
    assert sorted(dup.files) == ["train/a/a_00.jpg", "val/a/leak.jpg"]
    assert "optimistic" in dup.message and report.trainable
