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
            "--group", "sender", "--img-size", "96", "--epochs", "20", "--json"]  # fmt: skip
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


def test_compare_answers_the_seeds_question_per_task_in_numbers_and_words(
    trained, capsys, monkeypatch
):
    """``tlcore compare --data labels.csv --tasks garment,kids --group sender --json``: one
    shared model, a model per task and the logistic-regression reference on the run's split,
    from the embeddings the run already cached; the finding in words."""
    from tlcore.cli import main

    _, result = trained
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(Path(result["run_dir"]).parent))  # its cache
    capsys.readouterr()
    args = ["compare", "--data", str(SAMPLE / "labels.csv"), "--tasks", "garment,kids",
            "--group", "sender", "--img-size", "96", "--epochs", "20", "--seeds", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    said = _last_json(capsys.readouterr().out)
    assert said["task"] == "image-columns" and said["embedded_now"] == 0  # the one cache
    assert said["groups"] == result["groups"] and said["splits"] == 1
    assert said["smallest"] == "garment"  # 6 classes: about 92 photos a class, kids 276
    for name in ("garment", "kids"):
        row = said["tasks"][name]
        assert row["metric"] == "macro_f1"
        for way in ("multitask", "single", "logreg"):
            assert 0.2 < row[way]["accuracy"] <= 1 and 0 < row[way]["macro_f1"] <= 1
        gap = row["multitask"]["macro_f1"] - row["single"]["macro_f1"]
        assert row["gain"] == pytest.approx(gap, abs=1e-3) and row["spread"] > 0
        assert row["clear"] == (abs(row["gain"]) > row["spread"])
    answer, garment = said["answer"], said["tasks"]["garment"]
    assert answer.startswith("On one split (grouped by 'sender'")
    assert "the smallest task is 'garment'" in answer and "One split only" in answer
    assert (
        f"{garment['multitask']['macro_f1']:.3f} average F1 over classes against "
        f"{garment['single']['macro_f1']:.3f} for a model of its own: {garment['gain']:+.3f}"
        in answer
    )
    verdict = "within the spread" if not garment["clear"] else "beyond the spread"
    assert answer.split("For 'kids'")[0].count(verdict) == 1
    assert f"'garment' {garment['logreg']['macro_f1']:.3f}" in answer  # the reference
    assert set(said["seconds"]) == {"embedding", "multitask", "single", "logreg"}


def test_the_wizard_chooses_the_table_and_shows_each_task_on_train_evaluate_predict(
    trained, monkeypatch
):
    """Data: *Use this table* makes it the dataset; Train, Evaluate and Predict of the run
    show every task (scores per task, per class, worst mistakes), with no traceback."""
    from apptest_helpers import go, open_app, texts

    _, result = trained
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(Path(result["run_dir"]).parent))
    at = go(open_app(run=result["id"]), "data")
    # the sidebar counts the run's epochs (it said "epoch 0/60": no classification events)
    from tlcore.runs.run import Run

    n = int(Run.open(result["run_dir"]).status()["epochs"])
    assert f"epoch {n}/{n}" in " ".join(p.proto.text for p in at.get("progress"))
    next(b for b in at.button if b.key == "use_sample_columns").click()
    at.run()
    at.checkbox(key="columns_grouped").uncheck()
    at.run()
    next(b for b in at.button if b.key == "columns_use").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "2 label columns learned together, 551 photos" in texts(at.success)
    go(at, "train")
    assert "used only for feature extraction" in texts(at.info)  # the Layers page's plan
    chosen = at.session_state["tl_selections"]
    at.session_state["tl_selections"] = {**chosen, "freeze": {"preset": "last-k", "k": 2}}
    at.run()
    said = texts(at.info)
    assert "Fine-tune the last 2 groups" in said and "no fast path" in said
    assert at.number_input(key="columns_finetune_epochs").value == 10
    at.session_state["tl_selections"] = {**chosen, "freeze": {"preset": "features"}}
    at.run()
    assert at.multiselect(key="columns_train_tasks").value == ["garment", "kids"]
    assert at.selectbox(key="columns_group").value.startswith("(no group")  # kept in the state
    at.selectbox(key="columns_group").select("sender")
    at.run()
    assert any("19 in validation" in c.value for c in at.caption)
    said = texts(at.markdown)
    assert "**finished**" in said and "**garment**" in said and "**kids**" in said
    go(at, "evaluate")
    assert [h.value for h in at.subheader if h.value in ("garment", "kids")] == ["garment", "kids"]
    assert [m.label for m in at.metric].count("Accuracy") == 2
    accuracy = result["tasks"]["garment"]["accuracy"]
    assert at.metric[0].value == f"{accuracy:.1%}"
    assert len(at.dataframe) >= 2 and "taken for" in texts(at.caption)  # per class; mistakes
    shown = len(at.dataframe)
    next(b for b in at.button if b.key == "columns_compare").click()  # the seeds' question
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[shown].value
    assert list(table["task"].unique()) == ["garment", "kids"]
    assert {"one shared model", "a model per task", "logistic regression (reference)"} <= set(
        table.columns
    )
    assert "the smallest task is 'garment'" in texts(at.markdown)
    go(at, "predict")
    assert "every task's answer" in texts(at.info)


def test_an_upload_holding_a_table_is_found_inside_its_folder(tmp_path):
    from tlcore.data.columns import find_table, names_photos

    n = _names(4)
    table = _table(
        tmp_path / "wrapped", ["image,kind"] + [f"{p},{'ab'[i % 2]}" for i, p in enumerate(n)]
    )
    (table.parent / "notes.csv").write_text("word,count\nx,1\n")  # not a table of photos
    assert names_photos(table) and not names_photos(table.parent / "notes.csv")
    assert find_table(tmp_path / "wrapped") == table  # one folder down, as zips often wrap
    assert find_table(tmp_path / "wrapped" / "upload" / "images") is None


def test_export_bundle_loads_back_with_the_same_answers_and_onnx_is_checked(
    trained, tmp_path, capsys
):
    import zipfile

    import numpy as np
    import onnxruntime as ort

    import tlcore
    from tlcore.cli import main
    from tlcore.export.exporter import export_run
    from tlcore.runs.columns_run import predict_columns
    from tlcore.runs.run import Run

    _, result = trained
    run = Run(Path(result["run_dir"]))
    bundle = export_run(run, "bundle", tmp_path / "bundle.zip")
    with zipfile.ZipFile(bundle.path) as zf:
        card = zf.read("README.md").decode()
    garment = result["tasks"]["garment"]
    assert "## garment" in card and "## kids" in card
    assert f"accuracy {garment['accuracy']:.3f}, macro-F1 {garment['macro_f1']:.3f}" in card
    photos = [str(PHOTO), *sorted(str(p) for p in (SAMPLE / "images").glob("*.jpg"))[:2]]
    loaded = tlcore.load(bundle.path).predict(photos)
    direct = predict_columns(run, photos)
    for a, b in zip(loaded, direct, strict=True):
        for name in ("garment", "kids"):
            assert a["tasks"][name]["label"] == b["tasks"][name]["label"]
            assert a["tasks"][name]["probability"] == pytest.approx(
                b["tasks"][name]["probability"], abs=1e-3
            )
    capsys.readouterr()
    assert main(["predict", bundle.path, str(PHOTO), "--json"]) == 0  # the bundle, from a terminal
    said = _last_json(capsys.readouterr().out)
    assert said["path"] == str(PHOTO) and set(said["tasks"]) == {"garment", "kids"}
    assert said["tasks"]["garment"]["label"] == direct[0]["tasks"]["garment"]["label"]
    out = str(tmp_path / "m.onnx")
    assert main(["export", str(run.dir), "--format", "onnx", "--out", out, "--json"]) == 0
    check = _last_json(capsys.readouterr().out)["check"]  # checked before it was handed over
    assert check["passed"] and check["images"] == 8 and "one output per task" in check["summary"]
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["garment", "kids"]
    predictor = tlcore.load(bundle.path)
    from tlcore.export.columns_export import _preprocessed

    image = _preprocessed(predictor, str(PHOTO))[None].numpy()
    outs = dict(zip(["garment", "kids"], session.run(None, {"image": image}), strict=True))
    probs = predictor.probabilities([str(PHOTO)])
    for name in ("garment", "kids"):
        assert np.abs(outs[name][0] - probs[name][0]).max() < 1e-4
    with pytest.raises(Exception, match="bundle or ONNX"):
        export_run(run, "torchscript", tmp_path / "m.pt")


def test_sentences_train_with_the_sentence_encoder_and_answer_every_task(
    tmp_path, monkeypatch, capsys
):
    """Real review sentences with their real sentiment and a second column derived from the
    words themselves (the topic a review mentions, by a keyword rule: battery, sound, other);
    ``tlcore train --data sentences.csv --tasks ... --json`` on the bundled MiniLM."""
    import csv
    import re

    from tlcore.cli import main

    with open(ROOT / "assets" / "reviews-amazon" / "reviews.csv") as f:
        reviews = list(csv.DictReader(f))[:300]

    def topic(text: str) -> str:
        if re.search(r"batter|charg", text, re.I):
            return "battery"
        return "sound" if re.search(r"sound|hear|volume|audio|loud", text, re.I) else "other"

    table = tmp_path / "sentences.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "sentiment", "topic"])
        writer.writerows([r["text"], r["label"], topic(r["text"])] for r in reviews)
    import argparse

    from tlcore.cli.columns import wants_columns

    assert wants_columns(argparse.Namespace(data=str(table), tasks=None, group=None))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    args = ["train", "--data", str(table), "--tasks", "sentiment,topic", "--epochs", "30", "--json"]
    assert main(args) == 0
    result = _last_json(capsys.readouterr().out)
    assert result["state"] == "finished" and set(result["tasks"]) == {"sentiment", "topic"}
    assert result["tasks"]["sentiment"]["accuracy"] > 0.75  # chance: 0.5
    assert result["tasks"]["topic"]["macro_f1"] > 0.4
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert config["task"] == {"modality": "text", "target": "columns"}
    assert config["config"]["model"] == "all-MiniLM-L6-v2"
    said = "The battery died after a day, a waste of money."
    assert main(["predict", result["run_dir"], said, "--json"]) == 0
    answer = _last_json(capsys.readouterr().out)
    assert answer["text"] == said and answer["tasks"]["topic"]["label"] == "battery"
    assert answer["tasks"]["sentiment"]["label"] == "negative"

    # export: the same code as photos, the tokenizer in the bundle, token ids into ONNX
    import numpy as np
    import onnxruntime as ort

    import tlcore
    from tlcore.export.exporter import export_run
    from tlcore.runs.run import Run

    run = Run(Path(result["run_dir"]))
    bundle = export_run(run, "bundle", tmp_path / "bundle.zip")
    loaded = tlcore.load(bundle.path)
    sentences = [said, "Great sound and loud enough.", reviews[0]["text"]]
    direct = predict_columns_of(run, sentences)
    for a, b in zip(loaded.predict(sentences), direct, strict=True):
        for name in ("sentiment", "topic"):
            assert a["tasks"][name]["label"] == b["tasks"][name]["label"]
            assert a["tasks"][name]["probability"] == pytest.approx(
                b["tasks"][name]["probability"], abs=1e-3
            )
    capsys.readouterr()
    assert main(["predict", bundle.path, said, "--json"]) == 0
    from_bundle = _last_json(capsys.readouterr().out)
    assert from_bundle["text"] == said and from_bundle["tasks"]["topic"]["label"] == "battery"
    out = str(tmp_path / "m.onnx")
    assert main(["export", str(run.dir), "--format", "onnx", "--out", out, "--json"]) == 0
    check = _last_json(capsys.readouterr().out)["check"]
    assert check["passed"] and "sentences" in check["summary"]
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids"]
    assert [o.name for o in session.get_outputs()] == ["sentiment", "topic"]
    ids = loaded.token_ids([said]).numpy()
    outs = dict(zip(["sentiment", "topic"], session.run(None, {"input_ids": ids}), strict=True))
    probs = loaded.probabilities([said])
    for name in ("sentiment", "topic"):
        assert np.abs(outs[name][0] - probs[name][0]).max() < 1e-4


def predict_columns_of(run, sentences):
    from tlcore.runs.columns_run import predict_columns

    return predict_columns(run, sentences)


def test_a_layers_plan_that_fine_tunes_trains_the_backbone_end_to_end(tmp_path, monkeypatch):
    """``--freeze last-2``: the backbone's last group and the heads learn together on the
    photos (no embedding cache), a curve per task, the backbone kept with the run; predict
    answers through the fine-tuned backbone, not the pretrained one."""
    import csv

    from safetensors.torch import load_file

    from tlcore.models.factory import create_model
    from tlcore.runs.columns_run import (
        BACKBONE_FILE,
        create_columns_run,
        predict_columns,
        train_columns_run,
    )
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    with open(SAMPLE / "labels.csv") as f:
        rows = list(csv.DictReader(f))[::23]  # 24 photos
    folder = tmp_path / "upload"
    (folder / "images").mkdir(parents=True)
    for r in rows:
        shutil.copy(SAMPLE / r["image"], folder / r["image"])
    (folder / "labels.csv").write_text(
        "image,garment,kids\n" + "".join(f"{r['image']},{r['garment']},{r['kids']}\n" for r in rows)
    )
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    config = TrainConfig(data=str(folder / "labels.csv"), img_size=64, epochs=1, lr=1e-2,
                         freeze="last-2", augment="light", batch_size=8, num_workers=0)  # fmt: skip
    run, data = create_columns_run(config, ["garment", "kids"], None)
    run.stop_path.touch()  # a stop is honoured after a step, the run says how to go on
    assert train_columns_run(Run(run.dir)) == "stopped"
    assert "resume continues after epoch 0" in Run(run.dir).status()["message"]
    run.stop_path.unlink()
    assert train_columns_run(Run(run.dir), resume=True) == "finished"
    status = Run(run.dir).status()
    assert set(status["tasks"]) == {"garment", "kids"}
    events = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events] == [1] and set(events[0]["tasks"]) == {"garment", "kids"}
    assert events[0]["fast_path"] is False
    tuned = load_file(str(run.dir / BACKBONE_FILE))
    pretrained = create_model("tf_efficientnet_lite0", None, "bundled").state_dict()
    changed = {k for k, v in tuned.items() if not v.equal(pretrained[k])}
    assert any(k.startswith("blocks.6.") for k in changed)  # the last group learned
    assert not any(k.startswith(("conv_stem.", "blocks.0.", "blocks.5.")) for k in changed)
    answer = predict_columns(Run(run.dir), [str(PHOTO)])[0]
    assert set(answer["tasks"]) == {"garment", "kids"}
    assert answer["tasks"]["garment"]["label"] in data.task("garment").classes
    assert train_columns_run(Run(run.dir), resume=True) == "finished"  # from epoch 1's checkpoint
    assert len((run.dir / "metrics.jsonl").read_text().splitlines()) == 1  # no epoch trained again


def test_the_tags_sample_trains_and_evaluate_shows_map_f1_and_a_threshold_per_tag(
    tmp_path, monkeypatch
):
    """The multi-label example: the detection sample's kinds of cell present in each photo, a
    tag column (``assets/bccd/tags.csv``). Data offers it; once trained, Evaluate shows the
    mean average precision, F1 over all tags and each tag's threshold."""
    from apptest_helpers import go, open_app, texts

    from tlcore.runs.columns_run import create_columns_run, evaluate_columns, train_columns_run
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    tags = ROOT / "assets" / "bccd" / "tags.csv"
    assert "tags.csv" in (tags.parent / "SOURCE.md").read_text()  # where it comes from, MIT
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    at = go(open_app(), "data")
    next(b for b in at.button if b.key == "use_sample_tags").click()
    at.run()
    said = texts(at.markdown)
    assert "**cells** (tags separated by `\\|`, 364 labelled)" in said and "Platelets 201" in said
    next(b for b in at.button if b.key == "tags_use").click()
    at.run()
    assert not at.exception and at.session_state["tl_selections"]["data"]["task"] == "image-columns"
    run, data = create_columns_run(TrainConfig(data=str(tags), img_size=32, epochs=20), None, None)
    assert [(t.name, t.kind, t.classes) for t in data.tasks] == [
        ("cells", "tags", ["Platelets", "RBC", "WBC"])
    ]
    assert train_columns_run(Run(run.dir)) == "finished"
    report = evaluate_columns(Run(run.dir))["tasks"]["cells"]
    at = go(open_app(run=run.id), "evaluate")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mean average precision"] == f"{report['map']:.1%}"
    assert metrics["F1 over all tags"] == f"{report['micro_f1']:.1%}"
    per_tag = at.dataframe[0].value
    assert list(per_tag["tag"]) == ["Platelets", "RBC", "WBC"]
    assert list(per_tag["threshold"]) == [report["per_tag"][t]["threshold"] for t in per_tag["tag"]]
    assert "Tags that go together" in texts(at.markdown)
