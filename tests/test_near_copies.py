"""Near-identical photos (resized, re-encoded, brightened copies) stay on one side of the
split, the report counts them in words, and the model card warns when the user's own
folders put copies of training photos in validation. Real photos from assets/, no training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from tlcore.data import near_copies
from tlcore.data.manifest import Manifest
from tlcore.data.overrides import Override, apply_overrides
from tlcore.data.prepare import build_manifest, prepare_data, validate_folder
from tlcore.export.model_card import model_card
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CLOTHING = ASSETS / "clothing4" / "train"


def originals(cls: str, n: int) -> list[Path]:
    return sorted((CLOTHING / cls).glob("*.jpg"))[:n]


def resized(src: Path, dest: Path, scale: float, quality: int = 60) -> Path:
    """A copy at another size and JPEG quality, as a phone's 'share' or a web page makes."""
    im = Image.open(src).convert("RGB")
    size = (round(im.width * scale), round(im.height * scale))
    dest.parent.mkdir(parents=True, exist_ok=True)
    im.resize(size, Image.Resampling.BILINEAR).save(dest, quality=quality)
    return dest


def brightened(src: Path, dest: Path) -> Path:
    """A retouched copy: 15 % brighter, saved as PNG."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    ImageEnhance.Brightness(Image.open(src).convert("RGB")).enhance(1.15).save(dest)
    return dest


@pytest.fixture(scope="module")
def with_copies(tmp_path_factory) -> tuple[Path, dict[Path, Path]]:
    """Two look-alike classes of 8 real photos each (no split folders), plus three copies:
    copy -> its original."""
    root = tmp_path_factory.mktemp("copies")
    copies = {}
    for cls in ("shirt", "longsleeve"):
        (root / cls).mkdir()
        for src in originals(cls, 8):
            shutil.copy(src, root / cls / src.name)
    shirt, sleeve = originals("shirt", 8)[0], originals("longsleeve", 8)[3]
    copies[resized(shirt, root / "shirt" / "z_small.jpg", 0.5)] = root / "shirt" / shirt.name
    copies[brightened(shirt, root / "shirt" / "z_bright.png")] = root / "shirt" / shirt.name
    copies[resized(sleeve, root / "longsleeve" / "z_big.jpg", 2.0, 85)] = (
        root / "longsleeve" / sleeve.name
    )
    return root, copies


def test_copies_land_in_one_split_with_their_original_and_the_report_counts_them(
    with_copies, monkeypatch
):
    root, copies = with_copies
    report = validate_folder(root)[1]
    group = {Path(img.path): img.group for img in report.images}
    for copy, original in copies.items():
        assert group[copy] == group[original], copy.name
    assert len(set(group.values())) == 16  # 16 different photos; the 3 copies join theirs
    for seed in range(6):  # without the groups a copy lands apart from its original by chance
        split = {Path(i.path): i.split for i in build_manifest(report, seed=seed).items}
        for copy, original in copies.items():
            assert split[copy] == split[original], (seed, copy.name)
    note = next(p for p in report.problems if p.code == "near_copies")
    assert note.severity == "info"
    assert note.message.startswith("Kept 2 groups of near-identical photos together (5 photos:")
    assert "each group stays on one side of the split" in note.message
    assert not any("honest" in p.message for p in report.problems)

    def decode(path):  # a re-scan reads the hashes kept beside the content hashes
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(near_copies, "perceptual_hash", decode)
    again = validate_folder(root)[1]
    assert {Path(i.path): i.group for i in again.images} == group


def test_different_photos_of_one_class_are_never_grouped(tmp_path):
    """Every photo of the assets' samples (look-alike clothing, ants, bees) keeps its own group;
    one-colour pictures (which all hash alike) are not compared at all."""
    for colour in ("red", "navy"):
        Image.new("RGB", (64, 48), colour).save(tmp_path / f"{colour}.png")
        assert near_copies.perceptual_hash(tmp_path / f"{colour}.png") is None
    photos = sorted(ASSETS.glob("*/*/*/*.jpg"))  # ants-bees and clothing4: split/class/photo
    assert len(photos) >= 300
    triples = [(str(p), p.parent.name, str(p)) for p in photos]
    hashes = {str(p): near_copies.perceptual_hash(p) for p in photos}
    groups = near_copies.copy_groups(triples, hashes)
    assert len(set(groups.values())) == len(photos)


def test_copies_across_the_users_folders_are_counted_and_warned_on_the_model_card(tmp_path):
    root = tmp_path / "pets"
    for cls in ("shirt", "shorts"):
        photos = sorted((CLOTHING / cls).glob("*.jpg"))[:9]
        for split, picked in (("train", photos[:6]), ("val", photos[6:])):
            (root / split / cls).mkdir(parents=True)
            for src in picked:
                shutil.copy(src, root / split / cls / src.name)
    trained = sorted((root / "train" / "shirt").glob("*.jpg"))[2]
    copy = resized(trained, root / "val" / "shirt" / "again.jpg", 0.6)

    prepared = prepare_data(root)
    report, manifest = prepared.report, prepared.manifest
    assert report.split_source == "folders" and report.val_copies == {str(copy): str(trained)}
    warning = next(p for p in report.problems if p.code == "val_copies")
    assert warning.severity == "warning" and warning.files == ["val/shirt/again.jpg"]
    assert warning.message.startswith(
        f"Validation has 1 copy of training photos: val/shirt/again.jpg (of train/shirt/"
        f"{trained.name})"
    )
    assert "optimistic" in warning.message
    assert Manifest.load(prepared.manifest_path).val_copies == {str(copy): str(trained)}
    assert [i.split for i in manifest.items if i.path == str(copy)] == ["val"]  # not moved
    left_out = apply_overrides(manifest, [Override(str(copy), "exclude")])  # a dataset version
    assert left_out.copies_in_validation() == {}

    run = Run.create(TrainConfig(data=str(root), img_size=64, epochs=1))  # not started
    assert run.record["data"]["val_copies"] == 1  # kept with the run, for its export
    meta = {  # what the bundle's tlcore.json holds (tlcore.export.bundle.bundle_metadata)
        "architecture": run.config.model,
        "classes": manifest.classes,
        "preprocessing": {"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3},
        "metrics": {"images": 6, "accuracy": 1.0, "macro_f1": 1.0, "loss": 0.1},
        "data": {"name": "pets", **run.record["data"]},
    }
    card = model_card(meta)
    assert "**Warning: 1 validation photo is a copy of training photos**" in card
    assert "validation accuracy **100.0%** on 6 photos (optimistic: 1 of them copy" in card
    meta["data"]["val_copies"] = 0
    assert "Warning" not in model_card(meta) and "optimistic" not in model_card(meta)
