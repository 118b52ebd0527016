"""Object detection on real BCCD photos (assets/bccd): the four box formats read to the same
boxes, the report in words, every malformed annotation as one clear line, and one tiny
trained run through ``tlcore train`` (the worker, the run directory) and ``tlcore predict``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from bccd_folders import BCCD, NAMES, voc_folder

from tlcore.data.box_report import box_report, training_size
from tlcore.data.boxes import MAX_BOXES_PER_PHOTO, box_format, read_boxes
from tlcore.errors import DataError


def _boxes(data) -> dict[str, list[tuple]]:
    return {Path(p.path).stem: sorted((b.label, round(b.xmin), round(b.ymin), round(b.xmax),
                                       round(b.ymax)) for b in p.boxes) for p in data.photos}  # fmt: skip


def _photos_only(folder: Path, names: list[str] = NAMES) -> Path:
    (folder / "images").mkdir(parents=True)
    for name in names:
        shutil.copy(BCCD / "JPEGImages" / f"{name}.jpg", folder / "images")
    return folder


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return voc_folder(tmp_path_factory.mktemp("voc"))


def test_the_four_formats_read_to_the_same_boxes(voc, tmp_path):
    data = read_boxes(voc)
    assert (
        data.format == "voc"
        and len(data.photos) == 8
        and data.classes == ["Platelets", "RBC", "WBC"]
    )
    classes = data.classes
    coco = _photos_only(tmp_path / "coco")
    images, anns = [], []
    yolo = _photos_only(tmp_path / "yolo")
    (yolo / "labels").mkdir()
    (yolo / "classes.txt").write_text("\n".join(classes))
    rows = ["image,xmin,ymin,xmax,ymax,label"]
    for i, p in enumerate(data.photos):
        name = Path(p.path).name
        images.append({"id": i, "file_name": name, "width": p.width, "height": p.height})
        lines = []
        for b in p.boxes:
            anns.append({"id": len(anns), "image_id": i, "category_id": classes.index(b.label),
                         "bbox": [b.xmin, b.ymin, b.width, b.height]})  # fmt: skip
            lines.append(f"{classes.index(b.label)} {(b.xmin + b.xmax) / 2 / p.width} "
                         f"{(b.ymin + b.ymax) / 2 / p.height} {b.width / p.width} {b.height / p.height}")  # fmt: skip
            rows.append(f"{name},{b.xmin},{b.ymin},{b.xmax},{b.ymax},{b.label}")
        (yolo / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines))
    cats = [{"id": i, "name": c} for i, c in enumerate(classes)]
    (coco / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                       "categories": cats}))  # fmt: skip
    csvdir = _photos_only(tmp_path / "csv")
    (csvdir / "boxes.csv").write_text("\n".join(rows))
    for folder, fmt in ((coco, "coco"), (yolo, "yolo"), (csvdir, "csv")):
        assert box_format(folder) == fmt
        other = read_boxes(folder)
        assert other.format == fmt and _boxes(other) == _boxes(data), fmt


def test_the_report_says_photos_classes_sizes_problems_and_the_given_split():
    data = read_boxes(BCCD)
    lines = box_report(data, training_size(data))
    text = "\n".join(lines)
    assert "364 photos with 4886 boxes of 3 classes, read as VOC" in text
    assert "Boxes per class: RBC 4153, WBC 372, Platelets 361." in text
    assert "At the training size 512×384 boxes are" in text
    assert "BloodImage_00338.jpg box 13 (RBC): zero or negative size (0×0); dropped." in text
    assert "Split: 205 training, 87 validation, 72 test photos (ImageSets/Main)." in text
    small = box_report(data, (96, 128))  # at a quarter of the size the platelets vanish
    assert any("hard to find (" in line and "Platelets" in line for line in small)


def test_a_seeded_split_keeps_every_class_on_both_sides(voc):
    data = read_boxes(voc, val_fraction=0.2, seed=3)
    assert "seeded split" in data.split_source
    for split in ("train", "val"):
        assert {b.label for p in data.split(split) for b in p.boxes} == set(data.classes), split


def test_every_malformed_annotation_is_one_clear_line(voc, tmp_path):
    bad = shutil.copytree(voc, tmp_path / "bad")
    ann = bad / "Annotations"
    (ann / "BloodImage_00000.xml").write_text("<annotation><object><name>RBC</name>")  # broken
    text = (ann / "BloodImage_00001.xml").read_text()
    (ann / "BloodImage_00001.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]>' + text.split("?>", 1)[-1]
    )  # an entity: refused
    text = (ann / "BloodImage_00002.xml").read_text()
    text = text.replace("<xmin>", "<xmin>nan", 1)  # a NaN coordinate
    (ann / "BloodImage_00002.xml").write_text(text)
    text = (ann / "BloodImage_00003.xml").read_text()
    first = text.index("<xmax>")
    text = text[:first] + "<xmax>-5</xmax>" + text[text.index("</xmax>", first) + 7 :]
    (ann / "BloodImage_00003.xml").write_text(text)  # a negative width
    many = "".join(f"<object><name>RBC</name><bndbox><xmin>{i % 600}</xmin><ymin>1</ymin>"
                   f"<xmax>{i % 600 + 10}</xmax><ymax>20</ymax></bndbox></object>"
                   for i in range(10_000))  # fmt: skip
    (ann / "BloodImage_00004.xml").write_text(
        f"<annotation><filename>BloodImage_00004.jpg</filename>{many}</annotation>"
    )
    (ann / "BloodImage_99999.xml").write_text((ann / "BloodImage_00005.xml").read_text()
                                              .replace("00005", "99999"))  # fmt: skip
    data = read_boxes(bad)
    said = "\n".join(data.problems)
    assert "BloodImage_00000.xml: not readable XML" in said
    assert "BloodImage_00001.xml: declares a DOCTYPE or ENTITY" in said
    assert "BloodImage_00002.jpg box 1 (RBC): a coordinate is not a number; dropped." in said
    assert "BloodImage_00003.jpg box 1 (WBC): zero or negative size" in said
    assert (
        f"BloodImage_00004.jpg: 10,000 boxes in one photo; the first {MAX_BOXES_PER_PHOTO}" in said
    )
    assert data.annotations_without_photo == ["BloodImage_99999"]
    assert {"BloodImage_00000", "BloodImage_00001"} <= set(data.photos_without_annotation)
    assert all("\n" not in p for p in data.problems)
    assert len(data.photos) == 8  # nothing else lost: every photo kept (some as background)
    report = "\n".join(box_report(data, training_size(data)))
    assert "1 annotation(s) without a photo: BloodImage_99999." in report

    coco = _photos_only(tmp_path / "coco", NAMES[:2])
    (coco / "a.json").write_text('{"images": [ broken')
    with pytest.raises(DataError, match="no usable box"):
        read_boxes(coco)
    data = read_boxes(_coco_with_bad_category(coco))
    assert any("category_id 7, which no category has; dropped." in p for p in data.problems)

    yolo = _photos_only(tmp_path / "yolo", NAMES[:2])
    (yolo / "classes.txt").write_text("RBC\nWBC\n")
    (yolo / f"{NAMES[0]}.txt").write_text("0 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n")
    (yolo / "missing_photo.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    data = read_boxes(yolo)
    assert any(
        f"{NAMES[0]}.txt line 2: class id 5 is out of range (0..1)" in p for p in data.problems
    )
    assert data.annotations_without_photo == ["missing_photo"]


def _coco_with_bad_category(folder: Path) -> Path:
    (folder / "a.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": f"{NAMES[0]}.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [10, 10, 50, 50]},
                        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [10, 10, 50, 50]}],
        "categories": [{"id": 0, "name": "RBC"}]}))  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, voc):
    """ONE tiny run through `tlcore train --json` (the worker, the run directory)."""
    import contextlib
    import io

    from tlcore.cli import main

    runs = tmp_path_factory.mktemp("runs")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("TLCORE_RUNS_DIR", str(runs))
        code = main(["train", "--data", str(voc), "--epochs", "1", "--img-size", "160",
                     "--batch-size", "2", "--json"])  # fmt: skip
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


def test_train_notices_the_boxes_and_ends_with_map(trained):
    code, result = trained
    assert code == 0, result
    assert result["state"] == "finished" and result["epochs"] == 1
    assert 0.0 <= result["map50"] <= 1.0 and 0.0 <= result["map"] <= result["map50"] + 1e-9
    assert set(result["ap50_per_class"]) <= {"Platelets", "RBC", "WBC"}
    assert result["seconds"] > 0
    run_dir = Path(result["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["task"] == {"modality": "image", "target": "boxes"}
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch = [e for e in events if e["type"] == "epoch"][0]
    for part in ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "map50"):
        assert part in epoch, part
    assert (run_dir / "checkpoints" / "best.safetensors").is_file()  # the house checkpoint pair
    assert (run_dir / "checkpoints" / "best.state.pt").is_file()


def test_predict_gives_boxes_in_the_photo_s_pixels(trained, capsys):
    from tlcore.cli import main
    from tlcore.runs.boxes_run import predict_boxes
    from tlcore.runs.run import Run

    _, result = trained
    photo = BCCD / "JPEGImages" / "BloodImage_00010.jpg"
    assert main(["predict", result["run_dir"], str(photo), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["path"] == str(photo) and isinstance(answer["boxes"], list)
    found = predict_boxes(Run.open(result["run_dir"]), [str(photo)], min_score=0.0)[0]["boxes"]
    assert found, "a detector always proposes something at score 0"
    for box in found:
        assert set(box) == {"label", "score", "xmin", "ymin", "xmax", "ymax"}
        assert 0 <= box["xmin"] < box["xmax"] <= 640 and 0 <= box["ymin"] < box["ymax"] <= 480


def test_a_stopped_detection_run_resumes_from_its_last_checkpoint(voc, tmp_path, monkeypatch):
    from tlcore.runs.boxes_run import BoxesRecorder, create_boxes_run, train_boxes_run
    from tlcore.training.config import TrainConfig
    from tlcore.training.detection import DetectionSettings

    said, hear = [], BoxesRecorder.on_embed_progress  # the status as the fast path's pass goes

    def spy(self, trainer, progress):
        hear(self, trainer, progress)
        said.append(json.loads(self.run.status_path.read_text()))  # as written (no worker here)

    monkeypatch.setattr(BoxesRecorder, "on_embed_progress", spy)
    config = TrainConfig(data=str(voc), epochs=1, batch_size=2)
    run, _, _ = create_boxes_run(config, DetectionSettings(epochs=1, batch_size=2, long_side=128))
    run.stop_path.touch()  # asked to stop before it began: it stops after its first step
    assert train_boxes_run(run) == "stopped"
    photos = len(NAMES)  # train and validation: each through the backbone once
    assert said[0]["message"] == (
        f"Computing the backbone's feature maps once (fast path): 0 of {photos} photos · "
        "time left: unknown."
    )  # fmt: skip
    assert said[-1]["embedding"]["done"] == said[-1]["embedding"]["total"] == photos
    assert said[-1]["message"] == "Training epoch 1 of 1."
    assert run.status()["message"] == "Stopped by request at step 1."
    assert (run.checkpoints_dir / "last.safetensors").is_file()
    run.stop_path.unlink()
    assert train_boxes_run(run, resume=True) == "finished"
    steps = [e["step"] for e in run.metrics() if e["type"] == "step"]
    assert steps[0] == 1 and steps[1] == 2  # went on from step 1, not from 0
    assert [e["epoch"] for e in run.metrics() if e["type"] == "epoch"] == [1]


def test_inspect_gives_the_detection_report(capsys):
    from tlcore.cli import main

    assert main(["inspect", str(BCCD), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["task"] == "image-boxes" and out["photos"] == 364
    assert out["classes"] == ["Platelets", "RBC", "WBC"] and len(out["problems"]) == 2


def test_the_data_page_detection_sample_shows_the_report_and_boxes():
    from apptest_helpers import go, open_app, texts

    at = go(open_app(), "data")
    at.button(key="use_sample_boxes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at.markdown)
    assert "364 photos with 4886 boxes of 3 classes" in shown
    assert "dropped" in shown and "ImageSets/Main" in shown
    at.button(key="use_sample_boxes_data").click().run()  # Use this sample: the chosen data
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["tl_selections"]["data"]["task"] == "image-boxes"
    go(at, "train")  # the detection settings (the Layers page's preset: frozen backbone)
    assert at.radio(key="boxes_layers").value == "frozen"
    assert at.selectbox(key="boxes_long_side").value == 512  # from the data
    said = texts(at.caption)  # the run's time, from 2 of the photos timed here
    assert "Time: **about " in said and "measured here on 2 of your photos" in said, said
    assert re.search(
        r"the \d+ photos, 8 epochs of \d+ steps with the validation mAP of \d+ "
        r"photos each, and the final scoring of the \d+ validation photos",
        said,
    )
    assert "none is under 8 px" in said
    at.selectbox(key="boxes_long_side").set_value(128).run()  # the sizes said at the new size
    assert "are under 8 px and hard to find" in texts(at.caption)


def test_yolo_train_and_valid_folders_are_the_given_split(tmp_path):
    root = tmp_path / "yolo"
    for split, names in (("train", NAMES[:5]), ("valid", NAMES[5:])):
        (root / split / "labels").mkdir(parents=True)
        _photos_only(root / split, names)
        for name in names:
            (root / split / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("names: ['cell']\n")
    data = read_boxes(root)
    assert data.format == "yolo" and data.split_source == "train/valid/test folders"
    assert len(data.split("train")) == 5 and len(data.split("val")) == 3
    box = data.photos[0].boxes[0]
    assert box.label == "cell"
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == pytest.approx((256, 192, 384, 288))


def _val_truth(run) -> tuple[list[str], list[dict]]:
    import torch

    from tlcore.runs.boxes_run import boxes_data

    data = boxes_data(run)
    photos = data.split("val")
    targets = [{"boxes": torch.tensor([[b.xmin, b.ymin, b.xmax, b.ymax] for b in p.boxes]
                                      ).reshape(-1, 4),
                "labels": torch.tensor([data.classes.index(b.label) + 1 for b in p.boxes])}
               for p in photos]  # fmt: skip
    return [p.path for p in photos], targets


def test_evaluation_is_scored_once_and_equals_torchmetrics(trained, monkeypatch):
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    from tlcore.results.box_evaluation import SCORE_FLOOR, average_precision
    from tlcore.runs import boxes_run
    from tlcore.runs.run import Run

    run = Run.open(trained[1]["run_dir"])
    assert boxes_run.scores_path(run, "best").is_file()  # the worker scored them once, at the end
    boxes_run.PASSES.clear()
    scores = boxes_run.box_scores(run, "best")
    assert boxes_run.PASSES["best"] == 0  # read from the run: the model not run again
    ap = average_precision(scores)
    # the same boxes another way: `tlcore predict`'s function, the truth read from the run
    paths, targets = _val_truth(run)
    answers = boxes_run.predict_boxes(run, paths, min_score=SCORE_FLOOR)
    classes = scores.classes
    preds = [{"boxes": torch.tensor([[b[k] for k in ("xmin", "ymin", "xmax", "ymax")]
                                     for b in a["boxes"]]).reshape(-1, 4),
              "scores": torch.tensor([b["score"] for b in a["boxes"]]),
              "labels": torch.tensor([classes.index(b["label"]) + 1 for b in a["boxes"]],
                                     dtype=torch.int64)} for a in answers]  # fmt: skip
    assert sum(len(p["boxes"]) for p in preds) > 0
    metric = MeanAveragePrecision(iou_type="bbox")
    metric.update(preds, targets)
    expected = metric.compute()
    assert ap["map50"] == pytest.approx(float(expected["map_50"]), abs=1e-4)
    assert ap["map"] == pytest.approx(float(expected["map"]), abs=1e-4)
    assert set(ap["pr_curves"]) <= set(classes) and ap["pr_curves"]
    # a resumed run that replaces the checkpoint voids the kept detections
    weights = run.checkpoints_dir / "best.safetensors"
    weights.write_bytes(weights.read_bytes())  # new time: another checkpoint for the stamp
    assert boxes_run.box_scores(run, "best") == scores and boxes_run.PASSES["best"] == 1
    boxes_run.box_scores(run, "best")  # kept again, for the new stamp
    assert boxes_run.PASSES["best"] == 1


def test_evaluate_cli_says_each_class_in_words(trained, capsys):
    from tlcore.cli import main

    run_dir = trained[1]["run_dir"]
    assert main(["evaluate", run_dir, "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["task"] == "image-boxes" and 0 <= report["map"] <= report["map50"] <= 1
    assert set(report["per_class"]) == {"Platelets", "RBC", "WBC"}
    for name, counts in report["per_class"].items():
        said = next(w for w in report["words"] if f" {name};" in w)
        assert said.startswith(f"finds {counts['found']} of {counts['true']} {name};")
    assert main(["evaluate", run_dir]) == 0
    out = capsys.readouterr().out
    assert "mAP@0.5" in out and "finds " in out


def test_words_worst_photos_and_confusions_at_a_threshold():
    from tlcore.results.box_evaluation import BoxScores, PhotoBoxes, at_threshold, box_evaluation

    photo = str(BCCD / "JPEGImages" / "BloodImage_00000.jpg")
    wbc = [[10.0 + 60 * i, 10.0, 60.0 + 60 * i, 60.0] for i in range(10)]
    platelets = [[10.0 + 60 * i, 200.0, 40.0 + 60 * i, 230.0] for i in range(7)]
    rbc = [[100.0, 300.0, 180.0, 380.0]]
    one = PhotoBoxes(photo, 640, 480, wbc + platelets + rbc, [2] * 10 + [0] * 7 + [1],
                     # 9 of 10 WBC found; 7 Platelets right and one drawn on the red cell
                     wbc[:9] + platelets + rbc + [[400.0, 400.0, 420.0, 420.0]],
                     [0.9] * 9 + [0.8] * 7 + [0.7, 0.3], [2] * 9 + [0] * 8 + [1])  # fmt: skip
    other = PhotoBoxes(photo.replace("00000", "00001"), 640, 480, [rbc[0]], [1], rbc, [0.95], [1])
    scores = BoxScores(["Platelets", "RBC", "WBC"], [other, one])
    view = at_threshold(scores, 0.5)
    words = view.words()
    assert words[2] == "finds 9 of 10 WBC; every box it draws for WBC is right (9)."
    assert words[0] == "finds 7 of 7 Platelets; 1 in 8 boxes it draws for Platelets is wrong."
    assert words[1] == "finds 1 of 2 RBC; every box it draws for RBC is right (1)."
    assert view.confusion_words() == ["1 box drawn as Platelets sits on a true RBC."]
    assert [p.path for p in view.worst()] == [photo]  # 2 missed, 1 false; the other is perfect
    assert view.worst()[0].missed == 2 and view.worst()[0].false == 1
    low = at_threshold(scores, 0.2).words()[1]  # the low-score RBC box now counts, wrongly
    assert low == "finds 1 of 2 RBC; 1 in 2 boxes it draws for RBC is wrong."
    report = box_evaluation(scores, 0.5)
    assert report["confusions"] == [{"true": "RBC", "predicted": "Platelets", "boxes": 1}]


def test_the_train_evaluate_and_predict_pages_of_a_detection_run(trained, monkeypatch):
    from apptest_helpers import APP, go, texts
    from streamlit.testing.v1 import AppTest

    from appkit.state import DEFAULTS
    from appkit.text import md
    from tlcore.data.progress import Progress
    from tlcore.runs.run import Run

    run = Run.open(trained[1]["run_dir"])
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(run.dir.parent))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["tl_selections"] = {**DEFAULTS, "run_id": run.id, "data": {
        "kind": "task", "source": run.record["data"]["source"], "label": "Boxes",
        "task": "image-boxes"}}  # the boxes chosen on the Data page, their run followed  # fmt: skip
    kept = run.status_path.read_text()  # as while its backbone's pass runs: k of N photos
    run.write_status("running", pid=None, embedding=Progress(
        "Computing the backbone's feature maps once (fast path)", 3, 8, 1.5, unit="photos"
    ).to_dict())  # fmt: skip
    with pytest.MonkeyPatch.context() as alive:  # its worker, as far as the page can tell
        alive.setattr(Run, "_worker_alive", lambda self, status: True)
        at = go(at.run(), "train")
    bars = [bar.proto.text for bar in at.get("progress")]  # the sidebar's run bar beside it
    shown = "Computing the backbone's feature maps once (fast path): 3 of 8 photos · about 2 s left"
    assert shown in bars, bars
    run.status_path.write_text(kept)
    at = go(at, "train")  # the followed run, live view: finished
    assert "finished" in texts(at.markdown) and len(at.get("plotly_chart")) == 2
    at = go(at, "evaluate")
    assert at.radio(key="evaluate_ckpt").options[0] == "Best epoch (highest validation mAP@0.5)"
    shown = texts(at.markdown)
    assert "validation photos" in shown and "It finds " in shown
    assert [m.label for m in at.metric][:2] == ["mAP@0.5", "mAP@0.5:0.95"]
    assert at.get("plotly_chart") and len(at.get("image")) >= 2  # PR curves; true and found
    at.slider(key="boxes_eval_threshold").set_value(0.05).run()
    assert not at.exception, [e.value for e in at.exception]
    at = go(at, "predict")
    example = at.selectbox(key="boxes_predict_example")
    name = example.options[0]  # a validation photo's file name
    example.select_index(0).run()
    assert not at.exception, [e.value for e in at.exception]
    said = [m for m in texts(at.markdown).splitlines() if m.startswith(f"**{md(name)}**: ")]
    assert said and any(w in said[0] for w in (" RBC", " WBC", " Platelets", "nothing found"))
    assert at.get("download_button") and len(at.get("image")) == 1
    go(at, "runs")  # listed with the others; its state said, no photo-label curves


def test_a_server_folder_with_boxes_is_noticed_and_chosen(voc, tmp_path, monkeypatch):
    from apptest_helpers import go, open_app, texts

    from appkit.text import md

    hostile = "**boxes** <b>x</b> _y_"
    shutil.copytree(voc, tmp_path / "root" / hostile)
    monkeypatch.setenv("TLCORE_DATA_ROOT", str(tmp_path / "root"))
    at = go(open_app(), "data")
    at.text_input(key="root_typed").input(hostile).run()
    at.button(key="use_folder").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    assert at.session_state["tl_selections"]["data"]["task"] == "image-boxes"
    shown = texts(at.markdown) + texts(at.get("subheader") or [])
    assert "8 photos with 143 boxes of 3 classes" in shown
    assert md(f"Folder: {hostile}") in shown and "<b>x</b>" not in shown


def test_boxes_drawn_in_the_browser_are_kept_as_voc_beside_the_photos(tmp_path, monkeypatch):
    from apptest_helpers import go, open_app, texts
    from PIL import Image

    from tlcore.data.boxes import Box
    from tlcore.data.voc_labels import annotation_path, drawn_boxes, write_boxes

    folder = tmp_path / "labels"
    (folder / "JPEGImages").mkdir(parents=True)
    photos = []
    for name in NAMES[:2]:
        photos.append(folder / "JPEGImages" / f"{name}.jpg")
        shutil.copy(BCCD / "JPEGImages" / f"{name}.jpg", photos[-1])
    before = [p.read_bytes() for p in photos]
    hostile = 'cell <b>&</b> "=1+1"'
    at = go(open_app(), "data")
    at.session_state["tl_box_label_set"] = str(folder)  # as "Add these photos" leaves it
    at.run()
    at.text_input(key="label_boxes_classes").input(f"{hostile}, platelet").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key="label_boxes_use").disabled  # nothing drawn yet
    # what the component hands back when a box is drawn: saved at once, beside the photo
    write_boxes(
        photos[0], 640, 480, [Box(hostile, 10, 20, 110, 220), Box("platelet", 5, 5, 30, 30)]
    )
    assert annotation_path(photos[0]) == folder / "Annotations" / f"{NAMES[0]}.xml"
    assert [(b.label, b.xmin, b.ymax) for b in drawn_boxes(photos[0])] == [
        (hostile, 10, 220), ("platelet", 5, 30)]  # fmt: skip
    at.run()
    assert "1 of 2 photos labelled" in texts(at.caption)
    at.button(key="label_boxes_use").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["tl_selections"]["data"]["task"] == "image-boxes"
    data = read_boxes(folder)
    assert data.classes == sorted([hostile, "platelet"]) and len(data.photos) == 2
    assert [p.read_bytes() for p in photos] == before  # the photos themselves never written
    assert Image.open(photos[0]).size == (640, 480)
