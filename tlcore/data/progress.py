"""Progress of the steps people wait on (reading photos, embedding, exporting): k of N and
time left, for any view.

tlcore never draws a bar itself: a long step takes an optional ``progress``
callable and calls it with a ``Progress`` now and then; the command line turns
that into a terminal bar (``terminal_bar``), a page into ``st.progress``. The
time left is an estimate from the pace so far and says so; before a unit is done,
or when the units differ in length (the steps of an export), it says "time left:
unknown" rather than guess.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TextIO, TypeVar


@dataclass(frozen=True)
class Progress:
    """Where a step stands: ``done`` of ``total`` units (photos, files), seconds so far."""

    task: str  # what is happening, in words: "Reading photos"
    done: int
    total: int
    elapsed_s: float
    unit: str = ""  # "steps": said after the count ("2 of 4 steps")
    timed: bool = True  # False when units differ in length: no pace can tell the time left

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far; None before any unit is done (no pace yet)."""
        if not self.timed or self.done <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, (self.total - self.done) * self.elapsed_s / self.done)

    def text(self) -> str:
        """ "Reading photos: 1,200 of 5,000 · about 12 s left", or "· time left: unknown"."""
        words = f"{self.task}: {self.done:,} of {self.total:,}" + (
            f" {self.unit}" * bool(self.unit)
        )
        if self.done < self.total:
            eta = self.eta_s
            words += (
                " · time left: unknown" if eta is None else f" · about {format_seconds(eta)} left"
            )
        return words

    def to_dict(self) -> dict:
        """For a status file another process reads (an export job's progress)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Progress | None:
        """Back from ``to_dict``; None for a missing or unreadable record."""
        try:
            return cls(**data) if data else None
        except TypeError:
            return None


ProgressCallback = Callable[[Progress], None]
T = TypeVar("T")
CHUNK = 64  # photos per call to a model while a count is shown (Tracker.chunks)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class Tracker:
    """Counts units and calls ``callback`` at most every ``every_s`` seconds (and at the end)."""

    def __init__(
        self, task: str, total: int, callback: ProgressCallback | None, every_s: float = 0.25
    ) -> None:
        self.task, self.total, self.callback, self.every_s = task, total, callback, every_s
        self.done = 0
        self.started = time.monotonic()
        self.last = -every_s
        self.tell(force=True)

    def advance(self, units: int = 1) -> None:
        self.done += units
        self.tell(force=self.done >= self.total)

    def chunks(self, items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
        """``items`` ``size`` at a time, each counted once the caller asks for the next:
        a long list read by a model in chunks moves the count as it goes."""
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            yield chunk
            self.advance(len(chunk))

    def tell(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.callback is None or (not force and now - self.last < self.every_s):
            return
        self.last = now
        self.callback(Progress(self.task, self.done, self.total, now - self.started))


class Steps:
    """A wait made of unlike parts (an export): "2 of 4 steps" with the part's name, and no
    time left, since one part can take a hundred times another. A part that counts photos
    reports through ``part()``: its own count and time left, named after the whole."""

    def __init__(self, task: str, total: int, callback: ProgressCallback | None) -> None:
        self.task, self.total, self.callback = task, total, callback
        self.done = 0
        self.started = time.monotonic()

    def start(self, name: str) -> None:
        """The next part begins (the bar shows the parts finished before it)."""
        self.done = min(self.done + 1, self.total)
        self._tell(f"{self.task} · {name}", self.done - 1)

    def finish(self) -> None:
        self.done = self.total
        self._tell(self.task, self.total)

    def part(self) -> ProgressCallback | None:
        """A callback for the current part's own count ("Scoring photos: 40 of 113")."""
        if self.callback is None:
            return None
        callback = self.callback

        def tell(progress: Progress) -> None:
            callback(replace(progress, task=f"{self.task} · {progress.task}"))

        return tell

    def _tell(self, task: str, done: int) -> None:
        if self.callback is not None:
            elapsed = time.monotonic() - self.started
            self.callback(Progress(task, done, self.total, elapsed, unit="steps", timed=False))


def terminal_bar(stream: TextIO | None = None, quiet_for_s: float = 1.0) -> ProgressCallback:
    """A callback drawing one self-overwriting line on stderr (plain lines when not a tty).

    Not on a tty (a log file, a script reading stderr), a step shorter than ``quiet_for_s``
    prints nothing, so an error stays the one line there; a longer one prints a line once
    it has taken that long, and one at its end.
    """
    out = stream or sys.stderr
    tty = out.isatty()
    started = time.monotonic()
    shown = False

    def show(progress: Progress) -> None:
        nonlocal shown
        width = 24
        filled = int(progress.fraction * width)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {progress.text()}"
        finished = progress.done >= progress.total
        if tty:
            end = "\n" if finished else ""
            out.write(f"\r\x1b[K{line}{end}")
        elif time.monotonic() - started >= quiet_for_s and (finished or not shown):
            out.write(line + "\n")
            shown = True
        out.flush()

    return show
