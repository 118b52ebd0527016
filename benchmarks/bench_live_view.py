"""The live view's cost: training images/s with the Train page open in Chromium vs no page.

The same run twice on the sample (feature extraction with light augmentation, so
the frozen backbone runs on every photo every epoch and a step event is written
per batch: the busiest the live view gets), 96 px, 4 epochs: once with nobody
watching, once with ``streamlit run app.py`` serving the Train page for that run
to headless Chromium (Debian's, as the browser test uses). The figure is the
median of the epoch events' images/s after the first epoch; the target is
>= 0.95x. Skipped (no row) when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks import row, say

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
EPOCHS, IMG_SIZE = 4, 96


def _train(watch_url: str | None) -> float:
    """Median images/s of epochs 2.. of one run; the Train page open at ``watch_url`` if given."""
    from tlcore import settings
    from tlcore.runs.run import ACTIVE_STATES, Run
    from tlcore.training.config import TrainConfig

    config = TrainConfig(data=str(settings.sample_data_dir()), epochs=EPOCHS, img_size=IMG_SIZE,
                         augment="light", batch_size=16, device="cpu", name="live-view bench")  # fmt: skip
    run = Run.start(config)
    browser = page = None
    if watch_url:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{watch_url}/train?run={run.id}")
    try:
        while run.status()["state"] in ACTIVE_STATES:
            if page is not None:
                page.wait_for_timeout(500)  # let the page's own timers and redraws run
            else:
                time.sleep(0.5)
    finally:
        if browser is not None:
            browser.close()
            playwright.stop()
    speeds = [e["images_per_s"] for e in run.epochs()[1:]]
    return statistics.median(speeds) if speeds else float("nan")


def _serve() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ | {"HF_HUB_OFFLINE": "1"})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("streamlit did not start within 120 s")


def run() -> list[dict]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        say("skipped: Playwright is not installed (make test installs it)")
        return []
    if not Path(CHROMIUM).exists():
        say(f"skipped: no Chromium at {CHROMIUM}")
        return []
    alone = _train(None)
    proc, url = _serve()
    try:
        watched = _train(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ratio = watched / alone
    say(f"{EPOCHS} epochs at {IMG_SIZE} px, augment light: {alone:.1f} images/s alone, "
        f"{watched:.1f} images/s with the Train page open in Chromium")  # fmt: skip
    return [row("live view: training images/s, Train page open vs no page", watched, alone,
                ratio, ">= 0.95x", ratio >= 0.95, "img/s")]  # fmt: skip
