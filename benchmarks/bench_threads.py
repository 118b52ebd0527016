"""OpenMP wait policy: a Lite0 forward pass with cores kept busy, sleeping vs spinning waits.

While a run trains, the app's server and the browser take part of a core. torch's
OpenMP threads spin at each barrier by default; on a 2-core machine a spinning thread
whose partner is descheduled wastes its core. ``tlcore`` sets ``OMP_WAIT_POLICY=PASSIVE``
(``tlcore/__init__.py``) unless the user chose one. Each measurement is a fresh process
(the policy is read once, when torch loads): 224 px, batch 16, photos/s of inference,
first with nothing else running, then with half the cores kept busy beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks import row, say

PROBE = """
import time, torch
from tlcore.models.factory import create_model
model = create_model("tf_efficientnet_lite0", 2).eval()
x = torch.randn(16, 3, 224, 224)
with torch.inference_mode():
    model.forward_features(x)
    rates = []
    for _ in range(2):  # best of 2 rounds of 3 batches
        started = time.perf_counter()
        for _ in range(3):
            model.forward_features(x)
        rates.append(48 / (time.perf_counter() - started))
print(max(rates))
"""
BUSY = "while True: pass"


def photos_per_s(policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)  # torch's default: one thread per core
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True, timeout=600)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def measure(hogs: int) -> dict[str, float]:
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(hogs)]
    try:
        return {policy: photos_per_s(policy) for policy in ("PASSIVE", "ACTIVE")}
    finally:
        for hog in busy:
            hog.kill()
            hog.wait()


def run() -> list[dict]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    say(f"{cores} cores; Lite0 forward at 224 px, batch 16; PASSIVE (tlcore) vs ACTIVE (spin)")
    rows = []
    for hogs in (0, max(1, cores // 2)):
        speed = measure(hogs)
        busy = hogs > 0
        where = f"{hogs} of {cores} cores busy" if busy else "nothing else running"
        say(
            f"{where}: sleeping waits {speed['PASSIVE']:.1f}, spinning {speed['ACTIVE']:.1f} photos/s"
        )
        ratio = speed["PASSIVE"] / speed["ACTIVE"]
        target = ">= 1.2x" if busy else ">= 0.9x"
        rows.append(row(f"threads: sleeping vs spinning OpenMP waits, {where}", speed["PASSIVE"],
                        speed["ACTIVE"], ratio, target, ratio >= (1.2 if busy else 0.9),
                        "photos/s", f"{cores} cores, torch's default thread count"))  # fmt: skip
    return rows
