"""A student's submission: checked in words, kept as a file, scored later by another process.

Every refusal names the run and what to do: a run that is not the student's (or does not
exist: the same words, so ids cannot be probed), one that has not finished, one that saw
the hidden test items (its manifest is checked against their content), one that breaks the
challenge's limits, and anything after the deadline or once the teacher closed it. An
accepted submission is written atomically as ``queued`` and handed to the scorer
(``tlcore.runs.challenge_scoring``): the page never holds a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.manifest import Manifest
from tlcore.data.text_source import text_key
from tlcore.errors import RunError
from tlcore.runs.challenge import Challenge, content_key, owner_key
from tlcore.runs.challenge_tasks import challenge_task
from tlcore.runs.files import now_iso, read_json, write_json_atomic
from tlcore.runs.run import Run, freeze_label

PENDING = ("queued", "scoring")
SCORER_MODULE = "tlcore.runs.challenge_scoring"
STARTUP_GRACE_S = 30.0  # a scorer started this recently is still importing: none more
_STARTED: list[subprocess.Popen] = []  # scorers this process started, reaped when waited on


def submit(challenge: Challenge, owner: str, run_id: str, *, now: datetime | None = None,
           start_scorer: bool = True) -> dict[str, Any]:  # fmt: skip
    """Enter ``owner``'s finished run ``run_id`` (an id, never a path); the submission kept.

    RunError in words for each refusal; nothing is written for a refused one."""
    reason = challenge.closed_reason(now)
    if reason:
        raise RunError(reason[0].upper() + reason[1:])
    key = owner_key(owner)
    name = challenge.name_of(owner)
    if not name:
        raise RunError("Pick a display name for the board before you submit.")
    run = _own_run(owner, run_id)
    _check_task(challenge, run)
    seen = hidden_items_seen(challenge, Manifest.load(run.manifest_path))
    if seen:
        raise RunError(
            f"Run {run.id} was trained on {seen} of the challenge's hidden test "
            f"{challenge.task.items} (they are in its training or validation data), so its "
            "test score would mean nothing. Train on the challenge's data (the button on the "
            "Home page) and submit that run."
        )
    status = run.status()
    if status.get("state") != "finished":
        raise RunError(
            f"Run {run.id} has not finished (it is {status.get('state')}, epoch "
            f"{status.get('epoch', 0)} of {status.get('epochs', '?')}): submit it once it has "
            "finished, or submit another finished run."
        )
    facts = run_facts(run)
    problems = challenge.limits.problems(run.record.get("config", {}), facts["training_minutes"])
    if problems:
        raise RunError(f"Run {run.id} breaks the challenge's limits: {'; '.join(problems)}.")
    for earlier in submissions(challenge, owner):
        if earlier.get("run_id") == run.id:
            raise RunError(f"Run {run.id} was already submitted ({earlier.get('submitted')}): "
                           "every run is scored once. Train another run to improve.")  # fmt: skip
    submission_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
    entry = {"id": submission_id, "owner": key, "name_at_submission": name, "run_id": run.id,
             "submitted": now_iso(), "submitted_unix": time.time(), "state": "queued", "message": "Waiting to be scored.",
             **facts}  # fmt: skip
    challenge.submissions_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(challenge.submissions_dir / f"{submission_id}.json", entry)
    if start_scorer:
        ensure_scorer(challenge)
    return entry


def _own_run(owner: str, run_id: str) -> Run:
    """The student's run by id; one that is missing or someone else's reads the same."""
    refusal = RunError(f"{str(run_id)[:80]!r} is not one of your runs: submit a finished run "
                       "that you trained (the Runs page lists yours).")  # fmt: skip
    try:
        run = Run.from_id(str(run_id))
        if (run.record.get("owner") or "") != (owner or ""):
            raise refusal
    except RunError:
        raise refusal from None
    return run


def _check_task(challenge: Challenge, run: Run) -> None:
    task = run.task
    challenge_task(task).check()
    if task != challenge.task:
        raise RunError(f"Run {run.id} learned {task.says}; this challenge is "
                       f"{challenge.task.says}: train on the challenge's data.")  # fmt: skip
    classes = run.record.get("data", {}).get("classes") or []
    if sorted(classes) != sorted(challenge.classes):
        raise RunError(f"Run {run.id} was trained on the classes {', '.join(classes)}; the "
                       f"challenge's are {', '.join(challenge.classes)}: train on the "
                       "challenge's data.")  # fmt: skip


def hidden_items_seen(challenge: Challenge, manifest: Manifest) -> int:
    """How many items of ``manifest`` (any split) are hidden test items, by content: a copy
    of a test photo under another name, or a test sentence, counts."""
    keys = challenge.test_keys()
    if challenge.task.is_text:
        hidden = set(keys.get("text") or ())
        return sum(text_key(item.text or "") in hidden for item in manifest.items)
    hidden, sizes = set(keys.get("sha256") or ()), set(keys.get("sizes") or ())
    inside = challenge.hidden_dir.resolve()
    seen = 0
    for item in manifest.items:
        path = Path(item.path)
        try:
            inside_hidden = path.resolve().is_relative_to(inside)
            seen += inside_hidden or (path.stat().st_size in sizes and content_key(path) in hidden)
        except OSError:
            continue  # a photo gone since: it cannot be one the scorer reads
    return seen


def run_facts(run: Run) -> dict[str, Any]:
    """The choices that matter for the lesson, and the run's validation score and time."""
    config = run.record.get("config", {})
    epochs = run.epochs()
    val = [e["val_acc"] for e in epochs if isinstance(e.get("val_acc"), int | float)]
    return {
        "backbone": config.get("model"),
        "freezing": freeze_label(config.get("freeze") or {}),
        "learning_rates": learning_rates(config),
        "epochs": config.get("epochs"),
        "augmentation": config.get("augment"),
        "img_size": config.get("img_size"),
        "training_minutes": round(training_seconds(epochs) / 60, 3),
        "val_accuracy": max(val) if val else None,
    }


def learning_rates(config: dict[str, Any]) -> str:
    """The base learning rate and how it changes down the layers, in a few words."""
    freeze = config.get("freeze") or {}
    said = f"{config.get('lr')}"
    if freeze.get("lr_mult"):
        said += " × " + "/".join(f"{float(m):g}" for m in freeze["lr_mult"])
    elif float(freeze.get("lr_decay") or 1.0) != 1.0:
        said += f", × {float(freeze['lr_decay']):g} per layer group down"
    return said


def training_seconds(epochs: list[dict[str, Any]]) -> float:
    """Time spent learning: every epoch, plus the fast path's one pass through the backbone
    and its head search (both kept in the epoch events); not the time spent waiting."""
    total = 0.0
    for event in epochs:
        total += _number(event.get("seconds"))
        total += _number((event.get("embedding") or {}).get("seconds"))
        total += _number((event.get("head") or {}).get("cv_seconds"))
    return total


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def submissions(challenge: Challenge, owner: str | None = None) -> list[dict[str, Any]]:
    """Every submission (``owner``'s only when given), oldest first."""
    folder = challenge.submissions_dir
    if not folder.is_dir():
        return []
    key = owner_key(owner) if owner is not None else None
    found = []
    for path in sorted(folder.glob("*.json")):
        entry = read_json(path)
        if entry and (key is None or entry.get("owner") == key):
            found.append(entry)
    return sorted(found, key=lambda e: float(e.get("submitted_unix") or 0.0))


# -- the scorer process ----------------------------------------------------------------------
def scorer_lock(challenge: Challenge) -> Any:
    """The open lock file a scorer holds while it works (one scorer per challenge)."""
    return open(challenge.dir / "scorer.lock", "a+")  # noqa: SIM115 - held by the caller


def scorer_busy(challenge: Challenge) -> bool:
    with scorer_lock(challenge) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def starting_path(challenge: Challenge) -> Path:
    """Written when a scorer is started, removed once it holds the lock: thirty submissions
    in the seconds a new scorer takes to start start one scorer, not thirty."""
    return challenge.dir / "scorer.starting"


def _starting(challenge: Challenge) -> bool:
    try:
        return time.time() - starting_path(challenge).stat().st_mtime < STARTUP_GRACE_S
    except OSError:
        return False


def ensure_scorer(challenge: Challenge) -> bool:
    """Start the scorer when submissions wait and none is working; True when started.

    A scorer that is working re-reads the folder before it stops, so a submission written
    while it held the lock is never left waiting."""
    if not scoring(challenge):
        return False
    if scorer_busy(challenge) or _starting(challenge):
        return False
    starting_path(challenge).write_text(str(time.time()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    with open(challenge.dir / "scorer.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", SCORER_MODULE, str(challenge.dir)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)  # fmt: skip
    _STARTED.append(proc)
    return True


def scoring(challenge: Challenge) -> bool:
    """Some submission still waits for its score."""
    return any(s.get("state") in PENDING for s in submissions(challenge))


def wait_scored(challenge: Challenge, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Block until no submission waits (tests, the benchmark); RunError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while scoring(challenge):
        if time.monotonic() > deadline:
            raise RunError(f"submissions of {challenge.id} still waiting after {timeout:.0f} s.")
        ensure_scorer(challenge)  # a scorer that died is started again
        time.sleep(0.2)
    for proc in _STARTED:
        with contextlib.suppress(OSError):
            proc.poll()
    return submissions(challenge)
