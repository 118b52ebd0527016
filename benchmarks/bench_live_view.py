"""The live view's cost: training images/s with the Train page open in Chromium vs no page.

The same run twice on the sample (feature extraction with light augmentation, so the
frozen backbone runs on every photo every epoch and a step event is written per batch:
the busiest the live view gets), 160 px, 7 epochs of about 2 s: once with nobody
watching (the app's server idle), once with ``streamlit run app.py`` serving the Train
page for that run to headless Chromium (Debian's, as the browser test uses). The page
is opened as the run starts; the figure is the median images/s of the epochs that began
after the page had drawn the run (the steady state a person watches), and of the same
epochs of the run alone; two such pairs, alternated. Target >= 0.95x. Skipped (no row)
when Chromium or Playwright is missing.
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
EPOCHS, IMG_SIZE = 7, 160
PAIRS = 2  # watched/alone pairs
# the flags the browser test uses: without the network ones Chromium keeps retrying
# connections this offline machine refuses, CPU that no person's browser would spend
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip
FIRST_MEASURED = 3  # epochs before this one: the worker warms up and the page loads


def _train(watch_url: str | None, first: int = FIRST_MEASURED) -> tuple[float, int]:
    """(median images/s, first epoch counted) of one run; the Train page open at ``watch_url``
    if given, counting only epochs that began after the page showed the run."""
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
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{watch_url}/train?run={run.id}")
        page.get_by_text("Training run").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1_000)
        drawn = time.time()
    try:
        while run.status()["state"] in ACTIVE_STATES:
            # the page's timers and redraws run in Chromium's own processes: no calls into
            # Playwright here (each is a round trip through its driver, which a viewer lacks)
            time.sleep(0.5)
    finally:
        if browser is not None:
            browser.close()
            playwright.stop()
    epochs = run.epochs()
    if watch_url:  # the first epoch that began after the page had drawn the run
        began = [e["epoch"] for e in epochs if e["time"] - e["seconds"] >= drawn]
        first = max(first, min(began)) if began else EPOCHS + 1
    speeds = [e["images_per_s"] for e in epochs if e["epoch"] >= first]
    return (statistics.median(speeds) if speeds else float("nan")), first


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
    watched_runs, alone_runs = [], []
    proc, url = _serve()  # one server; with no page open it sits idle
    try:
        for _ in range(PAIRS):  # alternated: a machine's speed drifts by more than the target
            speed, first = _train(url)
            watched_runs.append(speed)
            alone_runs.append(_train(None, first)[0])  # the same epochs, nobody watching
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    watched, alone = statistics.median(watched_runs), statistics.median(alone_runs)
    ratio = watched / alone
    say(f"{EPOCHS} epochs at {IMG_SIZE} px, augment light, epochs {first}-{EPOCHS}: "
        f"{alone:.1f} images/s alone, {watched:.1f} images/s with the Train page open in "
        "Chromium")  # fmt: skip
    runs = ", ".join(f"{w:.1f}/{a:.1f}" for w, a in zip(watched_runs, alone_runs, strict=True))
    return [row("live view: training images/s, Train page open vs no page", watched, alone,
                ratio, ">= 0.95x", ratio >= 0.95, "img/s",
                f"median of {PAIRS} alternated pairs (watched/alone: {runs})")]  # fmt: skip
