"""Creating a challenge: the teacher's dataset split once into what students train on and a
hidden test part (``tlcore.runs.challenge`` describes the folder).

The split is seeded and stratified per class over distinct contents: copies of one photo
(or one sentence) count once and land on the same side, so no copy of a test photo is
left in the training part. Photos are copied under their content hash (a file name a
student could recognise never travels); the folder is built beside the others and renamed
into place whole.
"""

from __future__ import annotations

import random
import re
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tlcore.data.manifest import Manifest, ManifestItem
from tlcore.data.scan import printable
from tlcore.data.task import PHOTO_LABEL, Task
from tlcore.errors import ConfigError, DataError, RunError
from tlcore.runs.challenge import (
    MAX_DESCRIPTION,
    MAX_TITLE,
    Challenge,
    ChallengeLimits,
    challenges_dir,
    parse_deadline,
)
from tlcore.runs.challenge_tasks import challenge_task
from tlcore.runs.files import now_iso, write_json_atomic

MIN_PER_CLASS = 3  # a class needs an item for each of train, validation and test


def create_challenge(
    source: str | Path,
    *,
    title: str,
    description: str = "",
    test_fraction: float = 0.2,
    seed: int = 0,
    limits: ChallengeLimits | None = None,
    deadline: str | datetime | None = None,
    task: Task | None = None,
) -> Challenge:
    """Turn a dataset (a folder of class folders, a zip, a text,label CSV) into a challenge.

    ``task`` is the chosen data's task when it is not one label per item (a table of label
    columns, photos with boxes): the challenge table says which metric would rank it, or
    refuses in words. The test part never reaches ``data/``.
    """
    title, description = _text(title, "title", MAX_TITLE), _text(description, "", MAX_DESCRIPTION)
    if not title:
        raise ConfigError("give the challenge a title.")
    if not 0.05 <= float(test_fraction) <= 0.5:
        raise ConfigError(f"the test part must be between 5% and 50% of the data, got "
                          f"{float(test_fraction):.0%}.")  # fmt: skip
    when = _deadline_text(deadline)
    if task is not None:
        challenge_task(task).check()  # a task no challenge can rank yet: refused in words
    items, classes, modality = _labelled_items(source)
    task = Task(modality, "label")
    challenge_task(task).check()
    test_keys = _test_split(items, classes, float(test_fraction), int(seed))
    root = challenges_dir()
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:30].strip("-") or "challenge"
    challenge_id = f"{slug}-{secrets.token_hex(3)}"
    building = root / f".new-{challenge_id}"
    try:
        building.mkdir(parents=True)
        counts = _write_parts(building, items, classes, test_keys, modality)
        challenge = Challenge(
            dir=root / challenge_id, id=challenge_id, title=title, description=description,
            task=task, classes=classes, counts=counts, limits=limits or ChallengeLimits(),
            deadline=when, created=now_iso(), seed=int(seed), test_fraction=float(test_fraction),
        )  # fmt: skip
        write_json_atomic(building / "challenge.json", challenge.to_dict())
        building.rename(challenge.dir)  # whole or not at all
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        raise RunError(f"cannot write the challenge under {root}: {exc.strerror or exc}.") from None
    return challenge


@dataclass
class _Item:
    path: str
    class_name: str
    key: str  # sha256 of a photo's bytes, or the normalised text's key
    text: str | None = None


def _labelled_items(source: str | Path) -> tuple[list[_Item], list[str], str]:
    """Every usable labelled item of the source, whatever split folders it came in."""
    from tlcore.data.prepare import unpack_upload, validate_folder
    from tlcore.data.text_source import build_text_report, is_text_source

    source = Path(source).expanduser()
    if not source.exists():
        raise DataError(f"{source} does not exist; give a folder of class folders or a .zip.")
    if is_text_source(source):
        report = build_text_report(source)
        if not report.trainable:
            raise DataError(f"cannot make a challenge of {source.name}: {report.reason}")
        items = [_Item(e.path, e.class_name, e.key, e.text) for e in report.examples]
        return items, list(report.classes), "text"
    if source.is_file():
        source = unpack_upload(source)
    _, photos = validate_folder(source)
    if not photos.trainable:
        raise DataError(f"cannot make a challenge of {source.name}: {photos.reason}")
    items = [_Item(i.path, i.class_name, i.sha256) for i in photos.images]
    return items, list(photos.classes), PHOTO_LABEL.modality


def _test_split(items: Sequence[_Item], classes: Sequence[str], fraction: float,
                seed: int) -> set[str]:  # fmt: skip
    """The content keys of the test part: per class a seeded share of its distinct items
    (copies of one photo count once and go together), leaving two for train and val."""
    chosen: set[str] = set()
    for name in classes:
        keys = sorted({i.key for i in items if i.class_name == name})
        if len(keys) < MIN_PER_CLASS:
            raise DataError(
                f"class {name!r} has {len(keys)} different item(s); a challenge needs at least "
                f"{MIN_PER_CLASS} per class (training, validation and the hidden test)."
            )
        random.Random(f"{seed}:challenge:{name}").shuffle(keys)
        n_test = min(max(round(len(keys) * fraction), 1), len(keys) - 2)
        chosen.update(keys[:n_test])
    return chosen


def _write_parts(folder: Path, items: Sequence[_Item], classes: list[str], test_keys: set[str],
                 modality: str) -> dict[str, dict[str, int]]:  # fmt: skip
    """``data/`` for students and ``hidden/`` for the scorer; the counts of both."""
    public = [i for i in items if i.key not in test_keys]
    test = _unique([i for i in items if i.key in test_keys])
    hidden = folder / "hidden"
    label_of = {name: n for n, name in enumerate(classes)}
    if modality == "text":
        (folder / "data").mkdir()
        _write_text_csv(folder / "data" / "train.csv", public)
        test_items = [ManifestItem(i.path, label_of[i.class_name], "test", i.text) for i in test]
        keys: dict[str, Any] = {"text": sorted(test_keys)}
    else:
        for item in public:
            _copy(Path(item.path), folder / "data" / item.class_name, item.key)
        test_items = [
            ManifestItem(str(_copy(Path(i.path), hidden / "test" / i.class_name, i.key)
                             .relative_to(hidden)), label_of[i.class_name], "test")
            for i in test
        ]  # fmt: skip
        sizes = sorted({Path(i.path).stat().st_size for i in test})
        keys = {"sha256": sorted(test_keys), "sizes": sizes}
    Manifest("test", classes, test_items, split_source="challenge", modality=modality).save(
        hidden / "test.json"
    )
    write_json_atomic(hidden / "keys.json", keys)
    return {"data": _count(public, classes), "test": _count(test, classes)}


def _copy(source: Path, folder: Path, key: str) -> Path:
    """One photo copied under its content hash (a file name a student chose never travels)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{key[:20]}{source.suffix.lower()}"
    if not target.exists():
        shutil.copyfile(source, target)
    return target


def _write_text_csv(path: Path, items: Iterable[_Item]) -> None:
    """The students' texts as a text,label CSV that tlcore's own reader reads back exactly
    (a data file, not a spreadsheet export: a leading ``'`` would change the sentences)."""
    from tlcore.data.csv_safe import write_data_rows

    with open(path, "w", encoding="utf-8", newline="") as handle:
        write_data_rows(handle, ["text", "label"], ([i.text, i.class_name] for i in items))


def _unique(items: Iterable[_Item]) -> list[_Item]:
    seen: set[str] = set()
    return [i for i in items if not (i.key in seen or seen.add(i.key))]  # type: ignore[func-returns-value]


def _count(items: Iterable[_Item], classes: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(classes, 0)
    for item in items:
        counts[item.class_name] += 1
    return counts


def _text(value: str, what: str, limit: int) -> str:
    clean = printable(str(value or "")).strip()
    if len(clean) > limit:
        raise ConfigError(f"the challenge's {what or 'description'} has at most {limit} "
                          f"characters; it has {len(clean)}.")  # fmt: skip
    return clean


def _deadline_text(deadline: str | datetime | None) -> str | None:
    if deadline is None or deadline == "":
        return None
    when = deadline if isinstance(deadline, datetime) else parse_deadline(deadline)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise ConfigError(f"the deadline {when.isoformat(timespec='minutes')} has already "
                          "passed: choose a later one.")  # fmt: skip
    return when.astimezone(UTC).isoformat(timespec="minutes")
