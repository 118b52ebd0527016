"""Hostile runs, results, exports and predictions: a run folder that is a link, --csv over
an input, spreadsheet formulas in CSVs, JSON nested 100,000 deep, a bundle that lies about
its classes or threshold, unbounded counts, a read-only run, file names taken for sentences,
small runs failing their own export check, and hostile words.

Each test makes the hostile file or folder for real on the shared trained runs
(tests/trained_run_fixture.py, tests/text_run_fixture.py), copied when it damages them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlcore import settings
from tlcore.cli import main as cli
from tlcore.data.manifest import Manifest
from tlcore.errors import ConfigError, RunError
from tlcore.export.bundle import model_metadata
from tlcore.export.exporter import export_run
from tlcore.results.bundle_format import BUNDLE_META, write_bundle_files
from tlcore.results.predict import Prediction, predictions_csv
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_predictor

from .conftest import ROOT, error_line, quick_config

DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000


@pytest.fixture(scope="module")
def trained(sample_dir, tmp_path_factory) -> Path:
    from trained_run_fixture import trained_run_dir

    return trained_run_dir(sample_dir, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def text_trained(tmp_path_factory) -> Path:
    from text_run_fixture import text_run_dir

    return text_run_dir(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory) -> Path:
    """tlcore.json and weights as an export writes them (without the slower model card)."""
    out = tmp_path_factory.mktemp("r3-bundle") / "bundle"
    run = Run.open(trained)
    predictor = load_predictor(run)
    meta = model_metadata(run, "best", predictor)
    meta.pop("trust", None)
    write_bundle_files(out, meta, predictor.model.state_dict(), run.id)
    return out


def _copy(src: Path, dest: Path) -> Path:
    return Path(shutil.copytree(src, dest, ignore=shutil.ignore_patterns("exports"), symlinks=True))


def _into_runs(trained: Path, name: str | None = None) -> Path:
    """A copy of the trained run inside this test's runs folder (TLCORE_RUNS_DIR)."""
    root = settings.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    return _copy(trained, root / (name or trained.name))


def _photo(trained: Path, n: int = 0) -> str:
    return Manifest.load(trained / "manifest.json").items_for("val")[n].path


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# -- 1. a run is a real folder inside the runs folder --------------------------------------


def test_a_run_folder_that_is_a_link_is_refused_by_every_command(trained, tmp_path, capsys):
    elsewhere = _copy(trained, tmp_path / "elsewhere" / "victim-run")
    _edit_json(elsewhere / "status.json", lambda s: s.update(state="stopped", pid=None))
    before = _snapshot(elsewhere)
    runs = settings.runs_dir()
    runs.mkdir(parents=True)
    (runs / "linked").symlink_to(elsewhere, target_is_directory=True)
    photo = _photo(trained)
    commands = [
        ["status", "linked"],
        ["resume", "linked"],
        ["stop", "linked"],
        ["evaluate", "linked"],
        ["predict", "linked", photo],
        ["export", "linked", "--format", "bundle", "--out", str(tmp_path / "out")],
        ["status", str(runs / "linked")],  # as a path too
        ["resume", str(runs / "linked" / ".." / "linked")],
    ]
    for args in commands:
        assert cli(args) == 2, args
        assert "is a link" in error_line(capsys.readouterr().err), args
    with pytest.raises(RunError, match="is a link"):
        Run.from_id("linked")
    assert cli(["runs", "--prune", "--state", "stopped", "--older-than", "0"]) == 0
    assert "nothing to prune" in capsys.readouterr().out
    assert cli(["runs"]) == 0
    assert "linked" not in capsys.readouterr().out  # a link is not a run
    time.sleep(0.5)  # a worker resumed by mistake would have written log.txt by now
    assert (runs / "linked").is_symlink() and _snapshot(elsewhere) == before
    assert not (tmp_path / "out").exists()


def test_a_run_whose_log_is_a_link_to_outside_is_refused(trained, tmp_path, capsys):
    run_dir = _into_runs(trained, "real-run")
    _edit_json(run_dir / "status.json", lambda s: s.update(state="stopped", pid=None))
    outside = tmp_path / "precious.txt"
    outside.write_text("do not append to me")
    (run_dir / "log.txt").unlink(missing_ok=True)
    (run_dir / "log.txt").symlink_to(outside)
    assert cli(["resume", "real-run"]) == 2
    assert "log.txt is a link" in error_line(capsys.readouterr().err)
    time.sleep(0.5)
    assert outside.read_text() == "do not append to me"


# -- 2. --csv never replaces an input, nor a file tlcore did not write -------------------------


def test_predict_never_writes_its_csv_over_an_input_or_a_users_file(trained, tmp_path, capsys):
    victim = tmp_path / "victim.jpg"
    shutil.copy(_photo(trained), victim)
    original = victim.read_bytes()
    for out in (victim, tmp_path / "." / "victim.jpg"):
        assert cli(["predict", str(trained), str(victim), "--csv", str(out)]) == 2
        assert "one of the files to predict" in error_line(capsys.readouterr().err)
    assert cli(["predict", str(trained), str(tmp_path), "--csv", str(victim)]) == 2  # a folder
    assert "one of the files to predict" in error_line(capsys.readouterr().err)
    alias = tmp_path / "alias.csv"
    alias.symlink_to(victim)
    assert cli(["predict", str(trained), str(victim), "--csv", str(alias)]) == 2
    capsys.readouterr()
    assert victim.read_bytes() == original

    notes = tmp_path / "notes.csv"
    notes.write_text("name,phone\nada,123\n")
    assert cli(["predict", str(trained), str(victim), "--csv", str(notes)]) == 2
    assert "not a CSV of predictions tlcore wrote" in error_line(capsys.readouterr().err)
    assert notes.read_text() == "name,phone\nada,123\n"

    out = tmp_path / "predictions.csv"  # a CSV tlcore wrote is replaced by the next predict
    for _ in range(2):
        assert cli(["predict", str(trained), str(victim), "--csv", str(out)]) == 0
        capsys.readouterr()
    rows = list(csv.DictReader(out.open(newline="")))
    assert len(rows) == 1 and rows[0]["label"] in ("ants", "bees")


def test_text_predict_never_writes_its_csv_over_the_texts_it_reads(text_trained, tmp_path, capsys):
    source = tmp_path / "reviews.csv"
    source.write_text("text,label\nGreat value and it works,pos\nBroke after a day,neg\n")
    original = source.read_bytes()
    assert cli(["predict", str(text_trained), str(source), "--csv", str(source)]) == 2
    assert "one of the files to predict" in error_line(capsys.readouterr().err)
    assert source.read_bytes() == original
    out = tmp_path / "out.csv"
    assert cli(["predict", str(text_trained), str(source), "--csv", str(out)]) == 0
    assert len(list(csv.DictReader(out.open(newline="")))) == 2


# -- 3. no CSV cell runs as a spreadsheet formula ----------------------------------------------

HOSTILE_CELLS = ['=HYPERLINK("http:x","click")', "+cmd|' C calc'!A0", "@SUM(A1)", "-2+3",
                 "=1+2"]  # fmt: skip


def _cells(text: str | Path) -> list[list[str]]:
    """The rows of a CSV string, or of a CSV file read as written (a '\\r' in a cell kept)."""
    if isinstance(text, Path):
        with open(text, encoding="utf-8", newline="") as fh:
            return list(csv.reader(fh))
    return list(csv.reader(io.StringIO(text)))


def _is_inert(cell: str) -> bool:
    """What Excel/LibreOffice would show as text: no leading = + - @ tab or CR, unless a number."""
    return not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or bool(
        re.fullmatch(r"-?\d+(\.\d+)?", cell)
    )


def test_photo_predictions_csv_neutralises_formulas_in_names_and_classes(
    trained, tmp_path, capsys, monkeypatch
):
    from tlcore.results.folder_predict import predict_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    names = [f"{name}.jpg" for name in HOSTILE_CELLS]
    for n, name in enumerate(names):
        shutil.copy(_photo(trained, n), folder / name)
    monkeypatch.chdir(folder)  # the CSV's path column holds the names as typed
    out = tmp_path / "p.csv"
    assert cli(["predict", str(trained), "--csv", str(out), "--", *names]) == 0
    capsys.readouterr()
    rows = _cells(out)
    assert all(_is_inert(c) for row in rows for c in row), rows
    assert [r[0] for r in rows[1:]] == [f"'{n}" for n in names]  # kept, only made text
    assert all(float(r[2]) > 0 for r in rows[1:])  # probabilities stay numbers

    predictor = load_predictor(Run.open(trained))
    download = _cells(predictions_csv(predict_folder(predictor, folder)))  # the app's download
    assert sorted(r[0] for r in download[1:]) == sorted(f"'{n}" for n in names)
    predictor.classes = ["=1+2", "@SUM(A1)"]  # class names a dataset could have
    results = predictor.predict_files([_photo(trained)], k=2)
    row = _cells(predictions_csv(results))[1]
    assert row[1] in ("'=1+2", "'@SUM(A1)") and row[5].startswith("'") and _is_inert(row[5])
    errors = [Prediction(path="\tx.jpg", error="-1 bad"), Prediction(path="\r=x.jpg")]
    assert all(_is_inert(c) for r in _cells(predictions_csv(errors)) for c in r)


def test_text_predictions_csv_neutralises_texts_starting_like_formulas(
    text_trained, tmp_path, capsys
):
    texts = ["=1+2 works great", "+cmd|' C calc'!A0", "-terrible, broke", "@SUM(A1) fine",
             "\tgood value", "\r=bad"]  # fmt: skip
    out = tmp_path / "t.csv"
    assert cli(["predict", "--text", "--csv", str(out), "--", str(text_trained), *texts]) == 0
    capsys.readouterr()
    rows = _cells(out)
    assert len(rows) == 7 and all(_is_inert(c) for row in rows for c in row), rows
    assert [r[0][1:] for r in rows[1:]] == texts  # the text itself follows the quote


def test_every_csv_the_product_writes_goes_through_csv_safe():
    """One writer for every CSV (tlcore.data.csv_safe): no module writes cells by itself."""
    writers = re.compile(r"csv\.writer\(|csv\.DictWriter\(|\.to_csv\(|writerows?\(")
    offenders = []
    for folder in ("tlcore", "appkit", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "csv_safe.py":
                continue
            text = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(ROOT)}" for _ in writers.finditer(text)]
    assert offenders == []


# -- 4. JSON nested 100,000 deep, bytes that are not UTF-8 --------------------------------------


def test_deep_json_and_bad_bytes_in_run_files_are_damaged_files_not_tracebacks(trained, capsys):
    good = _into_runs(trained, "20990101-000000-good")
    bad_config = _into_runs(trained, "20990101-000001-deep-config")
    (bad_config / "config.json").write_text(DEEP_OBJECT)
    bad_status = _into_runs(trained, "20990101-000002-deep-status")
    (bad_status / "status.json").write_text(DEEP_LIST)
    bad_metrics = _into_runs(trained, "20990101-000003-deep-metrics")
    with open(bad_metrics / "metrics.jsonl", "ab") as fh:
        fh.write(DEEP_LIST.encode() + b"\n" + b'{"type": "note", "x": "\xff\xfe\xc0"}\n')

    assert cli(["runs"]) == 0
    out = capsys.readouterr().out
    assert good.name in out and bad_status.name in out and bad_metrics.name in out
    broken = next(line for line in out.splitlines() if bad_config.name in line)
    assert "broken" in broken and "nested too deeply" in broken
    for run_dir in (bad_status, bad_metrics):
        assert cli(["status", run_dir.name]) == 0
        text = capsys.readouterr().out
        assert "finished" in text and "epoch 3" in text  # the epochs are still read
    assert cli(["status", bad_config.name, "--json"]) == 0  # status.json is intact
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["summary"]
    assert summary["state"] == "broken" and "nested too deeply" in summary["message"]
    assert cli(["predict", bad_config.name, _photo(trained)]) == 2
    assert "nested too deeply" in error_line(capsys.readouterr().err)


def test_a_bundle_with_a_deep_tlcore_json_is_one_line(bundle, trained, tmp_path, capsys):
    copy = _copy(bundle, tmp_path / "deep")
    (copy / BUNDLE_META).write_text(DEEP_OBJECT)
    assert cli(["predict", str(copy), _photo(trained)]) == 2
    assert "nested too deeply" in error_line(capsys.readouterr().err)


def test_a_text_bundle_whose_encoder_config_lacks_model_type_is_one_line(
    text_trained, tmp_path, capsys
):
    out = tmp_path / "text-bundle"
    export_run(Run.open(text_trained), "bundle", out)
    _edit_json(out / "encoder" / "config.json", lambda c: c.pop("model_type"))
    assert cli(["predict", str(out), "great product", "--json"]) == 2
    assert "encoder/config.json" in error_line(capsys.readouterr().err)


# -- 5. a bundle's class list, threshold and names are checked -----------------------------------


def test_a_bundle_listing_100000_classes_for_a_two_class_head_is_refused_at_once(
    bundle, trained, tmp_path, capsys
):
    copy = _copy(bundle, tmp_path / "many")
    _edit_json(copy / BUNDLE_META, lambda m: m.update(
        classes=[f"class {i}" for i in range(100_000)], num_classes=100_000))  # fmt: skip
    started = time.monotonic()
    assert cli(["predict", str(copy), _photo(trained)]) == 2
    assert time.monotonic() - started < 30  # was 6 minutes of counting, then a traceback
    line = error_line(capsys.readouterr().err)
    assert "100,000 class names do not match its weights" in line and "has 2" in line


@pytest.mark.parametrize("names", [["ants", ""], ["ants", " "], ["\t", "bees"]])
def test_empty_class_names_are_refused_in_a_bundle_and_a_run(
    bundle, trained, tmp_path, capsys, names
):
    copy = _copy(bundle, tmp_path / "blank")
    _edit_json(copy / BUNDLE_META, lambda m: m.update(classes=names))
    assert cli(["predict", str(copy), _photo(trained)]) == 2
    assert "classes holds an empty name" in capsys.readouterr().err
    run_dir = _copy(trained, tmp_path / "run")
    _edit_json(run_dir / "config.json", lambda r: r["data"].update(classes=names))
    assert cli(["predict", str(run_dir), _photo(trained)]) == 2
    assert "class name that is empty" in error_line(capsys.readouterr().err)


def test_a_negative_unknown_threshold_in_a_bundle_is_refused(trained, tmp_path, capsys):
    out = tmp_path / "bundle"
    export_run(Run.open(trained), "bundle", out)
    meta = json.loads((out / BUNDLE_META).read_text())
    assert meta["trust"]["unknown"]["threshold"] > 0
    meta["trust"]["unknown"]["threshold"] = -1
    (out / BUNDLE_META).write_text(json.dumps(meta))
    assert cli(["predict", str(out), _photo(trained)]) == 2
    assert "threshold must be a number >= 0, got -1" in capsys.readouterr().err


# -- 6. every count flag has a bound ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["fewshot", "--data", "{data}", "--repeats", "1000000000"], "--repeats"),
        (["layers", "tf_efficientnet_lite0", "--num-classes", "1000000000"], "--num-classes"),
        (["layers", "tf_efficientnet_lite0", "--epoch", "1000000000"], "--epoch"),
        (["inspect", "{data}", "--seed", str(2**70)], "--seed"),
        (["predict", "{run}", "{photo}", "--top-k", "1000000000"], "--top-k"),
    ],
)
def test_count_flags_are_bounded(trained, sample_dir, capsys, args, flag):
    fill = {"data": str(sample_dir), "run": str(trained), "photo": _photo(trained)}
    started = time.monotonic()
    assert cli([a.format(**fill) for a in args]) == 2
    assert time.monotonic() - started < 20  # refused before any photo is read
    assert error_line(capsys.readouterr().err).startswith(f"error: {flag} '")


def test_the_few_shot_library_refuses_unbounded_repeats_too():
    import torch

    from tlcore.lab.fewshot import curve_from_embeddings

    x, y = torch.randn(8, 4), torch.tensor([0, 1] * 4)
    with pytest.raises(ConfigError, match="from 1 to 1000"):
        curve_from_embeddings((x, y), (x, y), ["a", "b"], (1,), 1_000_000_000)


def test_no_cli_flag_is_an_unbounded_integer():
    """Count flags are read as text and bounded (tlcore.cli.flags), never argparse's type=int."""
    for path in (ROOT / "tlcore" / "cli").glob("*.py"):
        assert "type=int" not in path.read_text(encoding="utf-8"), path.name


# -- 7. a read-only run folder ------------------------------------------------------------------


def _run_read_only(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    """``tlcore ARGS`` with ``folder`` read-only for real: permissions for a normal user;
    for root (whom permissions do not stop) a read-only bind mount in a private namespace."""
    cmd = [sys.executable, "-m", "tlcore", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if not p.is_symlink()}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: cannot make a folder read-only")
    mount = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0"'
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount + ' && touch "$0/probe"',
                            str(folder)], capture_output=True)  # fmt: skip
    if b"Read-only" not in probe.stderr:
        pytest.skip(f"no read-only bind mount here: {probe.stderr[-200:]!r}")
    cmd = ["unshare", "-rm", "sh", "-c", mount + ' && exec "$@"', str(folder), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_a_read_only_run_still_predicts_and_exports_elsewhere(trained, tmp_path):
    run_dir = _copy(trained, tmp_path / "ro-run")
    for pattern in ("trust-*", "unknown-*", "outputs-*", "evaluation-*"):
        for path in run_dir.glob(pattern):
            path.unlink()  # nothing kept yet: the first prediction must fit (and would keep)
    before = _snapshot(run_dir)
    done = _run_read_only(run_dir, ["predict", str(run_dir), _photo(trained), "--json"])
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["label"] in ("ants", "bees") and result["unknown"] is not None  # calibrated

    out = tmp_path / "model.onnx"
    done = _run_read_only(run_dir, ["export", str(run_dir), "--format", "onnx", "--out", str(out)])
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert out.is_file() and "Check passed" in done.stdout
    inside = run_dir / "exports" / "model.onnx"
    done = _run_read_only(
        run_dir, ["export", str(run_dir), "--format", "onnx", "--out", str(inside)]
    )
    assert done.returncode == 2
    assert "Read-only file system" in error_line(done.stderr) or "not writable" in done.stderr
    assert _snapshot(run_dir) == before


# -- 8. a file name is not a sentence ---------------------------------------------------------


def test_a_text_argument_that_looks_like_a_path_must_be_a_readable_file(
    text_trained, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    (tmp_path / "folder.csv").mkdir()
    for arg, why in [("reviews_typo.csv", "cannot be read"), ("data/reviews", "cannot be read"),
                     ("pipe.txt", "pipe, device or socket"), ("zero.txt", "pipe, device or socket"),
                     ("folder.csv", "a folder"), ("my reviews.csv", "cannot be read")]:  # fmt: skip
        assert cli(["predict", str(text_trained), arg]) == 2, arg
        line = error_line(capsys.readouterr().err)
        assert why in line and "--text" in line, line
    assert cli(["predict", str(text_trained), "reviews_typo.csv", "--text", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["text"] == "reviews_typo.csv"
    sentences = ["I paid 9.99 and it broke.", "Great.", "see example.com for more"]
    assert cli(["predict", str(text_trained), *sentences, "--json"]) == 0
    shown = [json.loads(line)["text"] for line in capsys.readouterr().out.strip().splitlines()]
    assert shown == sentences


# -- 9. small runs pass their own export check; a failed check leaves nothing ------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Run:
    """A run on 16 photos: its check photos include training photos (a score of 0, where the
    square root magnifies rounding) and a validation photo that sets the threshold."""
    from .conftest import class_folders

    base = tmp_path_factory.mktemp("r3-small")
    data = class_folders(base / "pets", {"cats": 8, "dogs": 8}, seed=4)
    with settings.environment(TLCORE_RUNS_DIR=str(base / "runs")):
        run = Run.start(quick_config(data))
        assert run.wait(timeout=600)["state"] == "finished"
    return run


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exports_of_a_small_run_pass_their_own_check(small_run, tmp_path, fmt):
    result = export_run(small_run, fmt, tmp_path / f"model.{fmt}")
    assert result.check["passed"], result.text()
    assert result.check["same_unknown"] is True and result.check["unknown_max_diff"] < 1e-4


def test_a_failed_export_check_leaves_no_file_behind(small_run, tmp_path, monkeypatch, capsys):
    import torch

    from tlcore.export import graph_export

    def runtime_off_by_a_lot(got, expected):  # a runtime that computes another score
        return torch.full_like(expected.double(), 0.5)

    monkeypatch.setattr(graph_export, "score_errors", runtime_off_by_a_lot, raising=False)
    out = tmp_path / "model.onnx"
    assert cli(["export", str(small_run.dir), "--format", "onnx", "--out", str(out)]) == 2
    assert "does not match the PyTorch model, so nothing was written" in error_line(
        capsys.readouterr().err
    )
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model")] == []  # its stage


# -- 10. words: hostile names and wrong types ------------------------------------------------


def test_an_unreadable_file_with_a_markdown_name_shows_as_text_in_the_batch_errors(
    trained, tmp_path, monkeypatch
):
    from apptest_helpers import go, open_app, texts

    run_dir = _into_runs(trained)
    name = "**BOLD** [click here](https:evil.example) :red[RED].png"
    folder = tmp_path / "data" / "new"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(b"not an image")
    shutil.copy(_photo(trained), folder / "good.jpg")
    monkeypatch.setenv("TLCORE_DATA_ROOT", str(tmp_path / "data"))
    at = go(open_app(run=run_dir.name), "predict")
    at.selectbox(key="predict_folder").set_value("new")
    at.button(key="predict_folder_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at.error)
    assert "\\*\\*BOLD\\*\\* \\[click here\\](https\\:evil.example) \\:red\\[RED\\].png" in shown
    assert "[click here](" not in shown.replace("\\[click here\\](", "")


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("epochs", "ten", "epochs is 'ten', not int"),
        ("lr", [0.1], "lr is [0.1], not float"),
        ("freeze", {"k": list(range(500))}, "freeze has no preset name"),
        ("model", {"conv.weight": [[0.1] * 300] * 30}, "model is a dict, not str"),
    ],
)
def test_wrong_types_in_a_runs_config_are_one_line(trained, capsys, field, value, said):
    run_dir = _into_runs(trained, "typed-run")
    _edit_json(run_dir / "status.json", lambda s: s.update(state="stopped", pid=None))
    _edit_json(run_dir / "config.json", lambda r: r["config"].update({field: value}))
    assert cli(["runs"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "typed-run" in x)
    assert "broken" in line and said in line and len(line) < 400
    assert cli(["resume", "typed-run"]) == 2
    assert said in error_line(capsys.readouterr().err)
    assert cli(["predict", "typed-run", _photo(trained)]) == 2
    assert said in error_line(capsys.readouterr().err)
