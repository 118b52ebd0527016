"""Hostile inputs: paths that climb out, zip bombs, pickles that run code, ids that are paths.

Each test builds the attack as a real file and checks two things: the user gets a
message, and nothing is read or written outside the folder it belongs in. Member-name
and size checks of the zip extractor itself are in tests/test_archive.py; here the
same attacks go through the app's upload path with the default limits.
"""

from __future__ import annotations

import ast
import io
import json
import os
import stat
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch
from apptest_helpers import go, open_app, texts
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from tlcore import settings
from tlcore.data import sources
from tlcore.data.prepare import prepare_data
from tlcore.errors import ArchiveError, DataError, RunError
from tlcore.runs.run import Run
from tlcore.training.checkpoints import checkpoint_paths, load_checkpoint

from .conftest import ROOT, class_folders, photo, quick_config


def jpeg_bytes(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "JPEG")
    return buf.getvalue()


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def upload_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    """A zip as a browser would hand it over: good class folders plus the given members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"ants/a{i}.jpg", jpeg_bytes((200, 30 + i, 30)))
            zf.writestr(f"bees/b{i}.jpg", jpeg_bytes((30, 30 + i, 200)))
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "../../../../etc/passwd")
    return path


@pytest.mark.parametrize(
    ("members", "symlink", "message"),
    [
        ({"../../escape.txt": b"pwned"}, None, "outside the folder"),
        ({"ants/../../../escape.txt": b"pwned"}, None, "outside the folder"),
        ({"/tmp/escape_tlcore.txt": b"pwned"}, None, "absolute path"),
        ({"C:/escape.txt": b"pwned"}, None, "absolute path"),
        ({"..\\..\\escape.txt": b"pwned"}, None, "backslashes"),
        ({}, "bees/escape.jpg", "symbolic link"),
        ({"ants/zeros.jpg": bytes(4 << 20)}, None, "zip bomb"),  # 4 MB of zeros: ~1000x
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "drive-letter", "backslash", "symlink", "bomb"],
)
def test_hostile_zip_uploads_are_refused_and_nothing_is_written(
    tmp_path, members, symlink, message
):
    work = tmp_path / "server"
    work.mkdir()
    zpath = upload_zip(work / "upload.zip", members, symlink)
    before = tree(tmp_path)
    with pytest.raises(ArchiveError, match=message):
        prepare_data(zpath)
    uploads = settings.uploads_dir()
    leftovers = [p for p in tree(tmp_path) if p not in before and not p.startswith("uploads")]
    assert leftovers == []
    assert not uploads.exists() or [p for p in tree(uploads) if "." in Path(p).name] == []
    assert not list(tmp_path.parent.glob("escape*")) and not Path("/tmp/escape_tlcore.txt").exists()


def test_a_class_named_dot_dot_never_becomes_a_path(tmp_path):
    image_set = sources.new_image_set()
    outside = image_set.parent
    for label in ("../../x", "..\\..\\x", "/etc/x"):
        saved, skipped = sources.add_class_images(
            image_set, label, [("../../evil.jpg", jpeg_bytes()), ("/etc/passwd.png", b"x")]
        )
        assert not skipped
        for path in saved:
            assert path.resolve().parent == (image_set / "x").resolve(), path
    assert sources.image_set_classes(image_set) == {"x": 6}
    assert sorted(p.name for p in outside.iterdir()) == [image_set.name]
    for label in ("..", " . ", "/"):
        with pytest.raises(DataError, match="class name"):
            sources.add_class_images(image_set, label, [("a.jpg", jpeg_bytes())])


@pytest.fixture()
def decoy(tmp_path) -> Path:
    """A run-like folder outside runs_dir() (where ../ from the runs folder lands)."""
    path = tmp_path / "decoy"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"id": "decoy", "config": {"epochs": 1}}))
    return path


def test_run_ids_from_a_url_never_become_paths(sample_dir, tmp_path, decoy):
    run = Run.create(quick_config(sample_dir))
    assert Run.from_id(run.id).dir == run.dir
    (settings.runs_dir() / "link").symlink_to(decoy)
    for bad in ("../decoy", str(decoy), "..", "link", "a/b", "", "x" * 300):
        with pytest.raises(RunError):
            Run.from_id(bad)
    at = open_app(run="../decoy")  # the URL a link could carry
    assert not at.exception
    assert at.session_state["tl_selections"]["run_id"] is None
    assert "decoy" not in texts(at.sidebar.markdown)


def test_folder_picker_cannot_leave_the_data_root(data_root, tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    class_folders(secret, {"wasps": 3})
    photo(secret / "private.jpg", seed=99)
    pets = class_folders(data_root / "pets", {"ants": 3, "bees": 3}, seed=1)
    (data_root / "link_out").symlink_to(secret)
    (data_root / "alias").symlink_to(pets)  # a link that stays inside is fine
    (pets / "wasps").symlink_to(secret / "wasps")
    (pets / "ants" / "stolen.jpg").symlink_to(secret / "private.jpg")

    for typed in ("..", "../secret", "pets/../../secret", str(secret), "link_out"):
        with pytest.raises(DataError, match="outside the allowed data folder"):
            sources.folder_under_data_root(typed)
    assert sources.folder_under_data_root("alias") == pets.resolve()
    listed = sources.folders_under_data_root()
    assert "pets" in listed and "alias" in listed
    assert not [f for f in listed if "link_out" in f or "wasps" in f]

    report = prepare_data(pets, manifest_path=tmp_path / "m.json").report
    assert report.classes == ["ants", "bees"]  # the linked class and image were not read
    warning = next(p for p in report.problems if p.code == "outside_link")
    assert sorted(warning.files) == ["ants/stolen.jpg", "wasps"]
    assert all(Path(img.path).resolve().is_relative_to(data_root) for img in report.images)

    monkeypatch.delenv("TLCORE_DATA_ROOT")  # the CLI on one's own folders follows links
    assert "wasps" in prepare_data(pets, manifest_path=tmp_path / "m2.json").report.classes


def test_the_data_page_refuses_links_and_dotdot_out_of_the_root(data_root, tmp_path):
    class_folders(tmp_path / "secret", {"ants": 3, "bees": 3})
    class_folders(data_root / "pets", {"ants": 3, "bees": 3}, seed=2)
    (data_root / "link_out").symlink_to(tmp_path / "secret")
    at = go(open_app(), "data")
    assert at.selectbox(key="root_folder").options == ["pets", "pets/ants", "pets/bees"]
    for typed in ("link_out", "../secret"):
        at.text_input(key="root_typed").input(typed).run()
        at.button(key="use_folder").click().run()
        assert not at.exception
        assert "outside the allowed data folder" in texts(at.error)
        assert at.session_state["tl_selections"]["data"] is None


class WritesMarker:
    """Unpickling this calls Path.touch(marker): code execution if ever loaded unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_in_a_run_folder_does_not_run(tmp_path):
    marker = tmp_path / "PWNED"
    model = nn.Linear(4, 2)
    weights_path, state_path = checkpoint_paths(tmp_path / "ckpt", "last")
    weights_path.parent.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights_path))
    torch.save({"step": 0, "payload": WritesMarker(marker)}, state_path)
    with pytest.raises(RunError, match="never runs code"):
        load_checkpoint(weights_path.parent, "last", model)
    assert not marker.exists()


def _torch_loads(path: Path) -> list[tuple[int, bool]]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        func = getattr(node, "func", None)
        if (
            isinstance(node, ast.Call)
            and isinstance(func, ast.Attribute)
            and func.attr == "load"
            and getattr(func.value, "id", "") == "torch"
        ):
            safe = any(
                k.arg == "weights_only" and getattr(k.value, "value", None) is True
                for k in node.keywords
            )
            calls.append((node.lineno, safe))
    return calls


def test_every_torch_load_in_the_product_is_weights_only():
    files = [ROOT / "app.py"]
    for folder in ("tlcore", "appkit", "pages"):
        files += sorted((ROOT / folder).rglob("*.py"))
    found = {f"{f.relative_to(ROOT)}:{line}": safe for f in files for line, safe in _torch_loads(f)}
    assert found, "expected torch.load calls (weights, checkpoints)"
    assert [where for where, safe in found.items() if not safe] == []


def test_uploads_are_capped_and_xsrf_protection_stays_on(monkeypatch):
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    server = tomllib.loads(text)["server"]
    assert 1 <= server["maxUploadSize"] <= 4096 and "MB" in text  # documented beside it
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    from streamlit import config

    monkeypatch.chdir(ROOT)  # what `streamlit run app.py` reads
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("server.maxUploadSize") == server["maxUploadSize"]
        assert config.get_option("server.enableXsrfProtection") is True
    finally:
        config.get_config_options(force_reparse=True)
    assert os.environ.get("STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION", "true") != "false"


HOSTILE_NAMES = [
    "<b>bold</b>",
    '<a href="http://evil.example">click</a>',
    "fish & chips",
    "x\x1b[31m",
]


def test_class_names_in_charts_show_as_typed_never_as_plotly_html():
    """Plotly reads <b>, <br> and <a href> in every label: a class name must not format a
    chart or put a link on it (found by uploading such a zip in Chromium)."""
    from appkit import charts, trust_view
    from tlcore.data.markdown import plot_text

    assert plot_text("<b>bold</b>") == "&lt;b&gt;bold&lt;/b&gt;"
    assert plot_text("fish & chips") == "fish &amp; chips"
    assert plot_text("x\x1b[31m") == "x\\x1b[31m"  # control characters spelled out
    counts = charts.class_counts({"train": dict.fromkeys(HOSTILE_NAMES, 3)})
    matrix = [[1] * len(HOSTILE_NAMES) for _ in HOSTILE_NAMES]
    heat = charts.confusion(HOSTILE_NAMES, matrix, "title")
    cells = trust_view._cell_chart(HOSTILE_NAMES, matrix)
    for labels in (
        counts.data[0].x,
        heat.data[0].x,
        heat.data[0].y,
        cells.data[0].x,
        cells.data[0].y,
    ):
        assert set(labels) == {plot_text(n) for n in HOSTILE_NAMES}
        assert not any("<" in str(label) or "\x1b" in str(label) for label in labels)
    # a click on the escaped chart still names the classes themselves
    point = {"x": plot_text(HOSTILE_NAMES[1]), "y": plot_text(HOSTILE_NAMES[0])}
    assert trust_view.clicked_cell([point], HOSTILE_NAMES) == (HOSTILE_NAMES[0], HOSTILE_NAMES[1])
    assert trust_view.clicked_cell([{"x": "<b>bold</b>", "y": "nope"}], HOSTILE_NAMES) is None
    assert trust_view.clicked_cell([], HOSTILE_NAMES) is None


def test_a_dataset_named_like_markdown_shows_as_typed_on_every_page(sample_dir):
    """The data's label holds the upload's own name ("Zip: <name>"): the sidebar, Few-shot
    and Compare pages wrote it into Markdown raw, so a zip named like a link became one."""
    from appkit.text import md

    label = "Zip: **[click](http://evil.example)** `x`.zip"
    runs_dir = settings.runs_dir()
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = {"kind": "folder", "source": str(sample_dir), "label": label}
    (runs_dir / "app-state.json").write_text(json.dumps({"data": data}))
    at = open_app()
    assert f"**Data:** {md(label)}" in texts(at.sidebar.markdown)
    for page in ("fewshot", "compare"):
        go(at, page)
        assert not at.exception, [e.value for e in at.exception]
        shown = texts(at.main.markdown)
        assert md(label) in shown and "](http://evil.example)" not in shown.replace("\\]", "")
