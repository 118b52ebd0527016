"""One real trained text run shared by the text tests (trained once per session).

48 real review sentences (24 per label) from the bundled reviews-amazon sample,
feature extraction with the bundled all-MiniLM-L6-v2 through the same Run and
worker process as photos, 32 word pieces per text, so it finishes in seconds.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from shared_across_workers import build_once

from tlcore import settings
from tlcore.runs.run import Run
from tlcore.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "assets" / "reviews-amazon" / "reviews.csv"
PER_LABEL = 24
_CACHE: dict[str, Path] = {}


def review_rows(per_label: int = PER_LABEL) -> list[tuple[str, str]]:
    """The first ``per_label`` sentences of each label in the sample, in file order."""
    with open(REVIEWS, encoding="utf-8", newline="") as fh:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(fh)]
    taken: dict[str, int] = {}
    out = []
    for text, label in rows:
        if taken.get(label, 0) < per_label:
            taken[label] = taken.get(label, 0) + 1
            out.append((text, label))
    return out


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def text_run_dir(base: Path | None = None) -> Path:
    """The run directory of a finished 2-epoch text feature-extraction run."""
    if "run" in _CACHE:
        return _CACHE["run"]
    if base is not None:  # one run for both pytest-xdist workers
        _CACHE["run"] = build_once("text-run", base, _train)
    else:
        _CACHE["run"] = _train(None)
    return _CACHE["run"]


def _train(base: Path | None) -> Path:
    root = Path(tempfile.mkdtemp(prefix="tl-text-run-", dir=base))
    data = write_csv(root / "reviews-48.csv", review_rows())
    with settings.environment(
        TLCORE_RUNS_DIR=str(root / "runs"), TLCORE_UPLOADS_DIR=str(root / "uploads")
    ):
        config = TrainConfig(data=str(data), model="all-MiniLM-L6-v2", epochs=2, augment="none",
                             max_tokens=32, device="cpu", name="text-tests")  # fmt: skip
        run = Run.start(config)
        status = run.wait(timeout=300)
    assert status["state"] == "finished", (status, run.log_path.read_text()[-2000:])
    return run.dir
