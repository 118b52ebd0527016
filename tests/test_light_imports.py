"""What only reads files answers without importing torch (two seconds of CPU each time, more
on a busy machine): the command's help, the runs list and a dataset's report, and the app's
Home page on a new server (a newcomer's first paint)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from tlcore.cli import main
answers = []
for args in json.loads(sys.argv[1]):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    answers.append(code)
print(json.dumps({"codes": answers, "torch": "torch" in sys.modules}), file=sys.stderr)
"""


def test_reading_commands_do_not_import_torch(sample_dir, tmp_path):
    if any(p.startswith("nvidia") for p in os.listdir("/dev")):
        return  # "auto" may mean a GPU there: asking torch is then right
    commands = [["--help"], ["runs", "--json"], ["inspect", str(sample_dir), "--json"]]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TLCORE_RUNS_DIR": str(tmp_path / "runs")},
    )  # fmt: skip
    answer = json.loads(done.stderr.strip().splitlines()[-1])
    assert answer["codes"] == [0, 0, 0], done.stderr[-2000:]
    assert answer["torch"] is False


HOME = """
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
print([str(e.value) for e in at.exception], "torch" in sys.modules, file=sys.stderr)
"""


def test_the_home_page_paints_without_importing_torch(tmp_path):
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    done = subprocess.run(
        [sys.executable, "-c", HOME, app], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TLCORE_RUNS_DIR": str(tmp_path / "runs")},
    )  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "[] False", done.stderr[-2000:]
