"""The scorer: ``python -m tlcore.runs.challenge_scoring CHALLENGE_DIR``, outside the app.

It holds the challenge's ``scorer.lock`` while it scores each waiting submission once on the
hidden test part (the run's best checkpoint, its class order matched to the challenge's by
name), writes the result into the submission's file atomically, and stops when none waits.
Thirty students submitting at once start one scorer, which loads torch once; the pages
only read the files.
"""

from __future__ import annotations

import fcntl
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tlcore.errors import TLCoreError
from tlcore.runs.challenge import Challenge
from tlcore.runs.challenge_entry import (
    PENDING,
    scorer_lock,
    scoring,
    starting_path,
    submissions,
)
from tlcore.runs.files import read_json, write_json_atomic


def score_run(challenge: Challenge, run_id: str) -> dict[str, Any]:
    """Test accuracy and macro F1 of a run's best checkpoint on the hidden test part."""
    import torch

    from tlcore.results.evaluation import evaluate_probabilities
    from tlcore.results.tasks import results_task
    from tlcore.runs.run import Run
    from tlcore.runs.scoring import load_predictor

    run = Run.from_id(run_id)
    manifest = challenge.test_manifest()
    predictor = load_predictor(run, "best")
    order = [list(predictor.classes).index(name) for name in manifest.classes]
    inputs = [results_task(run.task).model_input(item) for item in manifest.items]
    probabilities = torch.cat([predictor.predict(inputs[start : start + 64])
                               for start in range(0, len(inputs), 64)])[:, order]  # fmt: skip
    report = evaluate_probabilities(probabilities, [i.label for i in manifest.items],
                                    manifest.classes, worst_k=0)  # fmt: skip
    return {"test_accuracy": report.accuracy, "test_macro_f1": report.macro_f1,
            "test_items": report.n_images}  # fmt: skip


def score_waiting(challenge: Challenge) -> int:
    """Score every waiting submission, oldest first; how many were scored."""
    done = 0
    for entry in submissions(challenge):
        if entry.get("state") not in PENDING:
            continue
        path = challenge.submissions_dir / f"{entry['id']}.json"
        write_json_atomic(path, {**entry, "state": "scoring", "message": "Scoring…"})
        try:
            result = score_run(challenge, str(entry["run_id"]))
        except TLCoreError as exc:
            update = {"state": "failed", "message": f"Could not be scored: {exc}"}
        except Exception as exc:  # noqa: BLE001 - every fault ends as a state the page shows
            traceback.print_exc()  # into scorer.log, for whoever looks after the server
            update = {"state": "failed",
                      "message": f"Could not be scored ({type(exc).__name__}): ask the teacher."}  # fmt: skip
        else:
            val = entry.get("val_accuracy")
            gap = val - result["test_accuracy"] if isinstance(val, int | float) else None
            update = {"state": "scored", "message": "Scored.", "scored": time.time(),
                      **result, "gap": gap}  # fmt: skip
        write_json_atomic(path, {**(read_json(path) or entry), **update})
        done += 1
    return done


def main(argv: list[str]) -> int:
    challenge = Challenge.load(Path(argv[0]))
    while True:
        with scorer_lock(challenge) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another scorer is at work; it reads the folder again before it stops
            finally:
                starting_path(challenge).unlink(missing_ok=True)  # started: a scorer holds it
            while score_waiting(challenge):
                pass
            fcntl.flock(lock, fcntl.LOCK_UN)
        # a submission written while the lock was held, after the last read: score it too
        if not scoring(challenge):
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
