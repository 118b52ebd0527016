"""``tlcore train`` with the defaults, start to its final JSON, against one embedding pass.

The defaults (bundled Lite0, feature extraction, 224 px) embed every photo once and solve
the head in seconds; what comes after the last epoch (calibration, "none of these", the
Evaluate page's score) used to read the photos three more times. Measured in one run on
the clothing4 sample (220 photos), in a fresh runs folder (no embedding cache):

- fast: the ``tlcore train --json`` command, wall time from start to its final JSON;
- baseline: one embedding pass over the same photos (the product's loader and model,
  in this process, model already built) — the floor of any run that reads every photo;
- also: the seconds from the last epoch's event to "finished" (the after-training steps),
  and the fixed cost of a process that imports torch and builds the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks import row, say, timed

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(
    os.environ.get("TLCORE_BENCH_DATA") or ROOT / "assets" / "clothing4"
)  # or a folder of yours
TARGET = 1.3


def embedding_pass(manifest_path: Path) -> float:
    """Seconds of one pass of the default backbone over train + val, as the fast path runs it."""
    from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config
    from tlcore.data.loading import EpochLoaders
    from tlcore.data.manifest import Manifest
    from tlcore.models.factory import create_model
    from tlcore.training.config import TrainConfig
    from tlcore.training.features import embed

    config = TrainConfig(data=str(DATA))
    manifest = Manifest.load(manifest_path)
    model = create_model(config.model, len(manifest.classes), config.weights).eval()
    transform = build_transform(resolve_data_config(model, config.img_size), train=False)
    loaders = EpochLoaders(config.batch_size, torch.device("cpu"), config.num_workers)
    sets = [ManifestDataset(manifest, split, transform) for split in ("train", "val")]

    def one_pass() -> None:
        for dataset in sets:
            embed(model, loaders.get(dataset, decoded=False), torch.device("cpu"))

    return timed(one_pass)[0]


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TLCORE_RUNS_DIR": f"{tmp}/runs", "TLCORE_UPLOADS_DIR": f"{tmp}/up",
               "HF_HUB_OFFLINE": "1"}  # fmt: skip
        say(f"tlcore train --data {DATA.name} (defaults) in a fresh runs folder")
        seconds, out = timed(lambda: subprocess.run(
            [sys.executable, "-m", "tlcore", "train", "--data", str(DATA), "--json"],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=900))  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        run_dir = Path(result["run_dir"])
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        last_epoch = max(e["time"] for e in events if e.get("type") == "epoch")
        finished = json.loads((run_dir / "status.json").read_text())["heartbeat_unix"]
        after = finished - last_epoch
        say(f"train: {seconds:.1f} s to the final JSON, {after:.1f} s from the last epoch to "
            f"finished, val accuracy {result['best_val_accuracy']:.3f}")  # fmt: skip
        manifest = json.loads((run_dir / "config.json").read_text())["data"]["manifest_path"]
        startup, _ = timed(lambda: subprocess.run(
            [sys.executable, "-c", "from tlcore.models.factory import create_model; "
             "create_model('tf_efficientnet_lite0', 4, 'bundled')"], env=env, check=True))  # fmt: skip
        one_pass = embedding_pass(Path(manifest))
        say(f"one embedding pass: {one_pass:.1f} s; a process that imports torch and builds the "
            f"model: {startup:.1f} s")  # fmt: skip
    ratio = seconds / one_pass
    return [
        row("tlcore train (defaults) vs one embedding pass", seconds, one_pass, ratio,
            f"<= {TARGET}x", ratio <= TARGET, "s",
            f"{after:.1f} s after the last epoch; process start + model {startup:.1f} s"),
    ]  # fmt: skip
