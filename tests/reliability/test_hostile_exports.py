"""Hostile exports and models: --force, code injection into train.py, damaged weights,
hostile tlcore.json, a bundle zip bomb, an --out below a file.

All of them start from the one run trained per session (tests/trained_run_fixture.py),
copied when a test damages it.
"""

from __future__ import annotations

import ast
import json
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import tlcore
from tlcore.cli import main as cli
from tlcore.data.manifest import Manifest
from tlcore.errors import ModelError
from tlcore.export.bundle import model_metadata
from tlcore.export.exporter import export_run
from tlcore.export.reproduce import render_script
from tlcore.results.bundle_format import BUNDLE_META, WEIGHTS_FILE, write_bundle_files
from tlcore.runs.run import Run
from tlcore.runs.scoring import load_predictor

from .conftest import error_line

HOSTILE_DATASET = 'evil"""\n__import__("pathlib").Path("PWNED_DATASET").touch()\n"""'
HOSTILE_CLASSES = ['ant"s\n__import__("pathlib").Path("PWNED_CLASS").touch()#', "be\\es'''\"\"\""]
HOSTILE_FILE = 'x"""\n__import__("pathlib").Path("PWNED_FILE").touch()\n.jpg'
HOSTILE_MODEL = 'tf_efficientnet_lite0"""\n__import__("pathlib").Path("PWNED_MODEL").touch()\n"""'


@pytest.fixture(scope="module")
def trained(sample_dir, tmp_path_factory) -> Path:
    from trained_run_fixture import trained_run_dir

    return trained_run_dir(sample_dir, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory) -> Path:
    """tlcore.json and weights as an export writes them (without the slower model card)."""
    out = tmp_path_factory.mktemp("r2-bundle") / "bundle"
    run = Run.open(trained)
    predictor = load_predictor(run)
    meta = model_metadata(run, "best", predictor)
    meta.pop("trust", None)  # its files are written by write_bundle, which this skips
    write_bundle_files(out, meta, predictor.model.state_dict(), run.id)
    return out


def _copy_run(trained: Path, dest: Path) -> Path:
    return Path(
        shutil.copytree(trained, dest / trained.name, ignore=shutil.ignore_patterns("exports"))
    )


def _one_photo(trained: Path) -> str:
    return Manifest.load(trained / "manifest.json").items_for("val")[0].path


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# -- 1. --force replaces only what tlcore wrote ------------------------------------------------


def test_force_never_deletes_a_folder_tlcore_did_not_write(trained, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("a week of work")
    (project / "data").mkdir()
    (project / "data" / "a.csv").write_text("1,2")
    monkeypatch.chdir(project)
    for out in (".", str(project), str(project / "notes.txt")):
        assert cli(["export", str(trained), "--format", "script", "--out", out, "--force"]) == 2
        err = capsys.readouterr().err
        assert "tlcore did not write" in error_line(err)
    assert (project / "notes.txt").read_text() == "a week of work"
    assert (project / "data" / "a.csv").read_text() == "1,2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no file named after it
    # that --force still replaces an export tlcore wrote: test_export_bundle.py


# -- 2. no value is pasted into generated code ------------------------------------------------


def _top_level(source: str) -> list[str]:
    """The script's shape: each top-level statement's kind and the names it binds."""
    shape = []
    for node in ast.parse(source).body:
        names = sorted(
            t.id for t in getattr(node, "targets", []) + [getattr(node, "target", None)] if t
        )
        shape.append(f"{type(node).__name__}:{getattr(node, 'name', '')}:{','.join(names)}")
    return shape


def test_hostile_dataset_class_and_file_names_stay_text_in_train_py(trained, tmp_path):
    run_dir = _copy_run(trained, tmp_path)
    _edit_json(run_dir / "config.json", lambda r: r["data"].update(
        source=f"/data/{HOSTILE_DATASET}", classes=HOSTILE_CLASSES))  # fmt: skip

    def hostile_manifest(m):
        m["classes"] = HOSTILE_CLASSES
        m["items"][0]["path"] = str(Path(m["root"]) / "train" / HOSTILE_FILE)

    _edit_json(run_dir / "manifest.json", hostile_manifest)
    out = tmp_path / "handout"
    export_run(Run.open(run_dir), "script", out)
    source = (out / "train.py").read_text()
    benign = render_script(Run.open(trained), [], True)
    assert _top_level(source)[1:] == _top_level(benign)[1:]  # no statement was added
    tree = ast.parse(source)
    assert HOSTILE_DATASET in ast.get_docstring(tree)  # shown, as text
    classes = next(n for n in tree.body if getattr(n, "targets", [None])[0] is not None
                   and getattr(n.targets[0], "id", "") == "CLASSES")  # fmt: skip
    assert ast.literal_eval(classes.value) == HOSTILE_CLASSES
    split = json.loads((out / "split.json").read_text())
    assert split["train"][0][0] == f"train/{HOSTILE_FILE}"  # file names live in JSON data
    # the shape check above is what `python train.py --help` running the code broke


def test_a_hostile_model_name_stays_text_in_train_py(trained, tmp_path):
    run_dir = _copy_run(trained, tmp_path)
    _edit_json(run_dir / "config.json", lambda r: r["config"].update(model=HOSTILE_MODEL))
    source = render_script(Run.open(run_dir), [], True)
    assert _top_level(source)[1:] == _top_level(render_script(Run.open(trained), [], True))[1:]
    model = next(n for n in ast.parse(source).body if getattr(n, "targets", [None])[0] is not None
                 and getattr(n.targets[0], "id", "") == "MODEL")  # fmt: skip
    assert ast.literal_eval(model.value) == HOSTILE_MODEL


# -- 6. a damaged best.safetensors ------------------------------------------------------------


def test_a_truncated_best_checkpoint_is_one_line_from_predict_and_export(trained, tmp_path, capsys):
    run_dir = _copy_run(trained, tmp_path)
    best = run_dir / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:5000])
    commands = (["predict", str(run_dir), _one_photo(trained)],
                ["export", str(run_dir), "--format", "bundle", "--out", str(tmp_path / "b")])  # fmt: skip
    for argv in commands:
        assert cli(argv) == 2
        err = capsys.readouterr().err
        line = error_line(err)
        assert "best.safetensors" in line and "damaged" in line
    assert not (tmp_path / "b").exists()


# -- 5. tlcore.json checked whole, one line per problem ----------------------------------------

BAD_FIELDS = {
    "mean": ("preprocessing", "mean", "0.5,0.5,0.5"),
    "std": ("preprocessing", "std", [0.0, 0.2, 0.2]),
    "interpolation": ("preprocessing", "interpolation", "cubic-ish"),
    "crop_pct": ("preprocessing", "crop_pct", -0.5),
    "input_size": ("preprocessing", "input_size", [3, -224, 224]),
    "img_size": (None, "img_size", "224"),
}


def _bundle_copy(bundle: Path, dest: Path, changes: list[tuple]) -> Path:
    copy = Path(shutil.copytree(bundle, dest / "bundle"))

    def change(meta):
        for section, key, value in changes:
            (meta[section] if section else meta)[key] = value

    _edit_json(copy / BUNDLE_META, change)
    return copy


@pytest.mark.parametrize("field", list(BAD_FIELDS))
def test_each_bad_preprocessing_field_is_named(bundle, trained, tmp_path, capsys, field):
    copy = _bundle_copy(bundle, tmp_path, [BAD_FIELDS[field]])
    assert cli(["predict", str(copy), _one_photo(trained)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{field} must be" in err, err


def test_every_problem_of_a_tlcore_json_is_listed_one_line_each(bundle, trained, tmp_path, capsys):
    changes = [*BAD_FIELDS.values(), (None, "classes", ["ants", "ants"])]
    copy = _bundle_copy(bundle, tmp_path, changes)
    assert cli(["predict", str(copy), _one_photo(trained)]) == 2
    lines = capsys.readouterr().err.strip().split("\n")
    assert "7 problems" in lines[0], lines
    assert len(lines) == 1 + 7 and all(line.startswith("  - ") for line in lines[1:])
    assert any("'ants' more than once" in line for line in lines)  # a class twice: refused


def test_unknown_extra_keys_in_tlcore_json_are_allowed(bundle, trained, tmp_path, capsys):
    extra = [(None, "temperature", 1.7), (None, "unknown_inputs", {"threshold": 0.4})]
    copy = _bundle_copy(bundle, tmp_path, extra)
    assert cli(["predict", str(copy), _one_photo(trained)]) == 0, capsys.readouterr().err


# -- 7. a bundle zip that inflates far past its size ---------------------------------------------


def test_a_bundle_zip_bomb_is_refused_before_it_is_inflated(bundle, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(bundle / BUNDLE_META, BUNDLE_META)
        with zf.open(WEIGHTS_FILE, "w", force_zip64=True) as member:
            chunk = bytes(8 * 1024**2)
            for _ in range(40):  # 320 MB of zeros in about 300 kB
                member.write(chunk)
    assert bomb.stat().st_size < 2 * 1024**2
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="zip bomb"):
            tlcore.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024**2, f"{peak / 1e6:.0f} MB allocated while refusing"


# -- 15. an --out that cannot exist -------------------------------------------------------------


def test_export_out_below_an_existing_file_is_one_line(trained, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "model.zip"
    assert cli(["export", str(trained), "--format", "bundle", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert error_line(err).startswith("error: cannot write")
    assert blocker.read_text() == "x"


def test_model_card_shows_hostile_names_as_text_not_markdown():
    """A bundle's README.md: dataset and class names are shown as typed, never as links,
    headings or code spans (the card is Markdown that people open on a hub or in an editor)."""
    from tlcore.export.model_card import model_card

    evil = "**[click](http://evil.example)**`\n# Heading ![x](http://evil.example/p.png)"
    meta = {
        "architecture": "tf_efficientnet_lite0",
        "classes": [evil, "bees"],
        "data": {"name": evil, "source": evil, "counts": {"train": {evil: 3, "bees": 4}}},
        "preprocessing": {"input_size": [3, 224, 224], "mean": [0.5] * 3, "std": [0.5] * 3},
        "training": {},
        "metrics": {
            "images": 7, "accuracy": 1.0, "macro_f1": 1.0, "loss": 0.1, "confusion": [[3, 0], [0, 4]],
            "per_class": [{"class": evil, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}],
            "confused_pairs": [{"text": f"1 {evil} predicted as bees"}],
        },
    }  # fmt: skip
    card = model_card(meta)
    assert "[click](http://evil.example)" not in card
    assert "![x](" not in card
    assert "\n# Heading" not in card
    assert "click" in card  # still shown, as text
