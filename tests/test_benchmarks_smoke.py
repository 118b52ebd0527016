"""The benchmark runner: finds every bench_*.py, runs the one named, reports rows by convention."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("fast", [False, True])
def test_the_gpu_benchmark_body_runs_on_the_cpu(fast, monkeypatch):
    """Its timing loop, with the CUDA decisions (bf16, channels_last) made for the CPU, on a
    tiny model: a lent GPU then measures instead of finding a typo."""
    import torch

    from benchmarks import bench_gpu
    from tlcore.training import devices

    monkeypatch.setattr(devices, "autocast_dtype", lambda device: torch.bfloat16)
    monkeypatch.setattr(devices, "uses_channels_last", lambda device: True)
    speed, peak = bench_gpu.images_per_s("test_efficientnet", fast=fast, compile_model=False,
                                         device=torch.device("cpu"), batch=4, steps=2, warmup=1)  # fmt: skip
    assert speed > 0 and peak is None
