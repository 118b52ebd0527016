"""The progress every wait shows: k of N, and a time left only once there is a pace to tell it."""

from __future__ import annotations

import io

from tlcore.data.progress import Progress, Steps, Tracker, terminal_bar


def test_time_left_is_unknown_until_a_unit_is_done_then_an_estimate():
    assert Progress("Reading photos", 0, 200, 3.0).text() == (
        "Reading photos: 0 of 200 · time left: unknown"
    )
    assert Progress("Reading photos", 50, 200, 10.0).text() == (
        "Reading photos: 50 of 200 · about 30 s left"
    )
    assert Progress("Reading photos", 200, 200, 40.0).text() == "Reading photos: 200 of 200"
    # steps of unlike length: a pace would lie, so the time left stays unknown
    step = Progress("Exporting ONNX · writing", 2, 3, 30.0, unit="steps", timed=False)
    assert step.eta_s is None and step.text().endswith("2 of 3 steps · time left: unknown")
    assert Progress.from_dict(step.to_dict()) == step and Progress.from_dict({"x": 1}) is None


def test_steps_name_each_part_and_a_counted_part_shows_its_own_count():
    seen: list[Progress] = []
    steps = Steps("Exporting bundle", 3, seen.append)
    steps.start("loading the model")
    steps.start("scoring the validation photos")
    tracker = Tracker("Scoring the val photos", 4, steps.part(), every_s=0)
    tracker.advance(4)
    steps.start("writing the files")
    steps.finish()
    texts = [p.text() for p in seen]
    assert texts[0] == "Exporting bundle · loading the model: 0 of 3 steps · time left: unknown"
    assert "Exporting bundle · Scoring the val photos: 4 of 4" in texts
    assert texts[-1] == "Exporting bundle: 3 of 3 steps"


def test_terminal_bar_off_a_tty_prints_the_count_and_the_end():
    out = io.StringIO()
    bar = terminal_bar(out, quiet_for_s=0)
    tracker = Tracker("Embedding photos", 3, bar, every_s=0)
    tracker.advance(3)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("Embedding photos: 0 of 3 · time left: unknown")
    assert lines[-1].endswith("Embedding photos: 3 of 3") and lines[-1].startswith("[" + "#" * 24)
    quiet = io.StringIO()  # a short step off a tty prints nothing: an error stays one line
    Tracker("Reading photos", 2, terminal_bar(quiet), every_s=0).advance(2)
    assert quiet.getvalue() == ""


def test_chunks_count_each_chunk_once_the_caller_is_done_with_it():
    """Scoring and calibration read photos through a model in chunks (Tracker.chunks):
    the count moves after each chunk, and ends at N of N."""
    heard: list[int] = []
    tracker = Tracker("Scoring", 150, lambda p: heard.append(p.done), every_s=0)
    seen = []
    for chunk in tracker.chunks(list(range(150)), size=64):
        seen.append((len(chunk), tracker.done))  # counted only after the caller's work
    assert seen == [(64, 0), (64, 64), (22, 128)]
    assert tracker.done == 150 and heard == [0, 64, 128, 150]
