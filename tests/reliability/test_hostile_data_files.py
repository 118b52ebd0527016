"""Hostile data files a tester made: zip bombs in small pieces, FIFOs, control characters,
identical photos, unwritable manifests, text named .pth, Pillow's raw bomb warning.

Each test makes the hostile file for real and runs the command a user would run.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from apptest_helpers import go, open_app, texts
from PIL import Image

from tlcore.cli import main as cli
from tlcore.data.archive import ZipLimits
from tlcore.data.prepare import prepare_data, unpack_upload
from tlcore.errors import ArchiveError, WeightsError
from tlcore.models.weights import read_checkpoint

from .conftest import ROOT, class_folders, error_line, photo

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tlcore", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout, cwd=ROOT)  # fmt: skip


def test_a_zip_bomb_split_into_many_small_members_is_refused_and_nothing_is_left(tmp_path):
    """3. 300 members of 1 MiB zeros: each under the per-member ratio check, 300 MB in all."""
    bomb = tmp_path / "pieces.zip"
    zeros = bytes(1024**2)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(300):
            zf.writestr(f"ants/{i:03d}.jpg", zeros)
    assert bomb.stat().st_size < 1024**2  # about 300 kB
    with pytest.raises(ArchiveError, match="zip bomb"):
        unpack_upload(bomb, ZipLimits())
    uploads = Path(os.environ["TLCORE_UPLOADS_DIR"])
    leftovers = [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []
    assert leftovers == []  # checked before extracting anything: no partial folder either
    assert cli(["inspect", str(bomb)]) == 2


def test_a_fifo_named_jpg_is_skipped_and_named_not_waited_for(tmp_path):
    """12. Opening a FIFO blocks until someone writes to it: inspect must never open one."""
    data = class_folders(tmp_path / "pets", {"cats": 4, "dogs": 4}, seed=3)
    os.mkfifo(data / "cats" / "pipe.jpg")
    try:
        done = _cli("inspect", str(data), "--manifest", str(tmp_path / "m.json"), timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("tlcore inspect hung on a FIFO named .jpg")
    assert done.returncode == 0, done.stderr
    assert "not regular files" in done.stdout and "cats/pipe.jpg" in done.stdout
    assert "4 of 8 image files usable" not in done.stdout  # the FIFO is not counted as found


def test_control_characters_in_names_never_reach_the_terminal_raw(tmp_path, capsys):
    """13. ESC colour codes, a carriage return and a newline in file and folder names."""
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3}, seed=5)
    photo(data / "cats" / "\x1b[31mred\x1b[0m.jpg", seed=91)
    photo(data / "dogs" / "fake\rline.jpg", seed=92)
    (data / "dogs" / "note\nWARNING forged.jpg").write_text("not an image")
    photo(data / "bi\u202edi\x07" / "a.jpg", seed=93)
    photo(data / "bi\u202edi\x07" / "b.jpg", seed=94)
    code = cli(["inspect", str(data), "--manifest", str(tmp_path / "m.json")])
    out = capsys.readouterr()
    shown = out.out + out.err
    assert code == 0
    for raw in ("\x1b", "\r", "\x07", "\u202e"):
        assert raw not in shown, repr(raw)
    assert "note\\nWARNING forged.jpg" in shown  # the unreadable one is listed, escaped
    assert "\nWARNING forged" not in shown
    assert "bi\\u202edi\\x07" in shown  # the class name, escaped, in the counts table


def test_the_data_page_shows_hostile_names_as_text_not_markdown(data_root):
    """13. A class folder named like Markdown is shown as those characters on the Data page."""
    name = "**bold** [link](https:evil.example) :red[x] `tick"
    class_folders(data_root / "pets", {"cats": 3, name: 3}, seed=6)
    (data_root / "pets" / "cats" / "note[1](x).jpg").write_text("not an image")
    at = go(open_app(), "data")
    at.text_input(key="root_typed").input("pets").run()
    at.button(key="use_folder").click().run()
    assert not at.exception, [e.value for e in at.exception]
    markdown = texts(at.markdown) + texts(at.success) + texts(at.warning) + texts(at.error)
    shown = "\\*\\*bold\\*\\* \\[link\\](https\\:evil.example) \\:red\\[x\\] \\`tick"
    assert shown in markdown  # every character that would format is escaped
    assert "[link](https:evil.example)" not in markdown.replace(shown, "")
    assert "note\\[1\\](x).jpg" in markdown  # file names in problems too


def test_a_class_of_two_identical_photos_is_refused_like_a_class_of_one(tmp_path):
    """14. Copies stay together in one split, so such a class could never be validated."""
    data = class_folders(tmp_path / "pets", {"cats": 4, "dogs": 1}, seed=7)
    (data / "dogs" / "copy.jpg").write_bytes((data / "dogs" / "dogs_00.jpg").read_bytes())
    report = prepare_data(data, manifest_path=tmp_path / "m.json").report
    assert not report.trainable
    assert "'dogs' has 2 usable images but they are all copies of one photo" in report.reason
    (data / "dogs" / "copy.jpg").unlink()
    one = prepare_data(data, manifest_path=tmp_path / "m.json").report
    assert not one.trainable and "only 1 usable image" in one.reason  # the same verdict


def test_unwritable_manifest_and_csv_targets_are_one_line_exit_2(tmp_path, capsys):
    """15. --manifest and --csv below an existing file (a folder that cannot exist)."""
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3}, seed=8)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli(["inspect", str(data), "--manifest", str(blocker / "m.json")]) == 2
    err = capsys.readouterr().err
    assert error_line(err).startswith("error: cannot write the manifest")
    photo_path = str(data / "cats" / "cats_00.jpg")  # checked before any model is loaded
    assert cli(["predict", "no-such-run", photo_path, "--csv", str(blocker / "p.csv")]) == 2
    assert error_line(capsys.readouterr().err).startswith("error: cannot write --csv")
    assert "Traceback" not in err


def test_a_text_file_named_pth_is_not_called_pickled_objects(tmp_path):
    """Smaller: torch calls every parse failure an UnpicklingError; a text file is no pickle."""
    for text in ('{"weights": "none"}', "just some notes"):
        path = tmp_path / "notes.pth"
        path.write_text(text)
        with pytest.raises(WeightsError) as caught:
            read_checkpoint(path)
        assert "pickled Python objects" not in str(caught.value)
        assert "not a PyTorch weights file" in str(caught.value) or "not a readable" in str(
            caught.value
        )


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A small real PNG whose header claims ``width`` x ``height`` pixels."""
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def test_pillows_bomb_warning_is_not_printed_raw(tmp_path):
    """Smaller: an image between Pillow's limit and twice it printed a raw warning."""
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3}, seed=9)
    _png_claiming(data / "cats" / "big.png", 10_000, 10_000)  # 100 MP: warning, not error
    with warnings.catch_warnings(record=True) as caught:
        report = prepare_data(data, manifest_path=tmp_path / "m.json").report
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []
    assert any("safety limit" in p.message for p in report.warnings)  # still refused, in words
