"""Distributed training: N torchrun processes (DDP) vs one process, same global batch.

Runs the real engine (``Run.start`` with ``nproc``, which launches torchrun) on
the sample, fine-tuning the whole network (so DDP all-reduces every gradient),
and compares the training throughput the epoch events report (images/s over all
ranks). On CPU the processes are gloo ranks with one thread each (torchrun's
default), against one process with one thread; with 2+ CUDA GPUs it measures
nccl scaling against one GPU.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks import row, say

IMG_SIZE, GLOBAL_BATCH, EPOCHS, REPEATS = 96, 16, 1, 2


def train_throughput(data: Path, nproc: int, device: str, runs_dir: Path) -> tuple[float, float]:
    """(train images/s of the last epoch, wall seconds from submit to finish) of one run."""
    import time

    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

    os.environ["TLCORE_RUNS_DIR"] = str(runs_dir)
    if device == "cpu":  # torchrun gives each rank 1 thread; the single process gets the same
        os.environ["OMP_NUM_THREADS"] = "1"
    config = TrainConfig(data=str(data), img_size=IMG_SIZE, epochs=EPOCHS, device=device,
                         batch_size=GLOBAL_BATCH // nproc, nproc=nproc, augment="light",
                         freeze={"preset": "full"}, lr=1e-4)  # fmt: skip
    started = time.perf_counter()
    run = Run.start(config)
    status = run.wait(timeout=900)
    if status["state"] != "finished":
        raise RuntimeError(f"{nproc}-process run {status['state']}: {status.get('message')}")
    return run.epochs()[-1]["images_per_s"], time.perf_counter() - started


def run() -> list[dict]:
    import torch

    from tlcore import settings

    data = settings.sample_data_dir()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device, nproc = ("cuda", gpus) if gpus >= 2 else ("cpu", 2)
    # train_throughput points these at each run's folder; put them back afterwards
    keep = {k: os.environ.get(k) for k in ("TLCORE_RUNS_DIR", "OMP_NUM_THREADS")}
    with settings.environment(**keep), tempfile.TemporaryDirectory() as tmp:
        say(f"sample at {IMG_SIZE} px, full fine-tune, global batch {GLOBAL_BATCH}, "
            f"{EPOCHS} epoch(s), augment light; {nproc} {device} processes vs 1")  # fmt: skip
        results: dict[int, list[tuple[float, float]]] = {1: [], nproc: []}
        # interleaved, best of each (the machine may be shared); once on CPU, which has no target
        for attempt in range(REPEATS if device == "cuda" else 1):
            for n in (1, nproc):
                speed, wall = train_throughput(data, n, device, Path(tmp) / f"{n}-{attempt}")
                say(f"{n} process(es): {speed:.1f} train images/s ({wall:.1f} s wall)")
                results[n].append((speed, wall))
        (one, one_wall), (many, many_wall) = max(results[1]), max(results[nproc])
    ratio = many / one
    if device == "cuda":
        return [row(f"{nproc} GPUs (nccl) vs 1, train throughput", many, one, ratio,
                    f">= {0.7 * nproc:.1f}x", ratio >= 0.7 * nproc, "images/s",
                    "ratio = N-GPU / 1-GPU images/s")]  # fmt: skip
    return [
        row("2 CPU processes (gloo) vs 1, train throughput", many, one, ratio, "none on CPU",
            None, "images/s", f"1 thread each; wall {many_wall:.0f} s vs {one_wall:.0f} s"),
        row("GPU scaling (nccl)", None, None, None, ">= 0.7x per GPU", None, "images/s",
            "not measured: no CUDA GPU on this machine"),
    ]  # fmt: skip
