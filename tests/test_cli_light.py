"""Commands that only read files answer without importing torch (two seconds of CPU each
time, more on a busy machine): help, the runs list and a dataset's report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
