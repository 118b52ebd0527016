"""Bad inputs, made here as real files: each is refused or converted with a message naming it.

Cases already covered file by file elsewhere (tests/test_images.py, test_scan_report.py,
test_archive.py, test_weights.py, test_config.py) are listed in docs/reliability.md; this
file adds what they leave open: a real decompression bomb (a PNG header claiming 10
gigapixels, no patched limit), names that are not UTF-8, every odd format going through
training (not only the report), and settings refused before any run directory exists.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlcore import settings
from tlcore.data.images import inspect_image, load_rgb
from tlcore.data.manifest import Manifest
from tlcore.data.prepare import prepare_data
from tlcore.errors import ConfigError, DataError
from tlcore.runs.run import Run
from tlcore.training.trainer import Trainer

from .conftest import ROOT, class_folders, photo, quick_config


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_png_header_claiming_ten_gigapixels_is_refused_and_the_rest_trains(tmp_path):
    root = class_folders(tmp_path / "data", {"ants": 3, "bees": 3})
    bomb = png_claiming(root / "ants" / "bomb.png", 100_000, 100_000)
    near = png_claiming(root / "bees" / "near.png", 30_000, 3_000)  # just over the limit
    assert bomb.stat().st_size < 2_000
    for path in (bomb, near):
        with pytest.raises(DataError, match=f"{path.name}.*decompression bomb"):
            inspect_image(path)
        with pytest.raises(DataError, match="decompression bomb"):
            load_rgb(path)
    prepared = prepare_data(root)
    report = prepared.report
    assert report.trainable and report.counts == {"all": {"ants": 3, "bees": 3}}
    skipped = [p for p in report.problems if p.code == "unreadable"]
    assert sorted(f for p in skipped for f in p.files) == ["ants/bomb.png", "bees/near.png"]
    assert all("decompression bomb" in p.message for p in skipped)


def _odd_formats(folder: Path) -> None:
    """One file of each kind a camera, phone or editor produces that is not plain RGB JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    Image.new("CMYK", (40, 40), (0, 200, 200, 0)).save(folder / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65535, (40, 40), dtype=np.uint16)).save(folder / "deep16.png")
    pal = Image.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0, 250, 250, 0] + [0] * 762)
    pal.paste(0, (0, 0, 20, 40))
    pal.save(folder / "palette.png", transparency=0)
    Image.new("L", (40, 40), 90).save(folder / "gray.jpg")
    frames = [Image.new("RGB", (40, 40), (200, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 200))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 255, (30, 60, 3), dtype=np.uint8)).save(
        folder / "sideways.jpg", exif=exif
    )
    Image.new("RGB", (1, 1), (5, 5, 5)).save(folder / "dot.png")
    photo(folder / "really_jpeg.png", seed=77)  # a JPEG with the wrong extension
    gradient = Image.linear_gradient("L").resize((4000, 3000))  # 12 MP: resized, not a crash
    Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient)).save(
        folder / "huge.jpg", quality=80
    )


def test_every_odd_format_is_converted_and_trains_the_bad_ones_are_named(tmp_path):
    root = class_folders(tmp_path / "data", {"ants": 6, "bees": 6}, seed=3)
    _odd_formats(root / "ants")
    (root / "bees" / "empty.jpg").write_bytes(b"")
    (root / "bees" / "notes.jpg").write_text("not a picture\n")
    whole = photo(tmp_path / "whole.jpg", seed=9, size=(200, 150)).read_bytes()
    (root / "bees" / "cut.jpg").write_bytes(whole[: len(whole) // 2])

    prepared = prepare_data(root, manifest_path=tmp_path / "m.json")
    report = prepared.report
    assert report.trainable, report.reason
    assert report.counts == {"all": {"ants": 15, "bees": 6}}  # 6 + 9 odd ones; 3 bad skipped
    reasons = {p.files[0]: p.message for p in report.problems if p.code == "unreadable"}
    assert set(reasons) == {"bees/empty.jpg", "bees/notes.jpg", "bees/cut.jpg"}
    assert "empty file" in reasons["bees/empty.jpg"]
    assert "not an image" in reasons["bees/notes.jpg"]
    assert "truncated" in reasons["bees/cut.jpg"]
    infos = {p.code for p in report.problems if p.severity == "info"}
    assert {"converted", "exif_rotated", "animated", "extension_mismatch"} <= infos

    # the training side reads each odd file too: one real epoch over all of them
    trainer = Trainer(quick_config(root, epochs=1, batch_size=8), prepared.manifest)
    assert trainer.fit() == "finished" and trainer.epoch == 1
    assert len(trainer.train_set) + len(trainer.val_set) == 21
    assert load_rgb(root / "ants" / "huge.jpg").size == (2048, 1536)
    assert load_rgb(root / "ants" / "sideways.jpg").size == (30, 60)  # EXIF applied


def _latin1(name: bytes) -> str:
    """A name as Linux gives Python a file name that is not UTF-8 (lone surrogates)."""
    return os.fsdecode(name)


def test_names_that_are_not_utf8_unicode_or_with_spaces_work_end_to_end(tmp_path):
    root = tmp_path / "my photos"
    for i in range(3):
        photo(root / "bees 蜂" / f"Bee photo ñ {i}.JPG", seed=10 + i)
        photo(root / _latin1(b"caf\xe9") / _latin1(b"p\xe9che %d.jpg" % i), seed=20 + i)
        photo(root / "ants" / f"ant {i} (copy).jpeg", seed=30 + i)
    prepared = prepare_data(root, manifest_path=tmp_path / "manifest.json")
    report = prepared.report
    assert report.trainable, report.reason
    assert report.classes == ["ants", "bees 蜂", "caf\ufffd"]  # shown with a replacement mark
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")  # browser/JSON safe
    manifest = Manifest.load(tmp_path / "manifest.json")
    assert len(manifest.items) == 9
    assert all(load_rgb(item.path).size == (48, 40) for item in manifest.items)  # real paths

    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # a strict UTF-8 pipe, like a terminal
    done = subprocess.run(
        [sys.executable, "-m", "tlcore", "inspect", str(root), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["classes"] == ["ants", "bees 蜂", "caf\ufffd"] and shown["trainable"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", 0.0), ("lr", -0.01), ("batch_size", 0), ("epochs", 0), ("img_size", "224px")],
)
def test_bad_settings_are_refused_before_a_run_directory_exists(sample_dir, field, value):
    with pytest.raises(ConfigError, match=field):
        Run.start(quick_config(sample_dir, **{field: value}))
    runs = settings.runs_dir()
    assert not runs.exists() or not any(runs.iterdir())  # no run, no worker, nothing to clean
