"""Drawing boxes in Chromium on the Data page (``appkit.box_labelling``), as a person would.

Two real BCCD photos with one stem are uploaded (*Add* pressed twice: no copies): one enlarged
2x (the tool shows it at half size), one carrying an EXIF "turn 90°" tag (shown, and so saved,
upright). Boxes are dragged with the mouse on the ``streamlit-image-annotation`` canvas (an
iframe), a class is picked in its *Class* list, *Complete* sends them; the Pascal VOC file
beside the photo must hold the dragged boxes in the photo's own pixels, and not the 5 px box
the tool makes of a stray click. One box is then moved and one deleted, and *Use these
photos* makes the folder the chosen detection data, reported on the Data page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from e2e.streamlit_server import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_app
from PIL import Image

from tlcore.data.boxes import read_voc_file

playwright = pytest.importorskip("playwright.sync_api")
playwright.expect.set_options(timeout=30_000)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]

BCCD = ROOT / "assets" / "bccd" / "JPEGImages"
EXIF_ORIENTATION = 0x0112
IFRAME = 'iframe[title*="st-detection"]:not([data-gone])'  # the shown photo's tool


class BoxTool:
    """The component on the page: its canvas, its Mode and Class lists, its Complete button."""

    def __init__(self, page) -> None:
        self.page = page
        self.frame = page.frame_locator(IFRAME)
        self.canvas = self.frame.locator("canvas").first

    def origin(self) -> dict[str, float]:
        """The canvas's place and size on the page (scrolled into view: the mouse is real)."""
        self.canvas.scroll_into_view_if_needed()
        self.page.wait_for_timeout(200)
        return self.canvas.bounding_box()

    def drag(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """A mouse drag between two points of the canvas (canvas pixels)."""
        at, mouse = self.origin(), self.page.mouse
        mouse.move(at["x"] + x0, at["y"] + y0)
        mouse.down()
        mouse.move(at["x"] + (x0 + x1) / 2, at["y"] + (y0 + y1) / 2, steps=3)
        mouse.move(at["x"] + x1, at["y"] + y1, steps=3)
        mouse.up()

    def click(self, x: float, y: float) -> None:
        at = self.origin()
        self.page.mouse.click(at["x"] + x, at["y"] + y)

    def box(self, label: str, x0: float, y0: float, x1: float, y1: float) -> None:
        """A new box: deselect the last one (a click on the photo), pick the class, drag."""
        self.click(2, 2)
        self.frame.locator("select").nth(1).select_option(label)
        self.drag(x0, y0, x1, y1)

    def mode(self, name: str) -> None:
        self.frame.locator("select").nth(0).select_option(name)

    def show(self, name: str) -> None:
        """Another photo from the *Photo* list; returns once its own tool is on the page (the
        last photo's iframe is marked first: it stays a moment while the page re-runs)."""
        from playwright.sync_api import expect

        self.page.eval_on_selector_all(IFRAME, "els => els.forEach(e => e.dataset.gone = 1)")
        self.page.get_by_label("Photo", exact=True).click()
        self.page.keyboard.type(name)
        self.page.get_by_role("option", name=name, exact=True).click()
        _wait_idle(self.page)
        expect(self.page.locator('iframe[title*="st-detection"]')).to_have_count(1)
        expect(self.page.locator(IFRAME)).to_have_count(1)
        expect(self.canvas).to_be_visible()

    def complete(self) -> None:
        self.frame.get_by_role("button", name="Complete").click()


def _wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)


def _saved(xml: Path, count: int, timeout: float = 30.0) -> list[tuple[str, ...]]:
    """The boxes of ``xml`` once it holds ``count`` of them (the save follows a rerun)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if xml.is_file():
            boxes = read_voc_file(xml)[1]
            if len(boxes) == count:
                return [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes]
        time.sleep(0.2)
    raise AssertionError(f"{xml} never held {count} boxes")


def _close(got: tuple, want: tuple, tol: float) -> bool:
    return got[0] == want[0] and all(
        abs(a - b) <= tol for a, b in zip(got[1:], want[1:], strict=True)
    )


def test_draw_fix_and_use_boxes_in_chromium(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    big = tmp_path / "cells.jpg"  # 1280x960: shown at half size
    with Image.open(BCCD / "BloodImage_00000.jpg") as im:
        im.resize((im.width * 2, im.height * 2)).save(big, quality=95)
    turned = tmp_path / "cells.jpeg"  # the same stem; EXIF: turn 90° clockwise to show
    with Image.open(BCCD / "BloodImage_00001.jpg") as im:
        raw_size = im.size
        exif = im.getexif()
        exif[EXIF_ORIENTATION] = 6
        im.save(turned, exif=exif, quality=95)
    env = {"TLCORE_RUNS_DIR": os.environ["TLCORE_RUNS_DIR"],
           "TLCORE_UPLOADS_DIR": os.environ["TLCORE_UPLOADS_DIR"], "HF_HUB_OFFLINE": "1"}  # fmt: skip
    uploads = Path(os.environ["TLCORE_UPLOADS_DIR"]) / "box-labels"
    with streamlit_app(env, ROOT / "test-artifacts" / "streamlit-e2e-boxes.log") as url, \
            sync_playwright() as p:  # fmt: skip
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/data")
        page.get_by_text("Draw boxes on your own photos").click()
        uploader = page.locator('[data-testid="stFileUploader"]', has_text="Photos to draw")
        uploader.locator("input[type=file]").set_input_files([big, turned])
        expect(uploader).to_contain_text("cells.jpeg")
        _wait_idle(page)
        page.get_by_role("button", name="Add these photos").click()
        _wait_idle(page)
        page.get_by_role("button", name="Add these photos").click()  # twice: no copies
        classes = page.get_by_label("Classes, separated by commas")
        classes.fill("WBC, RBC")
        classes.press("Enter")
        _wait_idle(page)

        # the turned photo first (cells-2.jpeg sorts before cells.jpg): saved upright
        (folder,) = uploads.iterdir()
        photos = folder / "JPEGImages"
        assert sorted(p.name for p in photos.iterdir()) == ["cells-2.jpeg", "cells.jpg"]
        with Image.open(photos / "cells-2.jpeg") as im:
            assert im.size == raw_size[::-1] and im.getexif().get(EXIF_ORIENTATION, 1) == 1
        tool = BoxTool(page)
        expect(tool.canvas).to_be_visible()
        shown = tool.origin()
        assert (round(shown["width"]), round(shown["height"])) == raw_size[::-1]  # upright
        tool.click(400, 500)  # a stray click: the tool shows a 5 px box; it is not saved
        tool.box("WBC", 100, 200, 220, 330)  # a click to deselect the 5 px box first
        tool.box("RBC", 300, 50, 360, 110)
        tool.complete()
        xml = folder / "Annotations" / "cells-2.xml"
        got = _saved(xml, 2)
        drawn = [("WBC", 100, 200, 220, 330), ("RBC", 300, 50, 360, 110)]
        for g, want in zip(got, drawn, strict=True):
            assert _close(g, want, 2), (got, drawn)
        assert read_voc_file(xml)[2] == raw_size[::-1]

        # the enlarged photo: dragged at the shown size, saved in its own pixels (x2)
        tool.show("cells.jpg")
        shown = tool.origin()
        assert (round(shown["width"]), round(shown["height"])) == (640, 480)
        tool.drag(50, 60, 150, 140)
        tool.box("RBC", 400, 300, 460, 360)
        tool.box("RBC", 500, 100, 560, 160)
        tool.complete()
        xml = folder / "Annotations" / "cells.xml"
        scaled = [("WBC", 100, 120, 300, 280), ("RBC", 800, 600, 920, 720),
                  ("RBC", 1000, 200, 1120, 320)]  # fmt: skip
        got = _saved(xml, 3)
        for g, want in zip(got, scaled, strict=True):
            assert _close(g, want, 4), (got, scaled)
        assert read_voc_file(xml)[2] == (1280, 960)

        # fix: delete the last RBC, move the WBC 40 px right and 20 down (shown pixels)
        tool.mode("Del")
        tool.click(530, 130)
        tool.mode("Transform")
        tool.click(100, 100)  # select the WBC box: only a selected box moves
        tool.drag(100, 100, 140, 120)
        tool.complete()
        got = sorted(_saved(xml, 2))
        fixed = [("RBC", 800, 600, 920, 720), ("WBC", 180, 160, 380, 320)]
        for g, want in zip(got, fixed, strict=True):
            assert _close(g, want, 4), (got, fixed)

        # use them: the Data page reports the two photos and their boxes
        expect(page.get_by_text(re.compile(r"2 of 2 photos labelled"))).to_be_visible()
        page.get_by_role("button", name="Use these photos").click()
        expect(page.get_by_text(re.compile(r"2 photos with 4 boxes of 2 classes"))).to_be_visible()
        expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Your photos with boxes")
        expect(page.get_by_text("Traceback")).to_have_count(0)
        browser.close()
