"""Object detection on real BCCD photos (assets/bccd): the four box formats read to the same
boxes, the report in words, every malformed annotation as one clear line, and one tiny
trained run through ``tlcore train`` (the worker, the run directory) and ``tlcore predict``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tlcore.data.box_report import box_report, training_size
from tlcore.data.boxes import MAX_BOXES_PER_PHOTO, box_format, read_boxes
from tlcore.errors import DataError

BCCD = Path(__file__).resolve().parents[1] / "assets" / "bccd"
NAMES = [f"BloodImage_{i:05d}" for i in (0, 1, 2, 3, 4, 5, 6, 7)]


def _voc(folder: Path, names: list[str] = NAMES) -> Path:
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    for name in names:
        shutil.copy(BCCD / "JPEGImages" / f"{name}.jpg", folder / "JPEGImages")
        shutil.copy(BCCD / "Annotations" / f"{name}.xml", folder / "Annotations")
    return folder


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
    return _voc(tmp_path_factory.mktemp("voc"))


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
    assert (run_dir / "checkpoints" / "best.pt").is_file()


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
    from tlcore.runs.boxes_run import create_boxes_run, train_boxes_run
    from tlcore.training.config import TrainConfig
    from tlcore.training.detection import DetectionSettings

    config = TrainConfig(data=str(voc), epochs=1, batch_size=2)
    run, _, _ = create_boxes_run(config, DetectionSettings(epochs=1, batch_size=2, long_side=128))
    run.stop_path.touch()  # asked to stop before it began: it stops after its first step
    assert train_boxes_run(run) == "stopped"
    assert run.status()["message"] == "Stopped by request at step 1."
    assert (run.checkpoints_dir / "last.pt").is_file()
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
    assert "tlcore train --data assets/bccd" in texts(at.info)


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
