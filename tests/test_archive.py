"""Unpacking uploaded zips: only into the target, never too much, never half-done."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from PIL import Image

from tlcore.data.archive import ZipLimits, extract_zip_safely
from tlcore.data.prepare import prepare_data
from tlcore.errors import ArchiveError


def jpeg_bytes(color=(200, 30, 30), size=(48, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


def make_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_normal_zip_is_extracted(tmp_path):
    zpath = make_zip(
        tmp_path / "ok.zip",
        {
            "ants/a 1.jpg": jpeg_bytes(),
            "bees/ñ蜂.jpg": jpeg_bytes((30, 30, 200)),
            "bees/": b"",
        },
    )
    dest = extract_zip_safely(zpath, tmp_path / "out")
    assert dest == (tmp_path / "out").absolute()
    assert all_files(dest) == ["ants", "ants/a 1.jpg", "bees", "bees/ñ蜂.jpg"]
    assert (dest / "ants" / "a 1.jpg").read_bytes() == jpeg_bytes()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.mark.parametrize(
    "bad_name",
    [
        "../evil.txt",
        "ants/../../evil.txt",
        "/tmp/evil_absolute_tlcore.txt",
        "C:/evil.txt",
        "..\\evil.txt",
        "ants\\evil.txt",
    ],
)
def test_escaping_names_are_refused_and_nothing_is_written(tmp_path, bad_name):
    work = tmp_path / "work"
    work.mkdir()
    # A harmless member first: validation must happen before anything is written.
    zpath = make_zip(tmp_path / "evil.zip", {"ants/good.jpg": jpeg_bytes(), bad_name: b"pwned"})
    assert bad_name in zipfile.ZipFile(zpath).namelist()
    before = all_files(tmp_path)
    with pytest.raises(ArchiveError):
        extract_zip_safely(zpath, work / "out")
    assert all_files(tmp_path) == before
    assert not list(tmp_path.rglob("evil*.txt"))
    assert not (tmp_path.parent / "evil.txt").exists()
    assert not (work.parent.parent / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path):
    info = zipfile.ZipInfo("ants/link.jpg")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_zip_safely(tmp_path / "link.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_highly_compressed_bomb_is_refused_before_writing(tmp_path):
    zpath = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("ants/zeros.jpg", "w") as out,
    ):
        chunk = bytes(1 << 20)
        for _ in range(32):  # 32 MB of zeros, ~32 KB compressed
            out.write(chunk)
    assert zpath.stat().st_size < 200_000
    limits = ZipLimits(max_total_bytes=8 << 20, max_ratio=100, ratio_min_bytes=1 << 20)
    with pytest.raises(ArchiveError, match="zip bomb"):
        extract_zip_safely(zpath, tmp_path / "out", limits)
    assert all_files(tmp_path) == ["bomb.zip"]
    # Even with a permissive ratio, the total size cap stops it.
    with pytest.raises(ArchiveError, match="MB"):
        extract_zip_safely(
            zpath, tmp_path / "out", ZipLimits(max_total_bytes=8 << 20, max_ratio=1e9)
        )
    assert all_files(tmp_path) == ["bomb.zip"]


def _patch_sizes(data: bytes, new_size: int) -> bytes:
    """Make the local and central headers claim a smaller uncompressed size than the truth."""
    out = bytearray(data)
    local, central = out.find(b"PK\x03\x04"), out.find(b"PK\x01\x02")
    out[local + 22 : local + 26] = new_size.to_bytes(4, "little")
    out[central + 24 : central + 28] = new_size.to_bytes(4, "little")
    return bytes(out)


def test_header_that_lies_about_size_is_stopped_and_cleaned(tmp_path):
    make_zip(tmp_path / "honest.zip", {"ants/zeros.jpg": bytes(4 << 20)})
    liar = tmp_path / "liar.zip"
    liar.write_bytes(_patch_sizes((tmp_path / "honest.zip").read_bytes(), 1000))
    assert zipfile.ZipFile(liar).infolist()[0].file_size == 1000
    with pytest.raises(ArchiveError):
        extract_zip_safely(liar, tmp_path / "out", ZipLimits(max_total_bytes=1 << 20))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["honest.zip", "liar.zip"]


def test_member_count_cap(tmp_path):
    zpath = make_zip(tmp_path / "many.zip", {f"ants/{i}.jpg": b"x" for i in range(20)})
    with pytest.raises(ArchiveError, match="20 entries"):
        extract_zip_safely(zpath, tmp_path / "out", ZipLimits(max_members=10))
    assert not (tmp_path / "out").exists()


def test_not_a_zip_and_encrypted_zip_have_clear_messages(tmp_path):
    (tmp_path / "fake.zip").write_text("hello, I am text")
    with pytest.raises(ArchiveError, match="not a zip"):
        extract_zip_safely(tmp_path / "fake.zip", tmp_path / "out")
    data = bytearray(make_zip(tmp_path / "plain.zip", {"ants/a.jpg": jpeg_bytes()}).read_bytes())
    for sig, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(sig) + flag_offset
        data[pos] |= 0x1  # the "encrypted" bit
    (tmp_path / "locked.zip").write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="password"):
        extract_zip_safely(tmp_path / "locked.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_non_empty_destination_is_refused(tmp_path):
    zpath = make_zip(tmp_path / "ok.zip", {"ants/a.jpg": jpeg_bytes()})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="not empty"):
        extract_zip_safely(zpath, tmp_path / "out")
    assert all_files(tmp_path / "out") == ["keep.txt"]


def test_prepare_data_on_wrapped_zip_with_mac_litter(tmp_path):
    members = {}
    for i in range(4):
        members[f"My Dataset/ants/a{i}.jpg"] = jpeg_bytes((200, 30 + i, 30))
        members[f"My Dataset/bees/b{i}.JPG"] = jpeg_bytes((30, 30 + i, 200))
        members[f"__MACOSX/My Dataset/ants/._a{i}.jpg"] = b"\x00\x05\x16\x07junk"
    members["My Dataset/.DS_Store"] = b"\x00\x00\x00\x01Bud1"
    zpath = make_zip(tmp_path / "upload.zip", members)
    prepared = prepare_data(zpath, val_fraction=0.25)
    report = prepared.report
    assert report.trainable, report.reason
    assert report.classes == ["ants", "bees"]
    assert report.counts == {"all": {"ants": 4, "bees": 4}}
    assert prepared.root.name == "My Dataset"
    assert prepared.root.is_relative_to(tmp_path / "uploads")
    assert prepared.manifest.counts() == {
        "train": {"ants": 3, "bees": 3},
        "val": {"ants": 1, "bees": 1},
    }
    again = prepare_data(zpath, val_fraction=0.25)  # same upload: extraction reused
    assert again.root == prepared.root
    assert again.manifest.fingerprint() == prepared.manifest.fingerprint()
