"""``tlcore ARGS`` answered in the test's own process, shaped like ``subprocess.run``'s answer.

A test file sends each kind of answer through a real process once (a stray warning at
import would show there) and its variations through here: the same parser and commands,
without two seconds of interpreter start each."""

from __future__ import annotations

import subprocess

from tlcore.cli import main


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # --help, and argparse's own refusals
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["tlcore", *map(str, args)], code, out, err)
