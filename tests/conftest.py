"""Shared fixtures: real images, the bundled sample, temporary run/upload folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tlcore import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One math thread per process: `make test` runs two pytest workers on two cores, and each
# starts run workers, CLIs and a Streamlit server. Two OpenMP threads per process on a busy
# core spin at their barriers: a Lite0 forward pass measured 15x slower that way. Set before
# torch is imported here or in any subprocess (they inherit it); a user's value wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled ants/bees dataset (train/ + val/ with real photos)."""
    path = settings.sample_data_dir()
    assert (path / "train" / "ants").is_dir(), path
    return path


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Each test writes runs and uploads under its own tmp folder."""
    monkeypatch.setenv("TLCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TLCORE_UPLOADS_DIR", str(tmp_path / "uploads"))
    yield


def pytest_collection_modifyitems(session, config, items):
    """The browser files first: they are the longest (minutes), and a long file that starts
    last keeps one worker busy while the other has nothing left (``--dist loadfile`` hands
    out whole files in this order). The sort is stable: each file's tests keep together."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is None)


def pytest_sessionfinish(session, exitstatus):
    """A run that executed no test fails (all skipped or none collected)."""
    if hasattr(session.config, "workerinput"):  # a pytest-xdist worker: the controller counts
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    ran = len(reporter.stats.get("passed", [])) + len(reporter.stats.get("failed", []))
    if ran == 0:
        reporter.write_line("error: no test was executed", red=True)
        session.exitstatus = 5
