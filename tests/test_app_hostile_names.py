"""A file named like Markdown shows as typed on the Few-shot, Predict, Evaluate and Network pages.

A browser's file name (an upload, a photo in an uploaded zip) is the user's: named
``[click](https://evil.example) **bold** <b>html</b>.jpg``, it reached ``st.markdown``,
``st.caption`` and ``st.error`` raw on these four pages, where it became a link, bold text
or HTML. Each test drives the page with AppTest on real photos and a real trained run and
checks the Markdown the page wrote: the name is there escaped (``appkit.text.md``), and no
link, bold or tag survives once the escaped characters are taken out.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from apptest_helpers import APP, go, open_app, texts
from streamlit.testing.v1 import AppTest
from trained_run_fixture import trained_run_dir

from appkit.text import md
from tlcore.data.manifest import Manifest
from tlcore.runs.checkpoint_model import evaluation_path
from tlcore.runs.run import Run

HOSTILE = "[click](https://evil.example) **bold** <b>html</b>"
# a name a file on disk can have (no "/"), with the same three tricks
ON_DISK = "[click](evil.example) **bold** <b>html<b>"
ZIP = "application/zip"


def shows_literally(shown: str, name: str) -> None:
    """``name`` is in the page's Markdown escaped, and nothing of it formats."""
    assert md(name) in shown, shown
    bare = re.sub(r"\\.", "", shown)  # what is left when every escaped character is removed
    for formatting in ("](", "**bold**", "<b>"):
        assert formatting not in bare, (formatting, shown)


@pytest.fixture(scope="module")
def run(sample_dir, tmp_path_factory) -> Run:
    return Run.open(trained_run_dir(sample_dir, tmp_path_factory.getbasetemp()))


@pytest.fixture
def photo(run) -> bytes:
    """A real validation photo's bytes."""
    return Path(Manifest.load(run.manifest_path).items_for("val")[0].path).read_bytes()


def test_fewshot_page_shows_an_uploaded_photo_name_as_typed(photo):
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.button(key="try_sample").click().run()
    go(at, "fewshot")
    at.selectbox(key="fewshot_size").set_value(96)
    at.file_uploader(key="fewshot_uploads").set_value((f"{HOSTILE}.jpg", photo, "image/jpeg"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)
    shows_literally(texts(at.markdown), f"{HOSTILE}.jpg")


def test_predict_page_shows_uploaded_photo_and_zip_names_as_typed(run, photo, monkeypatch):
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(run.dir.parent))
    at = go(open_app(), "predict")
    at.file_uploader(key="predict_uploads").set_value((f"{HOSTILE}.jpg", photo, "image/jpeg"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shows_literally(texts(at.markdown), f"{HOSTILE}.jpg")  # the photo's headline
    # a zip that is no zip: its name is said in the error
    at.file_uploader(key="predict_zip").set_value((f"{HOSTILE}.zip", b"not a zip", ZIP)).run()
    at.button(key="predict_zip_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shows_literally(texts(at.error), f"{HOSTILE}.zip")
    # a real zip with a photo and a broken file named like Markdown: its row's error
    archive = BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.jpg", photo)
        zf.writestr(f"{ON_DISK}.jpg", b"not a photo")
    at.file_uploader(key="predict_zip").set_value(("photos.zip", archive.getvalue(), ZIP)).run()
    at.button(key="predict_zip_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "1 photos predicted" in texts(at.success)
    shows_literally(texts(at.error), f"photos.zip/{ON_DISK}.jpg")


def test_evaluate_page_names_a_vanished_photo_as_typed(run, tmp_path, monkeypatch):
    """The hardest photo, named like Markdown, was deleted after scoring: Grad-CAM says it
    cannot read it, and names it as typed."""
    runs = tmp_path / "runs"
    copy = Run.open(shutil.copytree(run.dir, runs / run.dir.name))
    assert copy.dir.name == run.dir.name
    kept = json.loads(evaluation_path(copy, "best").read_text())
    gone = tmp_path / "deleted" / f"{ON_DISK}.jpg"
    kept["report"]["worst"][0]["path"] = str(gone)
    evaluation_path(copy, "best").write_text(json.dumps(kept))
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(runs))
    at = go(open_app(), "evaluate")
    assert not at.exception, [e.value for e in at.exception]
    assert "Cannot read" in texts(at.error)
    shows_literally(texts(at.error), str(gone))


def test_network_page_shows_an_uploaded_photo_name_as_typed(photo):
    at = go(open_app(), "network")
    at.file_uploader(key="net_upload").set_value((f"{HOSTILE}.jpg", photo, "image/jpeg"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)
    shows_literally(texts(at.caption), f"{HOSTILE}.jpg")
