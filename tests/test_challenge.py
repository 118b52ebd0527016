"""Class mode: a challenge with a hidden test part, refusals in words, scoring and ranking in a
separate process, a board, and a demo link that opens one model's Predict page alone.

Two real 1-epoch runs at 64 px on the challenge's data (feature extraction and last-1),
trained once for the module; everything else reuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from apptest_helpers import go, open_app, texts
from streamlit.testing.v1 import AppTest

from tlcore import settings
from tlcore.cli import main as cli
from tlcore.data.manifest import Manifest, ManifestItem
from tlcore.data.prepare import prepare_data
from tlcore.data.task import PHOTO_BOXES, PHOTO_COLUMNS, TASKS
from tlcore.data.text_source import text_key
from tlcore.errors import ConfigError, RunError
from tlcore.runs.challenge import ChallengeLimits, open_challenge
from tlcore.runs.challenge_board import board_csv, leaderboard
from tlcore.runs.challenge_create import create_challenge
from tlcore.runs.challenge_entry import hidden_items_seen, submissions, submit, wait_scored
from tlcore.runs.challenge_tasks import CHALLENGE_TASKS
from tlcore.runs.demo_links import run_for_token, share_run
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

A, B, C = "student-a1", "student-b2", "student-c3"
TITLE = "Ants **[vs](http://x.example)** bees <b>!</b>"
HOSTILE_NAME = '=HYPERLINK("http://x","win")'
DEMO_APP = str(Path(__file__).resolve().parents[1] / "appkit" / "demo_app.py")


def small(data: Path, **changes) -> TrainConfig:
    values = dict(data=str(data), img_size=64, epochs=1, lr=3e-3, augment="none",
                  device="cpu", batch_size=16)  # fmt: skip
    return TrainConfig(**{**values, **changes})


def sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_dir):
    """A class server's folders: one challenge on the sample, A's and B's finished runs."""
    root = tmp_path_factory.mktemp("class")
    env = {"TLCORE_RUNS_DIR": str(root / "runs"), "TLCORE_UPLOADS_DIR": str(root / "uploads"),
           "TLCORE_MAX_CONCURRENT_RUNS": "2", "TLCORE_MULTI_USER": "1"}  # fmt: skip
    with settings.environment(**env):
        challenge = create_challenge(sample_dir, title=TITLE, description="Beat `0.9`!", seed=3)
        runs = {
            A: Run.start(small(challenge.data_path, owner=A)),
            B: Run.start(
                small(challenge.data_path, owner=B, lr=1e-3, freeze={"preset": "last-k", "k": 1})
            ),  # fmt: skip
        }
        for run in runs.values():
            assert run.wait(timeout=300)["state"] == "finished", run.log_path.read_text()[-2000:]
    return {"env": env, "challenge": challenge, "runs": runs}


@pytest.fixture
def on_server(server, monkeypatch):
    for key, value in server["env"].items():
        monkeypatch.setenv(key, value)
    return server


def test_the_hidden_test_part_never_reaches_what_students_train_on(on_server, sample_dir,
                                                                     tmp_path):  # fmt: skip
    challenge = open_challenge(on_server["challenge"].id)
    assert challenge.title == TITLE  # kept as typed; escaped where shown
    test = challenge.test_manifest()
    hidden = {sha(item.path) for item in test.items}
    assert all(n >= 1 for n in challenge.counts["test"].values())
    assert len(hidden) == sum(challenge.counts["test"].values())
    # what students can train on: the data folder, and a run's manifest of it
    public = {sha(p) for p in challenge.data_path.rglob("*") if p.is_file()}
    assert public and not public & hidden
    for run in on_server["runs"].values():
        used = {sha(item.path) for item in Manifest.load(run.manifest_path).items}
        assert (
            not used & hidden
            and hidden_items_seen(challenge, Manifest.load(run.manifest_path)) == 0
        )
    # the whole sample holds every test photo; a renamed copy is still one of them
    whole = prepare_data(sample_dir).manifest
    assert hidden_items_seen(challenge, whole) == len(hidden)
    copy = tmp_path / "ants" / "my-own-photo.jpg"
    copy.parent.mkdir()
    shutil.copyfile(test.items[0].path, copy)
    one = Manifest(str(tmp_path), ["ants", "bees"], [ManifestItem(str(copy), 0, "train")])
    assert hidden_items_seen(challenge, one) == 1
    # the split is seeded: the same seed holds back the same photos (another server's folder)
    with settings.environment(TLCORE_RUNS_DIR=str(tmp_path / "elsewhere")):
        again = create_challenge(sample_dir, title="again", seed=3)
        assert {sha(i.path) for i in again.test_manifest().items} == hidden
        # sentences: the test texts are not in the students' CSV
        reviews = create_challenge(settings.text_sample_path(), title="Reviews", test_fraction=0.1)
        kept = {text_key(i.text) for i in prepare_data(reviews.data_path).manifest.items}
        hidden_texts = {text_key(i.text) for i in reviews.test_manifest().items}
        assert hidden_texts and not kept & hidden_texts
    # every task has its entry; those a challenge cannot rank yet say which metric would
    assert set(CHALLENGE_TASKS) == set(TASKS)
    with pytest.raises(ConfigError, match=r"mAP@0\.5"):
        create_challenge(sample_dir, title="boxes", task=PHOTO_BOXES)
    with pytest.raises(ConfigError, match="mean macro F1 over its columns"):
        create_challenge(sample_dir, title="columns", task=PHOTO_COLUMNS)


def test_submissions_are_refused_in_words(on_server, sample_dir):
    challenge, runs = on_server["challenge"], on_server["runs"]
    before = len(submissions(challenge))
    with pytest.raises(RunError, match="Pick a display name"):
        submit(challenge, C, runs[A].id)
    challenge.set_name(A, HOSTILE_NAME)
    challenge.set_name(B, "Bea")
    challenge.set_name(C, "Cy")
    # another student's run, a run that does not exist and a path read the same
    for run_id in (runs[A].id, "20990101-000000-nothing", f"../runs/{runs[A].id}",
                   str(runs[A].dir)):  # fmt: skip
        with pytest.raises(RunError, match="is not one of your runs"):
            submit(challenge, B, run_id, start_scorer=False)
    trained_on_all = Run.create(small(sample_dir, owner=A))  # holds the test photos
    with pytest.raises(RunError, match=r"trained on \d+ of the challenge's hidden test photos"):
        submit(challenge, A, trained_on_all.id, start_scorer=False)
    waiting = Run.create(small(challenge.data_path, owner=A))
    with pytest.raises(RunError, match=r"has not finished \(it is queued"):
        submit(challenge, A, waiting.id, start_scorer=False)
    with pytest.raises(RunError, match="has not finished: share it as a demo once it has"):
        share_run(waiting)
    small_only = dataclasses.replace(challenge, limits=ChallengeLimits(img_size=32, epochs=1))
    with pytest.raises(RunError, match="image size 64 px is above the limit of 32 px"):
        submit(small_only, A, runs[A].id, start_scorer=False)
    with pytest.raises(RunError, match="is closed"):
        submit(dataclasses.replace(challenge, closed=True), A, runs[A].id, start_scorer=False)
    late = dataclasses.replace(challenge, deadline="2020-01-01T00:00+00:00")
    with pytest.raises(RunError, match="deadline .* has passed"):
        submit(late, A, runs[A].id, start_scorer=False)
    with pytest.raises(ConfigError, match="has already passed"):
        create_challenge(sample_dir, title="late", deadline="2020-01-01T00:00")
    assert len(submissions(challenge)) == before  # nothing refused was written


def test_the_scorer_ranks_each_students_best_entry_on_the_hidden_part(on_server, monkeypatch):
    import tlcore

    challenge, runs = on_server["challenge"], on_server["runs"]
    for owner in (A, B):
        challenge.set_name(owner, HOSTILE_NAME if owner == A else "Bea")
        submit(challenge, owner, runs[owner].id)
    with pytest.raises(RunError, match="already submitted"):
        submit(challenge, A, runs[A].id)
    scored = wait_scored(challenge, timeout=240)
    assert [s["state"] for s in scored] == ["scored", "scored"], [s["message"] for s in scored]
    test = challenge.test_manifest()
    for entry in scored:
        assert entry["test_items"] == len(test.items)
        assert entry["gap"] == pytest.approx(entry["val_accuracy"] - entry["test_accuracy"])
    for entry in scored[:1]:  # the score is the model's accuracy on exactly the hidden photos
        predictor = tlcore.load(runs[entry["owner"]].dir)
        guesses = predictor.predict([i.path for i in test.items]).argmax(dim=1).tolist()
        right = sum(predictor.classes[g] == test.classes[i.label]
                    for g, i in zip(guesses, test.items, strict=True))  # fmt: skip
        assert entry["test_accuracy"] == pytest.approx(right / len(test.items))
    board = leaderboard(challenge)
    assert len(board) == 2 and "run_id" not in board[0]
    accuracies = [row["test_accuracy"] for row in board]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {row["freezing"] for row in board} == {"features", "last-1"}
    scores = [(row["test_accuracy"], row["test_macro_f1"]) for row in board]
    assert [row["rank"] for row in board] == [1, 1 if scores[0] == scores[1] else 2]
    teacher = leaderboard(challenge, teacher=True)
    assert {row["run_id"] for row in teacher} == {runs[A].id, runs[B].id}
    table = pd.read_csv(io.StringIO(board_csv(challenge)))
    assert "'" + HOSTILE_NAME in table["name"].tolist()  # a formula in a name stays text

    # the pages: a student's board shows names as typed and no run ids; the teacher's a chart
    student = go(open_app(user=B), "challenge")
    shown = student.dataframe[-1].value  # the board comes last
    assert HOSTILE_NAME in shown["name"].tolist() and "run_id" not in shown.columns
    assert runs[A].id not in texts(student.markdown)
    monkeypatch.setenv("TLCORE_ADMIN_TOKEN", "class-secret")
    teacher = go(open_app(admin="class-secret"), "challenge")
    assert teacher.get("plotly_chart") and teacher.get("download_button")


def test_demo_link_opens_only_predict_and_students_see_only_their_runs(on_server):
    runs = on_server["runs"]
    token = share_run(runs[A])
    assert run_for_token(token).id == runs[A].id and share_run(runs[A]) == token
    with pytest.raises(RunError, match="not valid"):
        run_for_token("x" * 40)
    files = sorted(p.name for p in settings.runs_dir().rglob("*"))
    demo = open_app(demo=token)
    assert sorted(p.name for p in settings.runs_dir().rglob("*")) == files  # it wrote nothing
    assert not demo.exception, [e.value for e in demo.exception]
    assert [t.value for t in demo.title] == ["Try the model"]
    assert not demo.sidebar.markdown and not demo.selectbox  # no wizard, no runs to pick
    assert "ants" in texts(demo.expander[-1].markdown)  # the model card
    wrong = open_app(demo="y" * 40)
    assert "not valid" in texts(wrong.error) and not wrong.title

    # B, with A's run id in the URL: the Predict page offers B's run only
    student = open_app(user=B, run=runs[A].id)
    go(student, "predict")
    assert student.selectbox(key="predict_run").options == [runs[B].id]
    student.button(key="demo_share").click().run()  # "Share as demo" on B's own run
    link = texts(student.code)
    assert "?demo=" in link and runs[B].id not in link
    assert run_for_token(link.rsplit("?demo=", 1)[1].strip()).id == runs[B].id


def test_tlcore_demo_serves_a_run_read_only(on_server, monkeypatch, capsys):
    run = on_server["runs"][B]
    assert cli(["demo", run.id, "--check", "--port", "8600"]) == 0
    out = capsys.readouterr().out
    assert "streamlit run" in out and "demo_app.py" in out and "--server.port 8600" in out
    assert cli(["demo", "no-such-run", "--check"]) == 2
    assert "no training run found" in capsys.readouterr().err
    monkeypatch.setenv("TLCORE_DEMO_SOURCE", str(run.dir))
    app = AppTest.from_file(DEMO_APP, default_timeout=120).run()
    assert not app.exception, [e.value for e in app.exception]
    assert [t.value for t in app.title] == ["Try the model"] and not app.sidebar.markdown
