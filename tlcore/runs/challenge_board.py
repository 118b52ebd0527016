"""The leaderboard: one best scored entry per student, ranked, and its CSV.

Read from the submission files on every call (a few dozen small JSON files), so a board
is never out of date and needs no lock. Students see names and choices, never run ids;
the teacher's rows add who submitted which run.
"""

from __future__ import annotations

from typing import Any

from tlcore.data.csv_safe import csv_text
from tlcore.runs.challenge import Challenge
from tlcore.runs.challenge_entry import submissions

BOARD_COLUMNS = ("rank", "name", "test_accuracy", "test_macro_f1", "backbone", "freezing", "learning_rates",
                 "epochs", "augmentation", "img_size", "training_minutes", "val_accuracy",
                 "gap", "submissions")  # fmt: skip
TEACHER_COLUMNS = (*BOARD_COLUMNS, "run_id", "submitted")


def _rank_key(entry: dict[str, Any]) -> tuple[float, float, float]:
    """Best test accuracy first, then macro F1, then whoever submitted it first."""
    return (-float(entry["test_accuracy"]), -float(entry.get("test_macro_f1") or 0.0),
            float(entry.get("submitted_unix") or 0.0))  # fmt: skip


def leaderboard(challenge: Challenge, teacher: bool = False) -> list[dict[str, Any]]:
    """Rows of the board, best first: each student's best scored entry, ranked by test
    accuracy then macro F1 (equal scores share a rank); ``teacher`` adds run ids."""
    every = submissions(challenge)
    scored = [s for s in every if s.get("state") == "scored"]
    best: dict[str, dict[str, Any]] = {}
    for entry in scored:
        owner = str(entry.get("owner"))
        if owner not in best or _rank_key(entry) < _rank_key(best[owner]):
            best[owner] = entry
    names = challenge.names()
    counts: dict[str, int] = {}
    for entry in every:
        counts[str(entry.get("owner"))] = counts.get(str(entry.get("owner")), 0) + 1
    rows, previous, rank = [], None, 0
    for position, entry in enumerate(sorted(best.values(), key=_rank_key), start=1):
        score = _rank_key(entry)[:2]
        rank = rank if score == previous else position
        previous = score
        owner = str(entry.get("owner"))
        row = {c: entry.get(c) for c in (TEACHER_COLUMNS if teacher else BOARD_COLUMNS)}
        row.update(rank=rank, name=names.get(owner) or entry.get("name_at_submission") or "?",
                   submissions=counts.get(owner, 0))  # fmt: skip
        rows.append(row)
    return rows


def board_csv(challenge: Challenge, teacher: bool = True) -> str:
    """The board as CSV (names are hostile text: spreadsheet formulas made text)."""
    columns = TEACHER_COLUMNS if teacher else BOARD_COLUMNS
    rows = leaderboard(challenge, teacher=teacher)
    return csv_text(columns, ([row.get(c) for c in columns] for row in rows))
