"""Hostile datasets: tampered dataset versions, killed and simultaneous unpacks, huge and odd
files in class folders, broken sentence CSVs, and names that print alike or not at all.

Each test makes the hostile file for real (a version file edited by hand, a zip unpacked by a
process that is then killed, an 8 GB sparse file, a CSV with a stray quote) and runs what a
user would run: ``tlcore train --data-version``, ``tlcore inspect``, ``tlcore doctor``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import unicodedata
import zipfile
from pathlib import Path

import pytest
from cli_in_process import in_process
from PIL import Image
from text_run_fixture import review_rows, write_csv

from tlcore.cli import main as cli
from tlcore.data import archive
from tlcore.data.images import inspect_image, is_image_file, load_rgb
from tlcore.data.manifest import Manifest
from tlcore.data.prepare import prepare_data, unpack_upload, validate_folder
from tlcore.data.text_source import build_text_report
from tlcore.data.versions import Override, VersionStore, read_version
from tlcore.errors import DataError
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

from .conftest import ROOT, class_folders, error_line, photo

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
CLOTHING = ROOT / "assets" / "clothing4"


def _cli(*args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    env = {**ENV, "TLCORE_UPLOADS_DIR": os.environ["TLCORE_UPLOADS_DIR"],
           "TLCORE_RUNS_DIR": os.environ["TLCORE_RUNS_DIR"]}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "tlcore", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT, **popen)  # fmt: skip


def _runs() -> list[Path]:
    runs = Path(os.environ["TLCORE_RUNS_DIR"])
    return [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")] if (
        runs.is_dir()) else []  # fmt: skip


# -- 1. a dataset version is checked against its dataset every time it is read -----------------


@pytest.fixture()
def versioned(tmp_path) -> dict:
    """A real dataset, its split, and v1: one cat photo relabelled as a dog, one left out."""
    data = class_folders(tmp_path / "pets", {"cats": 6, "dogs": 6}, seed=11)
    prepared = prepare_data(data)
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    cats = sorted(str(p) for p in (data / "cats").glob("*.jpg"))
    v1 = store.create([Override(cats[0], "relabel", "dogs"), Override(cats[1], "exclude")],
                      author="ana", note="two fixes")  # fmt: skip
    outside = photo(tmp_path / "someone-else" / "private.jpg", seed=99)
    return {"data": data, "store": store, "v1": Path(v1.manifest_path), "cats": cats,
            "outside": outside, "prepared": prepared}  # fmt: skip


def _tamper(path: Path, change) -> None:
    payload = json.loads(path.read_text(encoding="utf-8"))
    change(payload)
    path.write_text(json.dumps(payload), encoding="utf-8")


def _add_item(path: str):
    def change(payload):
        payload["items"].append({"path": path, "label": 0, "split": "train"})

    return change


def _relabel_record(label: str = "", path: str = "", action: str = ""):
    def change(payload):
        override = payload["dataset_version"]["overrides"][0]
        override.update({k: v for k, v in (("label", label), ("path", path),
                                           ("action", action)) if v})  # fmt: skip

    return change


def _relabel_items_only(payload):  # the record unchanged, one more photo relabelled in the items
    labels = {item["path"]: item for item in payload["items"]}
    victim = sorted(p for p, item in labels.items() if "/cats/" in p)[-1]
    labels[victim]["label"] = 1


def _assert_refused_everywhere(case: dict, capsys, words: str) -> None:
    """Reading the version, training on it (CLI and library, as the app does) and listing it."""
    v1, store = case["v1"], VersionStore.of(case["prepared"].manifest,
                                            case["prepared"].manifest_path)  # fmt: skip
    with pytest.raises(DataError, match=words) as caught:
        Manifest.load(v1)
    assert "\n" not in str(caught.value) and "v1" in str(caught.value)
    with pytest.raises(DataError, match=words):
        read_version(v1)
    with pytest.raises(DataError, match=words):
        store.get(1)
    assert [v.number for v in store.versions()] == [0]  # listed without it
    with pytest.raises(DataError, match=words):  # the app starts runs on version.manifest_path
        Run.create(TrainConfig(data=str(case["data"]), manifest_path=str(v1), img_size=64))
    capsys.readouterr()
    code = cli(["train", "--data", str(case["data"]), "--data-version", "1", "--img-size", "64"])
    line = error_line(capsys.readouterr().err)
    assert code == 2 and "v1" in line, line
    assert _runs() == []  # no run directory, so no worker ever opened it
    assert cli(["versions", str(case["data"])]) == 0
    listed = capsys.readouterr().out
    assert "v1: refused" in listed and "two fixes" not in listed


@pytest.mark.parametrize("outside", ["/etc/hostname", "photo of another folder"])
def test_a_version_naming_a_file_outside_its_dataset_is_refused_whenever_it_is_read(
    versioned, capsys, outside
):
    path = "/etc/hostname" if outside.startswith("/") else str(versioned["outside"])
    _tamper(versioned["v1"], _add_item(path))
    _assert_refused_everywhere(versioned, capsys, "not a photo of this dataset")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_relabel_record(label="unicorns"), "classes are"),
        (_relabel_record(path="../../etc/passwd"), "not a photo of this dataset"),
        (_relabel_record(action="delete-file"), "unknown fix 'delete-file'"),
        (_relabel_items_only, "do not match its fixes"),
    ],
    ids=["class-that-does-not-exist", "dotdot-path", "unknown-action", "items-not-the-fixes"],
)
def test_a_tampered_version_is_refused_in_one_line(versioned, capsys, change, words):
    _tamper(versioned["v1"], change)
    _assert_refused_everywhere(versioned, capsys, words)


def test_a_version_file_with_a_100_mb_note_is_refused_by_its_size_before_reading(versioned, capsys):
    v1 = versioned["v1"]
    payload = json.loads(v1.read_text(encoding="utf-8"))
    note = "x" * 100_000_000
    text = json.dumps(payload).replace('"note": "two fixes"', f'"note": "{note}"')
    del note
    v1.write_text(text, encoding="utf-8")
    del text
    assert v1.stat().st_size > 100_000_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="too large"):
            Manifest.load(v1)
        with pytest.raises(DataError, match="too large"):
            versioned["store"].get(1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak  # never read into memory
    _assert_refused_everywhere(versioned, capsys, "too large")


def test_a_version_file_nested_100000_deep_is_one_line_not_a_recursion_error(versioned, capsys):
    depth = 100_000
    versioned["v1"].write_text('{"dataset_version": ' + "[" * depth + "]" * depth + "}")
    _assert_refused_everywhere(versioned, capsys, "nested too deeply")


def test_a_good_version_still_trains_and_records_its_fixes(versioned):
    """The checks refuse only what was changed by hand: tlcore's own version passes them."""
    run = Run.create(TrainConfig(data=str(versioned["data"]), manifest_path=str(versioned["v1"]),
                                 img_size=64))  # fmt: skip
    recorded = run.record["data"]["version"]
    assert recorded["name"] == "v1" and recorded["relabelled"] == 1 and recorded["excluded"] == 1
    assert len(Manifest.load(run.manifest_path).items) == 11


# -- 2. doctor --accept twice ------------------------------------------------------------------


def test_doctor_accept_twice_saves_one_version_and_says_nothing_new(tmp_path, capsys):
    data = tmp_path / "clothes"
    for cls in ("shorts", "longsleeve"):
        (data / cls).mkdir(parents=True)
        for src in sorted((CLOTHING / "train" / cls).glob("*.jpg"))[:10]:
            shutil.copy(src, data / cls / src.name)
    for src in sorted((CLOTHING / "train" / "longsleeve").glob("*.jpg"))[20:22]:
        shutil.copy(src, data / "shorts" / src.name)  # two long sleeves labelled shorts
    args = ["doctor", str(data), "--img-size", "96", "--device", "cpu", "--accept"]
    assert cli(args) == 0, capsys.readouterr().err
    first = capsys.readouterr().out
    assert "Saved v1" in first
    assert cli(args) == 0, capsys.readouterr().err
    second = capsys.readouterr().out.strip().splitlines()
    assert not any("Saved v" in line for line in second), second
    nothing = [line for line in second if "Nothing new to accept" in line]
    assert len(nothing) == 1 and "v1" in nothing[0], second
    prepared = prepare_data(data)
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    assert [v.number for v in store.versions()] == [0, 1]


# -- 3. unpacking: leftovers of a killed unpack, three unpacks of one zip at once --------------


def _zip_of_photos(path: Path, n: int = 4, padding_mb: int = 0) -> Path:
    """A real zip of ``n`` photos per class, with an incompressible file to make it slow."""
    tmp = path.parent / f"{path.stem}-src"
    class_folders(tmp, {"ants": n, "bees": n}, seed=21)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(tmp.rglob("*.jpg")):
            zf.write(file, file.relative_to(tmp).as_posix())
        for i in range(padding_mb):
            zf.writestr(f"notes/part{i:03d}.bin", os.urandom(1024**2))
    shutil.rmtree(tmp)
    return path


_SLOW = """
import sys, time
from tlcore.cli import main
from tlcore.data import archive
stream = archive._stream_member
def slow(*args, **kwargs):  # each member takes 0.3 s more: an unpack of seconds, as a big zip's
    written = stream(*args, **kwargs)
    time.sleep(0.3)
    return written
archive._stream_member = slow
sys.exit(main(sys.argv[1:]))
"""


def _slow_cli(*args: str) -> subprocess.Popen:
    """``tlcore ARGS`` in its own process, with an unpack slowed to seconds."""
    env = {**ENV, "TLCORE_UPLOADS_DIR": os.environ["TLCORE_UPLOADS_DIR"]}
    return subprocess.Popen([sys.executable, "-c", _SLOW, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _partials(uploads: Path) -> list[Path]:
    extracted = uploads / "extracted"
    return sorted(extracted.glob(".*.partial-*")) if extracted.is_dir() else []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_an_unpack_killed_halfway_leaves_nothing_after_the_next_inspect(tmp_path, sig, capsys):
    big = _zip_of_photos(tmp_path / "big.zip", padding_mb=40)
    uploads = Path(os.environ["TLCORE_UPLOADS_DIR"])
    proc = _slow_cli("inspect", str(big))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = _partials(uploads)
            if left and sum(1 for _ in left[0].rglob("*.bin")) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the unpack never started")
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = _partials(uploads)
    assert len(left) == 1  # halfway: a partial folder of several MB
    size = archive.folder_bytes(left[0])
    assert size > 2 * 1024**2
    use = archive.unpack_disk_use(uploads / "extracted")
    assert use.leftover_bytes >= size and use.leftovers == 1  # counted in the uploads' disk use
    other = _zip_of_photos(tmp_path / "other.zip")
    done = in_process(capsys, "inspect", other)  # the next start of an extraction cleans it
    assert done.returncode == 0, done.stderr
    assert _partials(uploads) == []
    assert archive.unpack_disk_use(uploads / "extracted").leftovers == 0
    again = in_process(capsys, "inspect", big)  # and the killed one unpacks in full
    assert again.returncode == 0, again.stderr
    assert "8 of 8 image files usable" in again.stdout


def test_only_tlcore_leftovers_of_dead_or_old_unpacks_are_removed(tmp_path):
    extracted = Path(os.environ["TLCORE_UPLOADS_DIR"]) / "extracted"
    extracted.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    made = {
        "dead": extracted / f".0123456789abcdef.partial-{dead}-1a2b3c4d",
        "alive": extracted / f".0123456789abcdef.partial-{os.getpid()}-5e6f7a8b",
        "old": extracted / ".fedcba9876543210.partial-9c8d7e6f",  # before pids were in names
        "recent": extracted / ".aaaaaaaaaaaaaaaa.partial-0a1b2c3d",
        "not-ours": extracted / ".holiday.partial-photos",
        "user-folder": extracted / "0123456789abcdef",
    }
    for folder in made.values():
        photo(folder / "ants" / "a.jpg", seed=3)
    week_ago = time.time() - 7 * 86400
    for name in ("old", "not-ours", "user-folder"):
        os.utime(made[name], (week_ago, week_ago))
    removed = archive.clean_unpack_leftovers(extracted)
    assert sorted(removed.paths) == sorted([made["dead"], made["old"]])
    assert removed.bytes_freed > 0
    assert not made["dead"].exists() and not made["old"].exists()
    assert made["alive"].exists() and made["recent"].exists()
    assert made["not-ours"].exists() and made["user-folder"].exists()


def test_three_unpacks_of_one_zip_at_once_all_succeed(tmp_path, monkeypatch):
    """Deterministic race: every unpack finishes its temporary folder, then all three move it."""
    zpath = _zip_of_photos(tmp_path / "same.zip")
    barrier = threading.Barrier(3, timeout=30)
    extract_all = archive._extract_all

    def extract_then_wait(*args, **kwargs):
        extract_all(*args, **kwargs)
        barrier.wait()  # all three are ready to move their folder into place at once

    monkeypatch.setattr(archive, "_extract_all", extract_then_wait)
    results: list = [None] * 3

    def unpack(i: int) -> None:
        try:
            results[i] = unpack_upload(zpath)
        except Exception as exc:  # noqa: BLE001 - the test reports what each one got
            results[i] = exc

    threads = [threading.Thread(target=unpack, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, Path) for r in results), results
    assert len(set(results)) == 1
    assert sum(1 for _ in results[0].rglob("*.jpg")) == 8
    assert _partials(Path(os.environ["TLCORE_UPLOADS_DIR"])) == []


def test_three_inspects_of_one_zip_at_once_all_succeed(tmp_path):
    """Three processes, each unpacking for seconds: all three overlap, as in the report."""
    zpath = _zip_of_photos(tmp_path / "same.zip", padding_mb=4)
    procs = [_slow_cli("inspect", str(zpath)) for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert "8 of 8 image files usable" in out
    assert _partials(Path(os.environ["TLCORE_UPLOADS_DIR"])) == []


# -- 4. an 8 GB file named .jpg ----------------------------------------------------------------


def _limit_memory(limit: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def test_an_8_gb_file_named_jpg_is_refused_by_its_size_not_read(tmp_path):
    data = class_folders(tmp_path / "pets", {"cats": 4, "dogs": 4}, seed=31)
    with open(data / "cats" / "big.jpg", "wb") as fh:  # sparse: no 8 GB is written
        fh.truncate(8 << 30)
    done = _cli("inspect", str(data), preexec_fn=_limit_memory(6 << 30))  # reading it would fail
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "cats/big.jpg" in done.stdout and "too large for one image" in done.stdout
    assert "8 of 9 image files usable" in done.stdout


# -- 5. sentence CSVs --------------------------------------------------------------------------


def _plain_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """``text,label`` lines written by hand (texts without commas or quotes), as a person
    typing a CSV would; a stray quote is then added to one of them."""
    lines = ["text,label\n"]
    for text, label in rows:
        lines.append(text.replace(",", " ").replace('"', " ") + f",{label}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_a_stray_quote_is_named_by_its_line_not_swallowing_the_file(tmp_path, capsys):
    path = _plain_csv(tmp_path / "reviews.csv", review_rows(10))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[5] = '"' + lines[5]  # line 6 opens a quote that is never closed
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="line 6") as caught:
        build_text_report(path)
    assert "quote" in str(caught.value) and "\n" not in str(caught.value)
    assert cli(["inspect", str(path)]) == 2
    line = error_line(capsys.readouterr().err)
    assert "line 6" in line and "short" not in line


def test_a_quote_closed_rows_later_is_named_too(tmp_path):
    path = _plain_csv(tmp_path / "reviews.csv", review_rows(10))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = '"' + lines[4]  # line 5 opens a quote ...
    text, label = lines[9].rstrip("\n").rsplit(",", 1)
    lines[9] = f'{text}",{label}\n'  # ... that line 10 closes: five rows read as one text
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="line 5") as caught:
        build_text_report(path)
    assert "quote" in str(caught.value) and "line 10" in str(caught.value)


def test_a_text_over_several_lines_in_quotes_is_still_one_text(tmp_path):
    rows = review_rows(6)
    rows[0] = (rows[0][0] + "\n\nSecond paragraph, still the same review.", rows[0][1])
    report = build_text_report(write_csv(tmp_path / "reviews.csv", rows))
    assert report.n_usable == 12 and "Second paragraph" in report.examples[0].text


@pytest.mark.parametrize("sep", ["\u2028", "\u0085", "\x0c", "\u2029", "\x1e"])
def test_unicode_line_separators_inside_a_text_do_not_split_rows(tmp_path, sep):
    rows = review_rows(6)
    rows = [
        (f"{text[: len(text) // 2]}{sep}{text[len(text) // 2 :]}", label) for text, label in rows
    ]
    path = write_csv(tmp_path / "reviews.csv", rows)
    report = build_text_report(path)
    assert report.n_usable == 12 and report.n_found == 12
    assert not [p for p in report.problems if p.code == "short_row"]
    assert all(sep in e.text for e in report.examples)


def test_texts_of_only_invisible_characters_count_as_empty(tmp_path):
    rows = review_rows(6)
    invisible = ["\u200b", "\ufeff", "\u200b \u200c\u2060", "\u00ad"]
    path = write_csv(tmp_path / "reviews.csv", rows + [(t, "positive") for t in invisible])
    report = build_text_report(path)
    assert report.n_usable == 12
    empty = next(p for p in report.problems if p.code == "empty_text")
    assert empty.message.startswith("4 rows")
    folder = tmp_path / "texts"
    for i, (text, label) in enumerate(rows):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i}.txt").write_text(text, encoding="utf-8")
    (folder / "positive" / "blank.txt").write_text("\ufeff\u200b\n", encoding="utf-8")
    report = build_text_report(folder)
    assert report.n_usable == 12
    assert "blank.txt" in next(p for p in report.problems if p.code == "empty_text").message


# -- 6. .jfif and .jpe -------------------------------------------------------------------------


def test_jfif_and_jpe_photos_are_read_everywhere_photos_are_listed(tmp_path):
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3}, seed=41)
    photo(data / "cats" / "scan.jfif", seed=42)
    photo(data / "dogs" / "old.JPE", seed=43)
    assert is_image_file("x.jfif") and is_image_file("x.jpe")
    scan, report = validate_folder(data)
    assert report.n_usable == 8 and report.n_found == 8
    assert not [p for p in report.problems if p.code in ("other_files", "extension_mismatch")]
    assert load_rgb(data / "cats" / "scan.jfif").size == (48, 40)
    assert inspect_image(data / "dogs" / "old.JPE").format == "JPEG"


# -- 7. a dataset of one photo copied everywhere -------------------------------------------------


def test_a_dataset_of_one_identical_photo_gets_the_true_reason(tmp_path):
    one = photo(tmp_path / "one.jpg", seed=51)
    for cls in ("cats", "dogs"):
        for i in range(3):
            (tmp_path / "pets" / cls).mkdir(parents=True, exist_ok=True)
            shutil.copy(one, tmp_path / "pets" / cls / f"{cls}_{i}.jpg")
    report = validate_folder(tmp_path / "pets")[1]
    assert not report.trainable
    assert "none readable" not in report.reason
    assert "6" in report.reason and "copies of one photo" in report.reason, report.reason


# -- 8. words ----------------------------------------------------------------------------------


def test_class_folders_that_differ_only_by_unicode_normalisation_are_warned_about(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    data = class_folders(tmp_path / "menu", {nfc: 3, nfd: 3, "tea": 3}, seed=61)
    report = validate_folder(data)[1]
    alike = [p for p in report.problems if p.code == "look_alike_classes"]
    assert len(alike) == 1 and alike[0].severity == "warning"
    assert "Unicode" in alike[0].message and "café" in alike[0].message


def test_an_rtl_override_in_a_class_name_is_escaped_once_everywhere(tmp_path, capsys):
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3, "gnp.\u202eexe": 3}, seed=62)
    (data / "empty\u202efolder").mkdir()
    assert cli(["inspect", str(data), "--manifest", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out
    assert "\\\\u202e" not in out  # never escaped twice
    table = next(line for line in out.splitlines() if line.startswith("gnp."))
    assert table.startswith("gnp.\\u202eexe ")
    assert "'empty\\u202efolder'" in out  # the warning names it the same way


def test_five_thousand_empty_class_folders_are_one_warning_that_stops_at_five(tmp_path, capsys):
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3}, seed=63)
    for i in range(5000):
        (data / f"empty{i:04d}").mkdir()
    assert cli(["inspect", str(data), "--manifest", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "no usable images" in line]
    assert len(lines) == 1, lines[:3]
    assert "and 4,995 more" in lines[0] and "'empty0004'" in lines[0]
    assert "empty0005" not in out
    assert len(out.splitlines()) < 40


def test_a_ten_thousand_character_label_is_cut_in_the_class_table(tmp_path, capsys):
    rows = review_rows(6)
    long_label = "L" * 10_000
    rows += [(text + " (again)", long_label) for text, _ in rows[:3]]
    path = write_csv(tmp_path / "reviews.csv", rows)
    cli(["inspect", str(path), "--manifest", str(tmp_path / "m.json")])
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith(("negative", "positive", "LLL"))]
    assert len(table) == 3 and all(len(line) < 100 for line in table), [len(x) for x in table]
    assert any(line.startswith("L" * 20) and "…" in line for line in table)


def test_an_invalid_exif_orientation_is_said_to_be_ignored(tmp_path):
    data = class_folders(tmp_path / "pets", {"cats": 3, "dogs": 3}, seed=64)
    exif = Image.Exif()
    exif[0x0112] = 9  # EXIF defines 1 to 8
    with Image.open(data / "cats" / "cats_00.jpg") as im:
        im.save(data / "cats" / "odd.jpg", exif=exif, quality=95)
    info = inspect_image(data / "cats" / "odd.jpg")
    assert not info.exif_rotated and (info.width, info.height) == (48, 40)
    report = validate_folder(data)[1]
    codes = {p.code: p for p in report.problems}
    assert "exif_rotated" not in codes
    assert codes["exif_invalid"].files == ["cats/odd.jpg"]
    assert "invalid EXIF orientation (9)" in codes["exif_invalid"].message
    assert "ignored" in codes["exif_invalid"].message
    assert load_rgb(data / "cats" / "odd.jpg").size == (48, 40)


_DECODE_WITHOUT_MEMORY = """
import resource, sys
from tlcore.data.images import inspect_image
from tlcore.errors import DataError
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 64 * 1024**2, size + 64 * 1024**2))
try:
    inspect_image(sys.argv[1])
except DataError as exc:
    print(exc)
"""


def test_running_out_of_memory_while_decoding_says_so(tmp_path):
    big = tmp_path / "huge.png"
    Image.new("RGB", (9000, 9000), (10, 120, 200)).save(big)  # 81 Mpx, under the bomb limit
    done = subprocess.run([sys.executable, "-c", _DECODE_WITHOUT_MEMORY, str(big)], env=ENV,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    message = done.stdout.strip()
    assert message == "huge.png: too large to decode in memory (9000x9000 pixels).", message


def test_the_app_removes_a_killed_unpack_when_the_server_starts(tmp_path):
    """Leftovers go when the app starts, not only at the next upload of a zip."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    extracted = Path(os.environ["TLCORE_UPLOADS_DIR"]) / "extracted"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    leftover = extracted / f".0123456789abcdef.partial-{dead}-1a2b3c4d"
    photo(leftover / "ants" / "a.jpg", seed=4)
    st.cache_resource.clear()  # a new server: an app run earlier in this process cleaned once
    AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py")).run(timeout=60)
    assert not leftover.exists()


def test_prune_counts_killed_unpacks_in_the_disk_use_and_removes_them(tmp_path):
    """A killed unpack's temporary folder shows in `tlcore runs --prune`'s disk use, apart
    from the finished uploads, and the prune (not its dry run) removes it."""
    extracted = Path(os.environ["TLCORE_UPLOADS_DIR"]) / "extracted"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    leftover = extracted / f".0123456789abcdef.partial-{dead}-1a2b3c4d"
    photo(leftover / "ants" / "a.jpg", seed=5)
    photo(extracted / "fedcba9876543210" / "ants" / "b.jpg", seed=6)

    def prune(*flags: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "tlcore", "runs", "--prune", *flags, "--json"],
                             capture_output=True, text=True, env=os.environ, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "1 temporary unpack folder(s)" in out.stdout
        return json.loads(out.stdout.splitlines()[-1])["uploads"]

    dry = prune("--dry-run")
    assert dry["finished"] == 1 and dry["temporary"] == 1 and dry["temporary_bytes"] > 0
    assert dry["removed"] == 0 and leftover.exists()
    assert prune()["removed"] == 1 and not leftover.exists()
    assert (extracted / "fedcba9876543210").is_dir()  # a finished upload is never touched
