"""Run folders and bundles written by earlier versions (``tests/data/before-*``), made usable
from this checkout: their manifests name the photos where that version's checkout lay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_old_run(source: Path, runs: Path, run_id: str, old_root: str) -> Path:
    """A copy of ``source`` as ``runs/run_id``, its manifest pointed at this checkout's assets."""
    run = shutil.copytree(source, runs / run_id)
    manifest = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(manifest.replace(old_root, f"{ROOT}/assets/"))
    return run


def expected(folder: Path) -> dict:
    """What that version predicted (``expected.json``), with the photos' paths made absolute."""
    data = json.loads((folder / "expected.json").read_text())
    data["photos"] = [str(ROOT / p) for p in data["photos"]]
    return data
