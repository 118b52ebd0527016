"""Labelling 30 BCCD photos in Chromium with the Data page's box tool, then training on them
from the wizard: the steps a person takes and the time of each.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/label_boxes_in_chromium.py [--photos 30]
        [--epochs 2] [--out benchmarks/label_boxes_in_chromium.json]

The driver is the browser test's (``tests/test_e2e_boxes.py``): a real mouse drags each box
on the ``streamlit-image-annotation`` canvas. Per photo it draws what a person would from the
photo's true annotation: every white cell (WBC), then up to 3 red cells and 1 platelet whose
drag can start on free canvas (a press on a box selects it instead of drawing). Then *Use
these photos*, the Train page with the Layers default (frozen backbone: the fast path) and
``--epochs``, *Start training*, until the run says finished. Not a ``bench_*`` row of
``make bench``: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BCCD = ROOT / "assets" / "bccd"
CLASSES = ["WBC", "RBC", "Platelets"]
MARGIN = 12  # the selected box's handles reach past its edge


def _inside(x: float, y: float, box: tuple[float, ...], margin: float = MARGIN) -> bool:
    return box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin


def person_boxes(photo: Path, shown: tuple[int, int]) -> list[tuple[str, float, ...]]:
    """The boxes a person would draw on this photo, in canvas pixels, in drawing order."""
    from tlcore.data.boxes import read_voc_file

    _, boxes, size = read_voc_file(BCCD / "Annotations" / f"{photo.stem}.xml")
    k = shown[0] / (size or shown)[0]
    clip = [(b.label, max(1.0, b.xmin * k), max(1.0, b.ymin * k), min(shown[0] - 2.0, b.xmax * k),
             min(shown[1] - 2.0, b.ymax * k)) for b in boxes]  # fmt: skip
    wanted = {"WBC": 99, "RBC": 3, "Platelets": 1}
    chosen: list[tuple[str, float, ...]] = []
    for label in CLASSES:
        for box in (b for b in clip if b[0] == label):
            if wanted[label] and box[3] - box[1] > 8 and box[4] - box[2] > 8 \
                    and not any(_inside(box[1], box[2], c[1:]) for c in chosen):  # fmt: skip
                chosen.append(box)
                wanted[label] -= 1
    return chosen


def free_point(boxes: list[tuple], shown: tuple[int, int]) -> tuple[float, float]:
    """A point of the canvas in no box: a click there deselects without selecting another."""
    for y in range(4, shown[1], 16):
        for x in range(4, shown[0], 16):
            if not any(_inside(x, y, b[1:]) for b in boxes):
                return x, y
    raise RuntimeError("no free point on the canvas")


def _state(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text()).get("state")
    except (OSError, ValueError):
        return None


def _wait_for(found, timeout: float):
    """``found()``'s first value that is not None, polled (the run is a worker process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := found()) is not None:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"nothing after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="label-boxes-"))
    env = {"TLCORE_RUNS_DIR": str(work / "runs"), "TLCORE_UPLOADS_DIR": str(work / "uploads"),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    os.environ.update(env)
    from e2e.streamlit_server import CHROMIUM, CHROMIUM_ARGS, streamlit_app
    from playwright.sync_api import expect, sync_playwright
    from test_e2e_boxes import BoxTool, _saved, _wait_idle

    expect.set_options(timeout=60_000)
    photos = sorted((BCCD / "JPEGImages").glob("*.jpg"))[: args.photos]
    steps: list[dict] = []

    def step(name: str, started: float, **extra) -> None:
        steps.append({"step": name, "seconds": round(time.monotonic() - started, 2), **extra})
        print(f"{name}: {steps[-1]['seconds']:.1f} s {extra or ''}", flush=True)

    whole = time.monotonic()
    with streamlit_app(env, work / "streamlit.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        t = time.monotonic()
        page.goto(f"{url}/data")
        page.get_by_text("Draw boxes on your own photos").click()
        uploader = page.locator('[data-testid="stFileUploader"]', has_text="Photos to draw")
        uploader.locator("input[type=file]").set_input_files(photos)
        expect(uploader).to_contain_text(re.compile(r"Showing page|" + photos[-1].stem[:8]))
        _wait_idle(page)
        page.get_by_role("button", name="Add these photos").click()
        classes = page.get_by_label("Classes, separated by commas")
        classes.fill(", ".join(CLASSES))
        classes.press("Enter")
        _wait_idle(page)
        step(f"open the Data page, upload {len(photos)} photos, type the classes", t)

        tool = BoxTool(page)
        folder = next((work / "uploads" / "box-labels").iterdir())
        drawn_total = 0
        for i, photo in enumerate(photos):
            t = time.monotonic()
            if i:
                tool.show(photo.name)
            expect(tool.canvas).to_be_visible()
            at = tool.origin()
            shown = (round(at["width"]), round(at["height"]))
            boxes = person_boxes(photo, shown)
            k = shown[0] / 640  # BCCD photos are 640 wide: canvas pixels per photo pixel
            for n, (label, x0, y0, x1, y1) in enumerate(boxes):
                if n:
                    tool.click(*free_point(boxes[:n], shown))  # deselect the last box
                tool.frame.locator("select").nth(1).select_option(label)
                tool.drag(x0, y0, x1, y1)
            tool.complete()
            saved = _saved(folder / "Annotations" / f"{photo.stem}.xml", len(boxes), timeout=60)
            drawn_total += len(boxes)
            off = max(abs(a - b / k) for s_, d in zip(saved, boxes, strict=True)
                      for a, b in zip(s_[1:], d[1:], strict=True))  # fmt: skip
            step(f"photo {i + 1}: draw {len(boxes)} boxes and Complete", t, boxes=len(boxes),
                 px_off=round(off, 1))  # fmt: skip

        t = time.monotonic()
        page.get_by_role("button", name="Use these photos").click()
        expect(page.get_by_text(re.compile(rf"{len(photos)} photos with {drawn_total} boxes"))) \
            .to_be_visible()  # fmt: skip
        step("Use these photos: the Data page's report", t)

        t = time.monotonic()
        page.locator('[data-testid="stSidebarNavLink"]', has_text="4 · Train").click()
        epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
        epochs.fill(str(args.epochs))
        epochs.press("Enter")
        _wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        run_dir = _wait_for(lambda: next((d for d in (work / "runs").glob("*")
                                          if (d / "status.json").is_file()), None), 120)  # fmt: skip
        step("Train page: epochs, Start training (run created)", t)
        t = time.monotonic()
        state = _wait_for(lambda: _state(run_dir) if _state(run_dir) in
                          ("finished", "failed", "stopped") else None, 1800)  # fmt: skip
        expect(page.get_by_text("Validation mAP per epoch").first).to_be_visible()
        epochs_done = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()
                       if '"epoch"' in line]  # fmt: skip
        epochs_done = [e for e in epochs_done if e.get("type") == "epoch"]
        last = epochs_done[-1] if epochs_done else {}
        step(f"training until {state}", t, epochs=len(epochs_done), map50=last.get("map50"),
             map=last.get("map"), epoch_seconds=[e.get("seconds") for e in epochs_done])  # fmt: skip
        browser.close()
    labelling = [s for s in steps if s["step"].startswith("photo ")]
    summary = {
        "photos": len(photos), "boxes": drawn_total,
        "labelling_seconds": round(sum(s["seconds"] for s in labelling), 1),
        "seconds_per_photo": round(sum(s["seconds"] for s in labelling) / len(labelling), 2),
        "total_seconds": round(time.monotonic() - whole, 1), "steps": steps,
    }  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "steps"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
