"""A detection run taken away: the bundle read back finds the same boxes, ONNX is checked box
by box against PyTorch on real BCCD photos (and refused in words when it differs), a folder
of photos becomes a CSV of boxes, the Export page offers both formats, and torchrun trains a
detection run with 2 gloo processes. ONE tiny trained run (8 photos, 160 px, 1 epoch)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from bccd_folders import BCCD, NAMES, voc_folder

from tlcore.errors import ModelError

PHOTO = BCCD / "JPEGImages" / "BloodImage_00010.jpg"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """The module's runs folder, holding the one trained run (tests/test_detection.py's settings)."""
    from tlcore.cli import main

    voc, runs = voc_folder(tmp_path_factory.mktemp("voc")), tmp_path_factory.mktemp("runs")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("TLCORE_RUNS_DIR", str(runs))
        code = main(["train", "--data", str(voc), "--epochs", "1", "--img-size", "160",
                     "--batch-size", "2", "--json"])  # fmt: skip
    assert code == 0, out.getvalue()[-2000:]
    return runs


@pytest.fixture
def run(runs_dir, monkeypatch):
    from tlcore.runs.run import list_runs

    monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs_dir))
    [found] = [r for r in list_runs() if r.task.key == "image-boxes"]
    return found


def test_the_bundle_is_read_back_and_finds_the_same_boxes(run, tmp_path, capsys):
    from tlcore.cli import main
    from tlcore.export.box_bundle import load_box_bundle
    from tlcore.export.exporter import export_run
    from tlcore.runs.boxes_run import predict_boxes

    out = tmp_path / "detector.zip"
    assert main(["export", run.id, "--format", "bundle", "--out", str(out), "--json"]) == 0
    result = export_run(run, "bundle", out, overwrite=True)  # its own export: --force may replace
    assert result.details["metrics"]["map50"] == run.status()["map50"]
    detector = load_box_bundle(result.path)
    assert detector.classes == ["Platelets", "RBC", "WBC"] and detector.size == (128, 160)
    again = detector.predict([str(PHOTO)], min_score=0.0)
    first = predict_boxes(run, [str(PHOTO)], min_score=0.0)
    assert again == first and first[0]["boxes"]  # the same boxes, box for box
    import zipfile

    with zipfile.ZipFile(result.path) as zf:
        card = zf.read("README.md").decode()
        meta = json.loads(zf.read("tlcore.json"))
    status = run.status()
    assert f"mAP@0.5: **{status['map50']:.3f}**" in card
    assert f"mAP@0.5:0.95: **{status['map']:.3f}**" in card
    for name, ap in status["ap50_per_class"].items():
        assert re.search(rf"\| {name} \| \d+ \| {ap:.3f} \|", card), name
    assert "8 photos" in card and "VOC" in card.upper()
    assert meta["settings"]["epochs"] == 1 and meta["size"] == [128, 160]
    # tlcore.load reads the bundle's task and hands back a detector finding the same boxes
    import tlcore
    from tlcore.results.predict import Predictor

    assert tlcore.load(result.path).predict([str(PHOTO)], min_score=0.0) == first
    capsys.readouterr()
    assert main(["predict", str(result.path), str(PHOTO), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["boxes"] == predict_boxes(run, [str(PHOTO)])[0]["boxes"]  # at 0.5, as a run
    assert Path(answer["path"]).name == PHOTO.name
    # a label bundle's own reader refuses it in words, never builds the wrong model
    with pytest.raises(ModelError, match="not a tlcore bundle description"):
        Predictor.from_bundle(result.path)


def test_the_model_card_escapes_class_names_from_annotation_files():
    from tlcore.export.box_bundle import box_model_card

    meta = {"classes": ["*bold*", "<img src=x onerror=alert(1)>"], "size": [120, 160],
            "backbone": "tf_efficientnet_lite0", "metrics": {"map50": 0.5}}  # fmt: skip
    card = box_model_card(meta)
    assert "\\*bold\\*" in card and "\\<img" in card
    assert not re.search(r"(?<!\\)<img", card)  # never raw HTML


def test_onnx_is_checked_box_by_box_on_real_photos(run, tmp_path):
    import onnxruntime as ort

    from tlcore.data.boxes import BoxedPhoto
    from tlcore.export.exporter import export_run
    from tlcore.runs.boxes_run import load_detector
    from tlcore.training.detection import detections_of, photo_tensor

    result = export_run(run, "onnx", tmp_path / "detector.onnx")
    assert result.check_passed, result.text()
    text = result.text()
    assert "ONNX Runtime finds the same boxes as PyTorch on 6 real photos" in text, text
    compared = int(re.search(r"all (\d+) boxes", text).group(1))
    assert compared > 0, text  # boxes were compared, not none
    from tlcore.export.format_check import FormatCheck

    assert f"Check passed: {FormatCheck(**result.check).text()}" in text  # as the page shows it
    # the file on its own: a new photo at the training size, the same boxes as PyTorch
    model, _, size = load_detector(run)
    image = photo_tensor(BoxedPhoto(str(PHOTO), 640, 480, []), size)[0]
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    boxes, scores, labels = session.run(None, {"image": image.numpy()})
    expected = detections_of(model, image)
    top = expected["scores"] >= 0.1
    assert len(scores[scores >= 0.1]) == int(top.sum())
    assert abs(boxes[: int(top.sum())] - expected["boxes"][top].numpy()).max() < 0.5


def test_an_onnx_file_that_finds_other_boxes_is_refused_in_words(run, tmp_path, monkeypatch):
    from tlcore.export import box_onnx
    from tlcore.export.exporter import export_run

    real = box_onnx.onnx_detections

    def shifted(path, images):  # a graph whose boxes drift 20 px: must never be handed over
        found = real(path, images)
        for f in found:
            f["boxes"] = f["boxes"] + 20
        return found

    monkeypatch.setattr(box_onnx, "onnx_detections", shifted)
    out = tmp_path / "detector.onnx"
    with pytest.raises(ModelError, match="does NOT find the same boxes as PyTorch") as caught:
        export_run(run, "onnx", out)
    assert "so the file is not offered" in str(caught.value)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_torchscript_is_refused_in_words_for_a_detector(run, tmp_path):
    from tlcore.errors import ConfigError
    from tlcore.export.exporter import export_run

    with pytest.raises(ConfigError, match="exported as a bundle or ONNX"):
        export_run(run, "torchscript", tmp_path / "m.pt")


def test_a_folder_of_photos_becomes_a_csv_of_boxes(run, tmp_path, capsys, monkeypatch):
    from tlcore.cli import main
    from tlcore.export.box_csv import boxes_csv
    from tlcore.runs.boxes_run import predict_boxes

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "=HYPERLINK(1).jpg")  # a hostile name stays text
    shutil.copy(BCCD / "JPEGImages" / "BloodImage_00011.jpg", folder)
    out = tmp_path / "boxes.csv"
    assert main(["predict", str(run.dir), str(folder), "--csv", str(out)]) == 0
    rows = list(csv.reader(out.open(newline="")))
    assert rows[0] == ["path", "label", "score", "xmin", "ymin", "xmax", "ymax"]
    expected = predict_boxes(run, sorted(str(p) for p in folder.iterdir()))
    assert len(rows) - 1 == sum(max(1, len(a["boxes"])) for a in expected)  # every photo
    assert {r[0] for r in rows[1:]} == {a["path"] for a in expected}
    assert main(["predict", str(run.dir), str(folder), "--csv", str(out)]) == 0  # its own CSV
    capsys.readouterr()

    monkeypatch.chdir(folder)  # a relative name that a spreadsheet would run as a formula
    answers = predict_boxes(run, ["=HYPERLINK(1).jpg"], min_score=0.0)
    rows = list(csv.reader(io.StringIO(boxes_csv(answers))))[1:]
    assert len(rows) == len(answers[0]["boxes"]) > 0
    for row, box in zip(rows, answers[0]["boxes"], strict=True):
        assert row[0] == "'=HYPERLINK(1).jpg" and row[1] == box["label"]
        assert float(row[2]) == pytest.approx(box["score"], abs=1e-4)
        assert [float(v) for v in row[3:]] == [box[k] for k in ("xmin", "ymin", "xmax", "ymax")]


def test_the_export_page_offers_a_detection_run_s_bundle_and_onnx(run):
    from apptest_helpers import texts
    from streamlit.testing.v1 import AppTest

    from tlcore.export.exporter import export_into_run

    export_into_run(run, "bundle")  # as the page's background job does
    page = Path(__file__).resolve().parents[1] / "pages" / "export.py"
    at = AppTest.from_file(str(page), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="export_run").value == run.id
    keys = [b.key for b in at.button]
    assert "export_bundle" in keys and "export_onnx" in keys
    assert "export_torchscript" not in keys and "export_script" not in keys
    assert not at.error, [e.value for e in at.error]
    [download] = at.get("download_button")
    assert download.proto.label.startswith(f"Download {run.id}-bundle.zip")
    assert "mAP@0.5:" in texts(at.markdown) and "| RBC |" in texts(at.markdown)  # the card
    shown = texts(at.markdown)  # a detector's ONNX: one photo of the training size, 0.05 floor
    assert "one photo at a time, at the fixed size the run trained at" in shown
    assert "under **0.05** are not in the graph" in shown and "Any batch size" not in shown


def test_resume_under_torchrun_ends_with_the_detection_json(run, monkeypatch, capsys):
    import tlcore.cli.train as train_cli
    from tlcore.cli import main, print_json

    def rank_0(args, prepare, resume, result_of=None):  # what the ranks trained, then reported
        assert resume
        print_json((result_of or train_cli.run_result)(run, run.status(), seconds=1.5))
        return 0

    monkeypatch.setattr(train_cli, "under_torchrun", lambda: True)
    monkeypatch.setattr(train_cli, "_train_in_process", rank_0)
    assert main(["resume", run.id, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["map50"] == run.status()["map50"] and result["seconds"] == 1.5
    assert set(result["ap50_per_class"]) <= {"Platelets", "RBC", "WBC"}
    assert "val_accuracy" not in result


def test_a_coco_detector_offline_is_one_line_and_its_head_is_replaced(tmp_path, monkeypatch,
                                                                      capsys):  # fmt: skip
    import socket

    import torch

    from tlcore.cli import main
    from tlcore.data.boxes import read_boxes
    from tlcore.models.detector import build_detector, freeze_backbone
    from tlcore.training.detection import LOSS_PARTS, photo_tensor

    name = "fasterrcnn_mobilenet_v3_large_fpn"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no checkpoint cached here

    def unreachable(*_args, **_kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    voc = voc_folder(tmp_path / "voc", NAMES[:2])
    assert main(["train", "--data", str(voc), "--model", name, "--epochs", "1"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "need the internet once" in line and "local torch hub cache" in line
    assert str(tmp_path / "torch") in line and "tf_efficientnet_lite0" in line
    assert not (tmp_path / "runs").exists()  # refused before any run folder
    # the architecture without its weights: COCO's 91-class box predictor, replaced
    classes = ["Platelets", "RBC", "WBC"]
    model = build_detector(name, classes, "coco", (128, 160), [], load=False)
    head = model.roi_heads.box_predictor
    assert head.cls_score.out_features == 4 and head.bbox_pred.out_features == 16
    freeze_backbone(model, 0)  # the fast path: the body frozen, the rest learns
    assert not any(p.requires_grad for p in model.backbone.body.parameters())
    photo = read_boxes(voc).photos[0]
    image, target = photo_tensor(photo, (128, 160))
    target["labels"] = torch.tensor([classes.index(b.label) + 1 for b in photo.boxes])
    losses = model.train()([image], [target])
    assert set(losses) == set(LOSS_PARTS)
    sum(losses.values()).backward()
    assert head.cls_score.weight.grad is not None and head.cls_score.weight.grad.abs().sum() > 0


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
TRAIN = ["train", "--epochs", "1", "--img-size", "96", "--batch-size", "1", "--device", "cpu",
         "--lr", "0.005", "--json"]  # fmt: skip


def _two_rank_run(result: dict) -> None:
    """A run two gloo ranks trained: one history (rank 0's), half the steps of one process
    (each rank trains on its share of the photos)."""
    from tlcore.runs.run import Run
    from tlcore.training.checkpoints import has_checkpoint

    assert result["state"] == "finished" and result["epochs"] == 1, result
    run = Run.open(result["run_dir"])
    log = run.log_path.read_text()
    assert "rank 0 of 2" in log  # the worker's own line, under torchrun or spawned by it
    assert run.config.nproc == 2  # what trained it: resuming starts two again
    photos = json.loads((run.dir / "boxes.json").read_text())["photos"]
    n_train = sum(1 for p in photos if p["split"] == "train")
    steps = [e for e in run.metrics() if e["type"] == "step"]
    [epoch] = [e for e in run.metrics() if e["type"] == "epoch"]
    # batch 1 per process: each step takes one photo on each rank; rank 1 wrote no line
    assert (
        [e["step"] for e in steps]
        == list(range(1, -(-n_train // 2) + 1))
        == [*range(1, epoch["step"] + 1)]
    )
    assert 0.0 <= result["map50"] <= 1.0 and has_checkpoint(run.checkpoints_dir, "best")


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's gloo on POSIX")
def test_torchrun_trains_a_detection_run_with_two_gloo_processes(tmp_path):
    import os
    import subprocess

    voc = voc_folder(tmp_path / "voc", NAMES[:6])
    env = {**os.environ, "TLCORE_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.run([*TORCHRUN, "-m", "tlcore", *TRAIN, "--data", str(voc)], env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    _two_rank_run(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_compare_trains_the_detector_from_scratch_frozen_and_fine_tuned(tmp_path, capsys):
    from tlcore.cli import main
    from tlcore.runs.run import Run

    voc = voc_folder(tmp_path / "voc", NAMES[:6])
    code = main(["compare", "--data", str(voc), "--epochs", "1", "--img-size", "64",
                 "--batch-size", "2", "--device", "cpu", "--json"])  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0, out
    result = json.loads(out[-1])
    rows = {r["key"]: r for r in result["results"]}
    assert [r["label"] for r in rows.values()] == [
        "From scratch", "Frozen ImageNet backbone", "Fine-tuned ImageNet backbone"
    ]  # fmt: skip
    assert all(r["state"] == "finished" and 0 <= r["map50"] <= 1 for r in rows.values()), rows
    assert rows["b"]["fast_path"] and not rows["a"]["fast_path"] and not rows["c"]["fast_path"]
    # frozen trains the pyramid and heads only; fine-tuned the backbone too (BatchNorm frozen)
    assert (
        rows["b"]["trainable_params"]
        < rows["c"]["trainable_params"]
        < rows["a"]["trainable_params"]
    )
    runs = {k: Run.open(r["run_id"]) for k, r in rows.items()}
    assert {r.config.experiment for r in runs.values()} == {result["experiment"]}
    assert runs["a"].record["detection"]["weights"] == "scratch"
    assert [runs[k].config.freeze["preset"] for k in "abc"] == ["full", "features", "full"]
    assert runs["b"].record["detection"]["trainable_blocks"] == 0
    assert "(b) Frozen ImageNet backbone" in "\n".join(out) and "(fast path)" in "\n".join(out)


def test_a_fine_tuned_backbone_takes_smaller_steps_than_the_heads(tmp_path):
    """At the heads' lr a pretrained backbone with frozen BatchNorm blew up to NaN within 20
    steps on BCCD (the compare's fine-tuned row was mAP 0); from scratch BatchNorm learns."""
    from tlcore.data.boxes import read_boxes
    from tlcore.training.detection import DetectionSettings, DetectionTrainer

    data = read_boxes(voc_folder(tmp_path / "voc", NAMES[:4]))
    common = dict(epochs=1, long_side=64, trainable_blocks=None)
    tuned = DetectionTrainer(DetectionSettings(**common), data)
    body = {id(p) for p in tuned.model.backbone.body.parameters()}
    [heads, backbone] = tuned.optimizer.param_groups
    assert backbone["scale"] == 0.1 and {id(p) for p in backbone["params"]} == body
    assert heads["scale"] == 1.0 and not body & {id(p) for p in heads["params"]}
    scratch = DetectionTrainer(DetectionSettings(**common, weights="scratch"), data)
    assert {g["scale"] for g in scratch.optimizer.param_groups} == {1.0}
