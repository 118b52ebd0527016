"""The benchmark runner: finds every bench_*.py, runs the one named, reports rows by convention."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "fast", "baseline", "ratio", "target", "passed", "unit", "notes"}


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_runner_runs_a_named_benchmark_and_writes_its_rows(tmp_path):
    import torch

    out = tmp_path / "rows.json"
    result = bench("gpu", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "machine:" in result.stdout and "command:" in result.stdout
    rows = json.loads(out.read_text())
    assert rows and all(set(r) >= KEYS and r["benchmark"] == "gpu" for r in rows)
    if not torch.cuda.is_available():
        assert all(r["passed"] is None and "no CUDA" in r["notes"] for r in rows)
        assert "skipped: no CUDA device" in result.stdout


def test_runner_discovers_every_benchmark_and_rejects_unknown_names():
    from benchmarks.__main__ import discover

    names = discover()
    files = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert names == files and {"feature_extraction", "decoded_cache", "gpu"} <= set(names)
    result = bench("no_such_benchmark")
    assert result.returncode == 2 and "unknown benchmark" in result.stdout
