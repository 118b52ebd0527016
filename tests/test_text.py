"""Text transfer: labelled sentences through the same engine as photos.

Real sentences from the bundled reviews sample and the real bundled
all-MiniLM-L6-v2 weights: the report in words, the split, the encoder's layer
groups and embeddings, a run trained by the worker, predict / evaluate / why
from the command line, and the bundle and ONNX export checked on real sentences.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from text_run_fixture import review_rows, text_run_dir, write_csv

from tlcore.cli import main as cli_main
from tlcore.data.manifest import Manifest
from tlcore.data.prepare import prepare_data
from tlcore.runs.run import Run


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Run:
    return Run.open(text_run_dir(tmp_path_factory.getbasetemp()))


def _codes(report) -> dict[str, str]:
    return {p.code: p.severity for p in report.problems}


def test_a_messy_csv_is_reported_in_words_and_split_like_photos(tmp_path):
    rows = review_rows(12)
    other = "positive" if rows[0][1] == "negative" else "negative"
    path = write_csv(tmp_path / "messy.csv", [*rows, ("   ", "positive"), (rows[0][0], other),
                                              (rows[1][0].upper(), rows[1][1])])  # fmt: skip
    with open(path, "ab") as fh:  # a row saved in Latin-1, not UTF-8
        fh.write("Caf\xe9 cr\xe8me was awful,negative\n".encode("latin-1"))
    prepared = prepare_data(path, val_fraction=0.25, seed=3)
    report = prepared.report
    codes = _codes(report)
    assert codes["not_utf8"] == "warning" and codes["empty_text"] == "warning"
    assert codes["conflicting_labels"] == "warning" and codes["duplicates"] == "warning"
    assert report.trainable and report.to_dict()["modality"] == "text"
    # the text under two labels is gone, both copies; the upper-case copy stays with its twin
    manifest = Manifest.load(prepared.manifest_path)
    assert manifest.modality == "text"
    texts = [item.text for item in manifest.items]
    assert rows[0][0] not in texts and len(manifest.items) == 24 - 1 + 1
    twins = {item.split for item in manifest.items if item.text.casefold() == rows[1][0].casefold()}
    assert len(twins) == 1
    assert manifest.counts()["val"] == {"negative": 3, "positive": 3}
    again = prepare_data(path, val_fraction=0.25, seed=3).manifest
    assert again.fingerprint() == manifest.fingerprint()  # seeded: the same split every time


def test_folders_of_txt_files_and_unusable_inputs(tmp_path):
    for i, (text, label) in enumerate(review_rows(3)):
        (tmp_path / "t" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "t" / label / f"{i}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "t" / "negative" / "bad.txt").write_bytes(b"\xff\xfe broken")
    report = prepare_data(tmp_path / "t").report
    assert report.layout == "text_folders" and report.n_usable == 6
    assert _codes(report)["not_utf8"] == "warning" and _codes(report)["few_examples"] == "warning"
    write_csv(tmp_path / "one.csv", [("fine", "a"), ("good", "a")])
    assert "one label" in prepare_data(tmp_path / "one.csv").report.reason
    for i, (text, label) in enumerate(review_rows(4)):  # train/ and val/ folders: used as given
        folder = tmp_path / "s" / ("val" if i % 2 else "train") / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    given = prepare_data(tmp_path / "s").manifest
    assert given.split_source == "folders" and given.counts()["val"] == {
        "negative": 2,
        "positive": 2,
    }
    rows = "".join(f"{t.replace(';', ',')};{lab}\n" for t, lab in review_rows(3))
    (tmp_path / "excel.csv").write_bytes(f"text;label\n{rows}".encode("utf-16"))  # Excel's export
    excel = prepare_data(tmp_path / "excel.csv").report
    assert excel.n_usable == 6 and "utf16" in _codes(excel) and excel.classes == report.classes
    (tmp_path / "cols.csv").write_text("sentence_id,stars\n1,5\n", encoding="utf-8")
    with pytest.raises(Exception, match="needs a 'text' and a 'label' column"):
        prepare_data(tmp_path / "cols.csv")


def test_encoder_groups_and_embeddings_are_the_published_models():
    from tlcore.models.factory import create_model
    from tlcore.models.freezing import FreezePlan, apply_freeze, layer_groups
    from tlcore.models.minilm import load_sentence_encoder
    from tlcore.results.text_predict import TextPredictor

    model = create_model("all-MiniLM-L6-v2", 2)
    groups = layer_groups(model)
    assert [g.name for g in groups] == ["embeddings", *(f"layers.{i}" for i in range(6)), "head"]
    apply_freeze(model, groups, FreezePlan.parse("last-3"), 0)
    model.train()  # frozen layers run as at inference (no dropout), trained ones do not
    assert not model.layers[3].training and model.layers[4].training and model.head.training
    sentences = [text for text, _ in review_rows(2)]
    ours = TextPredictor(model.eval(), ["negative", "positive"], 128).embed(sentences)
    reference = load_sentence_encoder().encode(sentences, convert_to_tensor=True)
    assert torch.allclose(ours, reference.cpu(), atol=1e-5)


def test_train_predict_evaluate_and_why_from_the_command_line(text_run, capsys):
    record = json.loads(text_run.config_path.read_text())
    assert record["config"]["model"] == "all-MiniLM-L6-v2"
    assert text_run.status()["state"] == "finished"
    assert any(e.get("fast_path") for e in text_run.epochs())  # sentence embeddings cached once
    good, bad = (
        "Great phone, works perfectly and I love it.",
        "Terrible, it broke and I want a refund.",
    )
    assert cli_main(["predict", str(text_run.dir), good, bad, "--json", "--why"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["label"] for r in rows] == ["positive", "negative"]
    words = {w["word"]: w["score"] for w in rows[0]["why"]["words"]}
    assert set(words) >= {"Great", "love"} and max(words, key=words.get) in (
        "Great",
        "love",
        "perfectly",
    )
    assert cli_main(["evaluate", str(text_run.dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n_images"] == 10 and report["accuracy"] >= 0.7
    assert all(isinstance(m["path"], str) and " " in m["path"] for m in report["worst"])


def test_onnx_and_bundle_exports_match_pytorch_on_real_sentences(text_run, tmp_path):
    import onnxruntime as ort

    import tlcore
    from tlcore.export.exporter import export_run
    from tlcore.runs.scoring import load_predictor

    result = export_run(text_run, "onnx", tmp_path / "model.onnx")
    assert result.check["passed"] and result.check["max_abs_diff"] < 1e-4
    predictor = load_predictor(text_run)
    sentences = [text for text, _ in review_rows(40)[-6:]] + ["ok", "A much longer sentence " * 6]
    ids = predictor.token_ids(sentences)  # another batch size and length than the export's
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input_ids": ids.numpy()})[0]
    np.testing.assert_allclose(got, predictor.logits(sentences).numpy(), atol=1e-4)
    export_run(text_run, "bundle", tmp_path / "bundle")
    card = (tmp_path / "bundle" / "README.md").read_text()
    assert "validation texts" in card and "input_ids" in card
    loaded = tlcore.load(tmp_path / "bundle")  # its own tokenizer and config
    assert torch.allclose(loaded.predict(sentences), predictor.predict(sentences), atol=1e-6)
    # calibrated like photos (the temperature fitted on the validation texts), in the bundle too
    trust = predictor.trust
    assert trust is not None and trust.detector is None and trust.calibration.images == 10
    assert loaded.temperature == predictor.temperature == trust.calibration.temperature != 1.0
    scaled = (predictor.logits(sentences) / predictor.temperature).softmax(1)
    assert torch.allclose(predictor.predict(sentences), scaled, atol=1e-6)
    assert "calibrated by temperature scaling" in card and "10 validation texts" in card


def test_the_wizard_pages_adapt_to_texts(text_run, monkeypatch):
    from apptest_helpers import go, open_app, texts

    monkeypatch.setenv("TLCORE_RUNS_DIR", str(text_run.dir.parent))
    at = open_app()
    go(at, "data")
    at.button(key="use_sample_text").click().run()
    assert "Ready to train: 2 labels (negative, positive)" in texts(at.success)
    assert "Examples per label" in texts(at.subheader)
    # in the words of texts: no pictures, no photos, and a duplicate is a line of the file
    assert at.title[0].value == "1 · Your data"
    assert "Training and validation texts" in texts(at.subheader)
    assert "reviews.csv, line 20" in texts(at.warning) and "reviews.csv:20" not in texts(at.warning)
    assert next(c for c in at.get("plotly_chart") if c.key == "class_counts")
    go(at, "model")
    assert at.title[0].value == "2 · A model that already knows language"
    assert at.radio(key="text_model").value == "all-MiniLM-L6-v2"
    go(at, "train")  # a time estimate measured on these texts, in words for texts
    estimate = texts(at.success) + texts(at.info)
    assert "Estimated time: about" in estimate and "texts goes through the encoder once" in estimate
    assert "texts/s through" in texts(at.caption) and "word pieces a text" in texts(at.caption)
    assert "calculated in one go from each of the texts' features" in texts(at.caption)  # lr
    labels = [w.label for w in (*at.select_slider, *at.radio, *at.number_input, *at.selectbox)]
    assert "Image size (pixels)" not in labels and "Augmentation" not in labels  # no pixels
    go(at, "evaluate")
    assert "Hardest texts" in texts(at.subheader)
    assert "Validation texts" in [m.label for m in at.metric]
    go(at, "domain")
    assert "Domain adaptation works on photos" in texts(at.info) and not at.exception
    go(at, "predict")
    assert at.slider[0].label == "Classes to show per text"
    at.text_area(key="predict_text").input("Terrible, it broke and I want a refund.").run()
    at.button(key="predict_text_go").click().run()
    assert not at.exception
    shown = texts(at.markdown)
    assert "**negative** ·" in shown and 'class="tl-why"' in shown and "refund" in shown


def test_zero_and_few_shot_ladder_from_the_same_encoder(tmp_path):
    from tlcore.lab.text_ladder import text_ladder

    data = write_csv(tmp_path / "reviews-48.csv", review_rows())
    ladder = text_ladder(data, shots=(1, 5), repeats=5)
    rungs = {r.kind: r for r in ladder.rungs}
    assert list(rungs) == ["zero-shot", "one-shot", "few-shot", "all photos"]
    assert rungs["zero-shot"].detail == "names: negative, positive"
    # the label names alone and all 38 training sentences as prototypes beat chance (0.5)
    assert rungs["zero-shot"].accuracy >= 0.7 and rungs["all photos"].accuracy >= 0.7
    assert ladder.missing == {"trained": "no finished training run on exactly these texts yet"}


def test_word_colours_do_not_say_good_or_bad():
    """Green read as "good": a review predicted negative had its worst words in green."""
    from types import SimpleNamespace

    from appkit.text_sections import AWAY_RGB, TOWARD_RGB, highlighted

    why = SimpleNamespace(segments=lambda: [("awful", 0.9), (" ", None), ("great", -0.8)])
    page = highlighted(why)
    assert page.index(TOWARD_RGB) < page.index("awful") < page.index(AWAY_RGB) < page.index("great")
    assert "43, 138, 62" not in page and "201, 42, 42" not in page  # no green, no red
