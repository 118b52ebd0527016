"""The Streamlit server goes away mid-run: training goes on in its worker, a new server shows it.

A real ``streamlit run app.py`` starts the run from a real browser (Debian's Chromium
through Playwright), then the server is stopped (its whole process group) and a new
one started on the same runs folder. The worker, a detached process, must keep the
same pid and keep adding steps while no server exists; the new server's Train page
must follow the run live (its epoch counter moves without a reload) and stop it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from e2e.streamlit_server import CHROMIUM, CHROMIUM_ARGS, streamlit_app

from tlcore import settings
from tlcore.runs.run import Run, list_runs, pid_is_worker

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]
EPOCHS = 150  # far more than the test waits for: it stops the run itself


def wait_for(predicate, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def steps(run: Run) -> list[int]:
    return [e["step"] for e in run.metrics() if e["type"] == "step"]


def test_training_survives_a_server_restart_and_the_new_server_shows_it_live(tiny_data, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    runs_dir = settings.runs_dir()
    runs_dir.mkdir(parents=True)
    data = {"kind": "folder", "source": str(tiny_data), "label": "Folder: pets"}
    # augmentation on: the full model trains, so each epoch lasts a moment
    train = {"epochs": EPOCHS, "img_size": 64, "augment": "light", "batch_size": 4}
    (runs_dir / "app-state.json").write_text(json.dumps({"data": data, "train": train}))
    env = {k: os.environ[k] for k in ("TLCORE_RUNS_DIR", "TLCORE_UPLOADS_DIR")}
    env["HF_HUB_OFFLINE"] = "1"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        run = None
        try:
            with streamlit_app(env, tmp_path / "first-server.log") as url:
                page.goto(f"{url}/train")
                page.get_by_role("button", name="Start training").click()
                wait_for(lambda: len(list_runs()) == 1, what="the run directory")
                run = list_runs()[0]
                wait_for(lambda: len(steps(run)) >= 2, what="the first steps")
                pid = run.status()["pid"]
            # the first server and its whole process group are gone now
            at_stop = len(steps(run))
            assert pid_is_worker(pid, run.dir), "the worker died with the server"
            wait_for(lambda: len(steps(run)) > at_stop + 2, what="steps while no server runs")

            with streamlit_app(env, tmp_path / "second-server.log") as url:
                page.goto(f"{url}/train?run={run.id}")
                main = page.locator('[data-testid="stMain"]')
                shown = main.get_by_text(re.compile(rf"epoch \d+/{EPOCHS}")).first
                shown.wait_for()
                playwright.expect(main).to_contain_text("running")
                first = int(re.search(r"epoch (\d+)/", shown.inner_text()).group(1))
                # epochs can be shorter than the page's refresh: any later epoch will do
                later = "|".join(str(n) for n in range(first + 1, EPOCHS + 1))
                page.get_by_text(re.compile(rf"epoch ({later})/{EPOCHS}")).first.wait_for(
                    timeout=90_000
                )
                page.get_by_role("button", name="Stop", exact=True).click()  # live control, too
                page.get_by_text("stopped", exact=True).first.wait_for(timeout=90_000)
            status = run.wait(timeout=60)
        finally:
            browser.close()
            if run is not None and run.status()["state"] in ("queued", "running"):
                run.stop()
                run.wait(timeout=60)
    assert status["state"] == "stopped" and status["pid"] == pid  # one worker all along
    done = steps(run)
    assert done == list(range(1, len(done) + 1))  # no step lost or repeated over the restart
    assert run.epochs() and len(run.epochs()) < EPOCHS
