"""Several label columns per photo (multitask): a table read into tasks, one shared run that
learns them all on the cached embeddings, and every task's answer from predict/evaluate.

One run trained on the real clothing-attributes sample (96 px to stay fast) serves the
module; the bad-input tests read small tables of real photos written into tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tlcore.data.columns import read_columns
from tlcore.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "clothing-attributes"
PHOTO = SAMPLE / "images" / "63856971-1795-426b-b451-f32e16a74301.jpg"  # a child's longsleeve


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``tlcore train --data labels.csv --tasks garment,kids --group sender --json``, once."""
    from tlcore.cli import main

    runs = tmp_path_factory.mktemp("runs")
    patch = pytest.MonkeyPatch()
    patch.setenv("TLCORE_RUNS_DIR", str(runs))
    args = ["train", "--data", str(SAMPLE / "labels.csv"), "--tasks", "garment,kids",
            "--group", "sender", "--img-size", "96", "--epochs", "40", "--json"]  # fmt: skip
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    yield code, _last_json(out.getvalue())
    patch.undo()


def test_the_sample_is_bundled_with_its_licence():
    assert "CC0" in (SAMPLE / "SOURCE.md").read_text()
    assert len(list((SAMPLE / "images").glob("*.jpg"))) == 551


def test_the_table_becomes_tasks_and_the_split_keeps_each_sender_on_one_side():
    data = read_columns(SAMPLE / "labels.csv", tasks=["garment", "kids"], group="sender")
    assert [(t.name, t.kind) for t in data.tasks] == [("garment", "one-of"), ("kids", "one-of")]
    assert data.task("kids").counts == {"no": 383, "yes": 168}
    sides: dict[str, set[str]] = {}
    for item in data.items:
        sides.setdefault(item.group, set()).add(item.split)
    assert all(len(s) == 1 for s in sides.values())  # no sender on both sides
    assert data.groups["train"] + data.groups["val"] == len(sides) == 129
    assert 0.15 < len(data.items_for("val")) / len(data.items) < 0.25
    assert (
        "19 in validation" in data.summary()
        or f"{data.groups['val']} in validation" in data.summary()
    )


def test_train_runs_through_the_worker_and_reports_every_task(trained):
    code, result = trained
    assert code == 0 and result["state"] == "finished"
    assert set(result["tasks"]) == {"garment", "kids"}
    assert result["seconds"] > 0 and result["groups"]["val"] > 0
    garment, kids = result["tasks"]["garment"], result["tasks"]["kids"]
    assert garment["accuracy"] > 0.5 and garment["macro_f1"] > 0.4  # chance: 1/6
    assert kids["accuracy"] > 0.65 and kids["macro_f1"] > 0.5
    run = Path(result["run_dir"])
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == {"modality": "image", "target": "columns"}
    curves = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert curves and all(
        set(e["tasks"]) == {"garment", "kids"} for e in curves
    )  # a curve per task
    from tlcore.runs.run import Run

    assert Run(run).task.key == "image-columns" and Run(run).status()["state"] == "finished"


def test_predict_and_evaluate_answer_per_task(trained, capsys):
    from tlcore.cli import main

    _, result = trained
    capsys.readouterr()
    assert main(["predict", result["run_dir"], str(PHOTO), "--json"]) == 0
    answer = _last_json(capsys.readouterr().out)
    assert answer["path"] == str(PHOTO)
    assert set(answer["tasks"]) == {"garment", "kids"}
    assert answer["tasks"]["garment"]["label"] in {
        "body",
        "longsleeve",
        "outwear",
        "shirt",
        "shorts",
        "undershirt",
    }
    assert 0 < answer["tasks"]["kids"]["probability"] <= 1
    assert main(["evaluate", result["run_dir"], "--json"]) == 0
    report = _last_json(capsys.readouterr().out)
    assert report["tasks"]["garment"]["accuracy"] == pytest.approx(
        result["tasks"]["garment"]["accuracy"]
    )
    assert report["tasks"]["kids"]["worst"]  # the most confident mistakes, per task


def _table(tmp_path: Path, rows: list[str], photos: int = 6) -> Path:
    folder = tmp_path / "upload"
    (folder / "images").mkdir(parents=True)
    for src in sorted((SAMPLE / "images").glob("*.jpg"))[:photos]:
        shutil.copy(src, folder / "images" / src.name)
    table = folder / "labels.csv"
    table.write_text("\n".join(rows) + "\n")
    return table


def _names(n: int) -> list[str]:
    return [f"images/{p.name}" for p in sorted((SAMPLE / "images").glob("*.jpg"))[:n]]


def test_tags_blanks_and_problems_are_each_said_in_one_line_and_nothing_is_lost(tmp_path):
    n = _names(6)
    rows = ["image,scene,kind,colour,who",
            f'{n[0]},"beach;sunset",a,=HYPERLINK("x"),',
            f"{n[1]},beach,b,red,",
            f"{n[2]},,a,red,",  # blank: not labelled for 'scene'
            f'{n[3]},"sunset;city",b,red,',
            f"{n[4]},city,a,red,",
            f"{n[4]},city,a,red,",  # a duplicate row
            f"{n[5]},beach,b,red,",
            "../outside.jpg,beach,a,red,",
            "images/missing.jpg,beach,a,red,"]  # fmt: skip
    data = read_columns(_table(tmp_path, rows), group="who")
    scene = data.task("scene")
    assert (
        scene.kind == "tags"
        and scene.separator == ";"
        and scene.classes == ["beach", "city", "sunset"]
    )
    by_name = {Path(i.path).name: i for i in data.items}
    assert by_name[Path(n[2]).name].labels["scene"] is None  # left out of that task's loss
    assert by_name[Path(n[0]).name].labels["scene"] == [0, 2]
    text = " ".join(data.problems)
    assert "outside the table's folder" in text and "'../outside.jpg'" in text
    assert "not found" in text and "missing.jpg" in text
    assert "1 duplicate rows" in text
    assert "formulas" in text and "never run" in text
    assert "group column 'who' is empty" in text
    assert len(data.items) == 6


def test_a_one_value_column_and_too_many_tags_are_left_out_in_words(tmp_path):
    n = _names(6)
    many = ";".join(f"t{i}" for i in range(500))
    rows = ["image,same,tags,kind"] + [f'{p},x,"{many}",{"ab"[i % 2]}' for i, p in enumerate(n)]
    data = read_columns(_table(tmp_path, rows))
    assert [t.name for t in data.tasks] == ["kind"]
    text = " ".join(data.problems)
    assert "'same' has one value only" in text
    assert "500 distinct tags" in text
    with pytest.raises(DataError, match="no label column 'nope'"):
        read_columns(_table(tmp_path / "b", rows), tasks=["nope"])


def test_a_tag_column_trains_with_map_micro_f1_and_thresholds_per_tag(tmp_path, monkeypatch):
    """A real tag column: each photo's garment and, for children's clothes, a 'kids' tag."""
    import csv

    from tlcore.runs.columns_run import OUTPUTS_FILE, create_columns_run, train_columns_run
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    with open(SAMPLE / "labels.csv") as f:
        rows = list(csv.DictReader(f))[::8]
    folder = tmp_path / "upload"
    (folder / "images").mkdir(parents=True)
    for r in rows:
        shutil.copy(SAMPLE / r["image"], folder / r["image"])
    lines = "".join(
        f'{r["image"]},"{r["garment"]}{"|kids" if r["kids"] == "yes" else ""}"\n' for r in rows
    )
    (folder / "tags.csv").write_text("image,tags\n" + lines)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "abs.csv").write_text(
        "image,tags\n" + "".join(f"{folder / r['image']},x|y\n" for r in rows)
    )
    with pytest.raises(DataError, match="no photo of abs.csv"):  # all outside its folder
        read_columns(tmp_path / "other" / "abs.csv")
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    config = TrainConfig(data=str(folder / "tags.csv"), img_size=96, epochs=30)
    run, data = create_columns_run(config, None, None)
    assert data.tasks[0].kind == "tags" and data.tasks[0].separator == "|"
    assert "kids" in data.tasks[0].classes
    assert train_columns_run(Run(run.dir)) == "finished"
    scores = Run(run.dir).status()["tasks"]["tags"]
    assert 0.3 < scores["map"] <= 1 and 0 < scores["micro_f1"] <= 1
    thresholds = json.loads((run.dir / OUTPUTS_FILE).read_text())["thresholds"]["tags"]
    assert len(thresholds) == len(data.tasks[0].classes)
    assert len(set(thresholds)) > 1  # chosen per tag
    from tlcore.runs.columns_run import evaluate_columns

    report = evaluate_columns(Run(run.dir))["tasks"]["tags"]
    kids = thresholds[data.tasks[0].classes.index("kids")]
    assert report["per_tag"]["kids"]["threshold"] == pytest.approx(kids, abs=1e-4)
    assert any("kids" in pair["tags"] and pair["true"] > 0 for pair in report["together"])


def test_a_spreadsheet_reads_like_a_csv_and_mixed_separators_are_said(tmp_path):
    import openpyxl

    n = _names(6)
    table = _table(tmp_path, ["x"])
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["photo", "tags", "kind"])
    for i, name in enumerate(n):
        sheet.append(
            [name, ["a;b", "b|c", "a;c", "c", "a;b", "b"][i], "=1+1" if i == 0 else "xy"[i % 2]]
        )
    book.save(table.with_suffix(".xlsx"))
    data = read_columns(table.with_suffix(".xlsx"))
    assert data.item_column == "photo" and len(data.items) == 6
    tags = data.task("tags")
    assert tags.kind == "tags" and tags.separator == ";"
    text = " ".join(data.problems)
    assert "'tags' mixes tag separators" in text
    assert "formulas" in text and "'=1+1'" in text  # read as text, not computed
    assert "=1+1" in data.task("kind").classes


def test_the_data_page_shows_each_column_as_a_task_with_its_counts():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=60)
    app.run()
    next(b for b in app.button if b.key == "use_sample_columns").click()
    app.run()
    assert not app.exception
    said = " ".join(m.value for m in app.markdown)
    assert "**garment** (one of, 551 labelled)" in said and "yes 168" in said
    assert app.multiselect[0].value == ["garment", "kids"]
    assert any("19 in validation" in c.value for c in app.caption)  # whole senders per side
    app.checkbox(key="columns_grouped").uncheck()
    app.run()
    assert not any("grouped by" in c.value for c in app.caption)


def test_a_table_naming_photos_trains_as_columns_and_a_sentences_csv_does_not():
    import argparse

    from tlcore.cli.columns import wants_columns

    def asks(data: Path) -> bool:
        return wants_columns(argparse.Namespace(data=str(data), tasks=None, group=None))

    assert asks(SAMPLE / "labels.csv")  # `tlcore train --data labels.csv`: every label column
    assert not asks(ROOT / "assets" / "reviews-amazon" / "reviews.csv")
    assert not asks(ROOT / "assets" / "ants-bees")
