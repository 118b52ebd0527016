"""The data doctor and dataset versions, on real clothing photos with planted mistakes.

A small copy of clothing4 (shorts vs long sleeves) gets two long-sleeve photos put in
the shorts folder (wrong labels) and three altered copies put into the other split
(leaks): a re-saved 3/4-size copy, an 8 % crop and a half-size copy. The doctor must
find all of them and pair no two different photos; fixes become a version that
trains like any manifest while the photo files stay byte for byte the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.apptest_helpers import APP
from tlcore.cli import main as cli_main
from tlcore.data.prepare import prepare_data
from tlcore.data.versions import Override, VersionStore, read_version, version_record
from tlcore.errors import DataError
from tlcore.results.doctor import diagnose

ROOT = Path(__file__).resolve().parents[1]
CLOTHING = ROOT / "assets" / "clothing4"
IMG_SIZE = 96  # small and fast; the checks below hold at this size too


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """The dataset folder, the planted wrong labels and leak, and a warm embedding cache."""
    base = tmp_path_factory.mktemp("doctor")
    data = base / "clothes"
    for split, n in (("train", 10), ("val", 3)):
        for cls in ("shorts", "longsleeve"):
            (data / split / cls).mkdir(parents=True)
            for photo in sorted((CLOTHING / split / cls).glob("*.jpg"))[:n]:
                shutil.copy(photo, data / split / cls / photo.name)
    wrong = []
    for photo in sorted((CLOTHING / "train" / "longsleeve").glob("*.jpg"))[20:22]:
        wrong.append(str(data / "train" / "shorts" / photo.name))
        shutil.copy(photo, wrong[-1])
    original = sorted((data / "train" / "shorts").glob("*.jpg"))[0]
    copy = data / "val" / "shorts" / "copy.jpg"
    with Image.open(original) as image:
        image.resize((image.width * 3 // 4, image.height * 3 // 4)).save(copy, quality=60)
    leaks = [(str(original), str(copy))]
    cropped = sorted((data / "train" / "longsleeve").glob("*.jpg"))[1]
    halved = min(p for p in (data / "val" / "shorts").glob("*.jpg") if p != copy)
    for photo, other in (
        (cropped, data / "val" / "longsleeve"),
        (halved, data / "train" / "shorts"),
    ):
        with Image.open(photo) as image:
            w, h = image.size
            if photo == cropped:
                altered = image.crop((w * 8 // 100, h * 8 // 100, w * 92 // 100, h * 92 // 100))
            else:
                altered = image.resize((w // 2, h // 2), Image.Resampling.BICUBIC)
            altered.save(other / f"copy-{photo.name}", quality=90)
        leaks.append((str(photo), str(other / f"copy-{photo.name}")))
    runs = base / "runs"
    cache = runs / ".cache" / "embeddings"
    import os

    os.environ["TLCORE_UPLOADS_DIR"] = str(base / "uploads")  # this fixture's prepare_data only
    try:
        manifest = prepare_data(data).manifest
        report = diagnose(manifest, img_size=IMG_SIZE, cache_dir=cache, device="cpu")
    finally:
        del os.environ["TLCORE_UPLOADS_DIR"]
    return {"data": data, "wrong": wrong, "leak": leaks[0], "leaks": leaks, "runs": runs,
            "cache": cache, "report": report}  # fmt: skip


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_doctor_finds_planted_wrong_labels_and_the_leak(planted):
    report = planted["report"]
    found = {issue.path: issue for issue in report.label_issues}
    assert set(planted["wrong"]) <= set(found), report.text()
    assert all(found[p].given == "shorts" and found[p].suggested == "longsleeve"
               for p in planted["wrong"])  # fmt: skip
    assert len(report.label_issues) <= 4  # the rest of the photos are fine
    pairs = {frozenset((p.a, p.b)): p for p in report.near_duplicates}
    # every copy found, as a leak, and no pair of two different photos
    assert set(pairs) == {frozenset(leak) for leak in planted["leaks"]}, report.text()
    assert all(pair.across_splits and pair.pixel_similarity >= 0.9 for pair in pairs.values())
    text = report.text()
    assert f"Labels that look wrong: {len(report.label_issues)}" in text
    assert "across train and validation" in text


def test_versions_fix_labels_without_touching_photos(planted, monkeypatch):
    data = planted["data"]
    before = digest(data)
    prepared = prepare_data(data)
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    assert [v.number for v in store.versions()] == [0]
    fixes = [Override(p, "relabel", "longsleeve") for p in planted["wrong"]]
    v1 = store.create(fixes, author="tester", note="doctor said so")
    v2 = store.create([Override(planted["leak"][1], "exclude")], author="tester")
    assert [v.number for v in store.versions()] == [0, 1, 2]
    manifest = store.manifest(2)
    label = {item.path: manifest.classes[item.label] for item in manifest.items}
    assert all(label[p] == "longsleeve" for p in planted["wrong"])
    assert planted["leak"][1] not in label and len(label) == len(prepared.manifest.items) - 1
    assert digest(data) == before  # nothing moved, changed or deleted
    record = read_version(v2.manifest_path)
    assert record.number == 2 and record.parent == 1 and record.author == "tester"
    assert {o.action for o in record.overrides} == {"relabel", "exclude"}
    assert all(o.when and o.previous == "shorts" for o in record.overrides)
    assert version_record(v1.manifest_path)["relabelled"] == 2
    assert version_record(prepared.manifest_path)["name"] == "v0"
    # a run on a version records it (run record and model card line)
    from tlcore.export.model_card import _version_line
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    run = Run.create(TrainConfig(data=str(data), manifest_path=v1.manifest_path, img_size=64))
    recorded = run.record["data"]["version"]
    assert recorded["name"] == "v1" and recorded["relabelled"] == 2
    assert _version_line(recorded) == [
        "- Dataset version: v1 (2 photos relabelled, 0 left out; the photo files unchanged)"
    ]
    # a version file is a manifest: the store opened from it leads back to the original
    assert VersionStore.of(manifest, v2.manifest_path).base_fingerprint == store.base_fingerprint
    with pytest.raises(DataError, match="classes are"):
        store.create([Override(planted["wrong"][0], "relabel", "hats")])
    with pytest.raises(DataError, match="not a photo of this dataset"):
        store.create([Override(str(data / "nope.jpg"), "exclude")])
    # the relabelled version reuses the embedding cache (no label or split in its key)
    again = diagnose(manifest, img_size=IMG_SIZE, cache_dir=planted["cache"], device="cpu",
                     embed_paths=[item.path for item in store.base.items])  # fmt: skip
    assert again.cache_hit
    assert not set(planted["wrong"]) & {issue.path for issue in again.label_issues}


def test_cli_doctor_json_and_versions(planted, capsys, monkeypatch):
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(planted["runs"]))  # the warm cache
    code = cli_main(["doctor", str(planted["data"]), "--img-size", str(IMG_SIZE),
                     "--device", "cpu", "--json", "--accept"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out.strip().splitlines()[-1])
    assert set(result) >= {"label_issues", "near_duplicates", "outliers", "seconds"}
    assert {"path", "given", "suggested", "score"} <= set(result["label_issues"][0])
    assert any(p["across_splits"] for p in result["near_duplicates"])
    assert "Embedding photos" in out.err  # the progress count
    assert result["accepted"]["version"] == "v1"
    assert cli_main(["versions", str(planted["data"])]) == 0
    listed = capsys.readouterr().out
    accepted = result["accepted"]["relabelled"]
    sure = [i for i in result["label_issues"] if i["suggested_probability"] >= 0.5]  # --accept-min
    assert accepted == len(sure) >= len(planted["wrong"])
    assert result["accepted"]["not_accepted"] == len(result["label_issues"]) - accepted
    assert f"v1: {accepted} relabelled" in listed
    assert cli_main(["doctor", str(planted["data"] / "missing")]) == 2
    assert "neither a dataset folder" in capsys.readouterr().err


def doctor_page(planted, monkeypatch):
    """The Doctor page on the planted clothes, with the warm embedding cache."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TLCORE_RUNS_DIR", str(planted["runs"]))  # the warm embedding cache
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["tl_selections"] = {
        "data": {"kind": "folder", "source": str(planted["data"]), "label": "clothes"},
        "val_fraction": 0.2, "seed": 0, "model": "tf_efficientnet_lite0", "weights": "bundled",
        "freeze": {"preset": "features"}, "train": {"img_size": IMG_SIZE}, "run_id": None,
        "data_version": None,
    }  # fmt: skip
    at.run()
    return at.switch_page("pages/doctor.py").run()


def test_doctor_page_relabels_into_a_new_version(planted, monkeypatch):

    at = doctor_page(planted, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    next(b for b in at.button if b.label == "Check the photos").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.value.startswith("Checked") and "look" in s.value for s in at.success)
    radio = next(r for r in at.radio if "Relabel as longsleeve" in r.options)
    radio.set_value("Relabel as longsleeve").run()
    save = next(b for b in at.button if b.label.startswith("Save 1 decision"))
    save.click().run()
    assert not at.exception, [e.value for e in at.exception]
    chosen = at.session_state["tl_selections"]["data_version"]
    assert chosen["number"] >= 1
    prepared = prepare_data(planted["data"])
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    saved = store.get(chosen["number"])
    assert saved.overrides[-1].action == "relabel" and saved.overrides[-1].label == "longsleeve"
    assert "Version to check and to train on" in [s.label for s in at.selectbox]
    # "mark the confident ones": every suggestion at >= 50 % set to relabel, nothing saved yet
    next(b for b in at.button if b.label == "Check the photos").click().run()
    report = at.session_state["tl_doctor_report"][1]
    sure = [i for i in report.label_issues if i.suggested_probability >= 0.5]
    next(b for b in at.button if b.label.startswith("Mark the")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert sum(r.value.startswith("Relabel as") for r in at.radio) == len(sure) > 0
    plural = "" if len(sure) == 1 else "s"
    assert f"Save {len(sure)} decision{plural} as a new version" in [b.label for b in at.button]


def test_retrain_and_compare_on_the_fixed_version(planted, monkeypatch):
    """The Doctor page's button retrains a run with its settings on the fixed version and
    shows both side by side; the Train page names the version it will train on."""
    from streamlit.testing.v1 import AppTest

    from tlcore.runs.run import Run
    from tlcore.runs.worker import execute
    from tlcore.training.config import TrainConfig

    def train_here(run: Run) -> Run:  # in this process: no worker start-up, no calibration
        assert execute(run, resume=False) == 0, run.log_path.read_text()[-2000:]
        return run

    monkeypatch.setattr(
        Run, "start", classmethod(lambda cls, config: train_here(cls.create(config)))
    )
    data = str(planted["data"])
    prepared = prepare_data(data)
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    fixed = store.create([Override(p, "relabel", "longsleeve") for p in planted["wrong"]])
    before = train_here(Run.create(TrainConfig(
        data=data, manifest_path=str(prepared.manifest_path), img_size=64, epochs=1,
        batch_size=32, augment="none", device="cpu", seed=3, name="before",
    )))  # fmt: skip
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["tl_selections"] = {
        "data": {"kind": "folder", "source": data, "label": "clothes"},
        "val_fraction": 0.2, "seed": 0, "model": "tf_efficientnet_lite0", "weights": "bundled",
        "freeze": {"preset": "features"}, "train": {"img_size": 64}, "run_id": None,
        "data_version": {"base": store.base_fingerprint, "number": fixed.number},
    }  # fmt: skip
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"Dataset version: **{fixed.name}:" in m.value for m in at.markdown)
    at.switch_page("pages/doctor.py").run()
    retrain = f"Retrain on {fixed.name} with the same settings"
    next(b for b in at.button if b.label == retrain).click().run()
    assert not at.exception, [e.value for e in at.exception]
    before_id, after_id = at.session_state["tl_doctor_compare"]
    after = Run.from_id(after_id)
    assert before_id == before.id and after.status()["state"] == "finished"
    assert after.record["data"]["version"]["number"] == fixed.number
    same = ("model", "img_size", "epochs", "lr", "seed", "batch_size", "augment", "freeze")
    assert all(getattr(after.config, k) == getattr(before.config, k) for k in same)
    labels = [m.label for m in at.metric]
    assert "Before (v0) validation accuracy" in labels
    assert f"After ({fixed.name}) validation accuracy" in labels
    assert len(at.get("plotly_chart")) >= 2  # a confusion matrix each
    table = at.dataframe[-1].value
    assert list(table["class"]) == ["longsleeve", "shorts"]
    assert {"recall before", "recall after"} <= set(table.columns)


def test_the_doctor_says_how_many_it_found_and_shows_the_rest_keeping_decisions(
    planted, monkeypatch
):
    """The page used to show 24 of 66 pairs with no word about the other 42."""

    from appkit import shown_more

    monkeypatch.setattr(shown_more, "PAGE", 1)  # one per press: planted holds several pairs
    at = doctor_page(planted, monkeypatch)
    next(b for b in at.button if b.label == "Check the photos").click().run()
    assert not at.exception, [e.value for e in at.exception]
    pairs = len(at.session_state["tl_doctor_report"][1].near_duplicates)
    assert pairs >= 2
    captions = [c.value for c in at.caption]
    assert f"1 of {pairs} near-duplicate pairs shown, the most suspicious first; the button " \
        "below the last one shows more." in captions  # fmt: skip
    keep = [r for r in at.radio if "Keep the left one" in r.options]
    assert len(keep) == 1
    keep[0].set_value("Keep the left one").run()
    label = f"Show 1 more of the {pairs - 1} near-duplicate pairs not shown yet"
    more = next(b for b in at.button if b.label == label)
    more.click().run()
    assert not at.exception, [e.value for e in at.exception]
    keep = [r for r in at.radio if "Keep the left one" in r.options]
    assert len(keep) == 2 and keep[0].value == "Keep the left one"  # the decision is kept
    assert any(b.label.startswith("Save 1 decision") for b in at.button)


def test_a_weak_suggestion_is_not_offered_as_a_relabel_and_says_it_is_unsure(planted, monkeypatch):
    """A clear lily-of-the-valley photo was offered "Relabel as iris" at 8 % vs 23 %."""

    import tlcore.results.doctor

    at = doctor_page(planted, monkeypatch)
    next(b for b in at.button if b.label == "Check the photos").click().run()
    issues = at.session_state["tl_doctor_report"][1].label_issues
    strong = [i for i in issues if i.suggested_probability >= 0.5]
    assert strong and all(i.in_words().startswith(("Likely", "Very likely")) for i in strong)
    assert sum(any(o.startswith("Relabel as") for o in r.options) for r in at.radio) == len(strong)
    # the same photos, with the bar for "sure" set above every suggestion: none is offered
    monkeypatch.setattr(tlcore.results.doctor, "ACCEPT_PROBABILITY", 1.01)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any(o.startswith("Relabel as") for r in at.radio for o in r.options)
    unsure = [c.value for c in at.caption if c.value.startswith("Unsure: a model that never saw")]
    assert len(unsure) == len(issues) and "hard photo rather than a wrong label" in unsure[0]
