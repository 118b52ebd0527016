"""``tlcore predict --csv OUT``, for photos and texts alike: where a CSV may go, and writing it.

A CSV of predictions never replaces an input (``predict RUN victim.png --csv
victim.png`` once replaced the photo, and the text form the labelled source CSV),
nor a file tlcore did not write: an existing ``OUT`` is replaced only when its header
row says it is a predictions CSV of ``tlcore predict``. Checked before the work, then
written whole and renamed, so a half-written CSV is never left behind. Every cell goes
through ``tlcore.data.csv_safe`` (the writers in ``tlcore.results``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from tlcore.errors import ConfigError


def check_csv_target(out: Path, inputs: Sequence[str | Path] = ()) -> None:
    """--csv must name a file in a folder that exists (or can be made) and can be written,
    never one of ``inputs``, and replaces only a CSV of predictions tlcore wrote."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot write --csv {out}: {exc.strerror or exc} ({exc.filename or out.parent})."
        ) from None
    if out.is_dir():
        raise ConfigError(f"cannot write --csv {out}: it is a folder; give a file name.")
    if not os.access(out.parent, os.W_OK):
        raise ConfigError(f"cannot write --csv {out}: the folder {out.parent} is not writable.")
    if not (out.exists() or out.is_symlink()):
        return
    if is_one_of(out, inputs):
        raise ConfigError(
            f"cannot write --csv {out}: it is one of the files to predict, and tlcore never "
            "writes over an input: choose another file name."
        )
    if not written_by_tlcore(out):
        raise ConfigError(
            f"cannot write --csv {out}: the file exists and is not a CSV of predictions "
            "tlcore wrote, so it is not replaced: choose another file name."
        )


def is_one_of(out: Path, inputs: Sequence[str | Path]) -> bool:
    """Whether ``out`` is (through any link) the same file as one of ``inputs``."""
    try:
        target = out.stat()
    except OSError:
        return False
    for path in inputs:
        try:
            found = os.stat(path)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def written_by_tlcore(path: Path) -> bool:
    """A predictions CSV of ``tlcore predict`` (photos or texts), told by its header row."""
    from tlcore.data.csv_safe import has_header
    from tlcore.export.box_csv import BOX_CSV_COLUMNS
    from tlcore.results.predict import CSV_COLUMNS
    from tlcore.results.text_predict import TEXT_CSV_COLUMNS

    headers = (CSV_COLUMNS, TEXT_CSV_COLUMNS, BOX_CSV_COLUMNS)
    return not path.is_symlink() and has_header(path, headers)


def write_csv_text(text: str, out: Path) -> None:
    """``text`` (a whole CSV) to ``out``: written to a temporary name, then renamed."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write --csv {out}: {exc.strerror or exc}.") from None
