"""Every CSV tlcore writes: cells that a spreadsheet would run as a formula are made text.

A prediction CSV holds names a user (or an attacker) chose: a photo called
``=HYPERLINK("http://x","click").png``, a class called ``+cmd|' /C calc'!A0``, a
review that starts with ``@SUM(A1)``. Excel, LibreOffice and Google Sheets read a
cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or carriage
return before one) as a formula. As OWASP's "CSV Injection" page advises, such a cell
is written with a leading ``'``, which the spreadsheet shows as text and does not
run; numbers tlcore itself formats (``-0.5``) are left as they are. Every writer of
a CSV goes through ``write_rows`` / ``csv_text``, so none can forget it.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a leading ``'`` when it would
    start a formula (a plain number such as ``-0.25`` stays a number)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_rows(out: Any, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``header`` then ``rows`` to the text stream ``out``, every cell through ``safe_cell``."""
    writer = csv.writer(out)
    writer.writerow([safe_cell(c) for c in header])
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])


def write_data_rows(out: Any, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A data file tlcore reads back to train on (a challenge's sentences), cells exactly as
    given: a leading ``'`` would change the data. Not for a file made to be opened in a
    spreadsheet; those go through ``write_rows``."""
    writer = csv.writer(out)
    writer.writerow(list(header))
    writer.writerows([list(row) for row in rows])


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The CSV as one string (for a download button or a file written atomically)."""
    buffer = io.StringIO()
    write_rows(buffer, header, rows)
    return buffer.getvalue()


def has_header(path: str | Path, headers: Iterable[Sequence[str]]) -> bool:
    """Whether the regular file ``path`` starts with one of ``headers`` as its first row: how
    a CSV tlcore wrote is told from a user's file before ``--csv`` replaces it."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(Path(path), "rb") as fh:
            first = fh.read(4096).split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(first == ",".join(h) for h in headers)
