"""What the AppTest page tests share: open the app, move to a page, read what it shows."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(**query: str) -> AppTest:
    """A fresh browser session on ``app.py``, with ``query`` in its URL."""
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def go(at: AppTest, page: str) -> AppTest:
    """Move to ``pages/<page>.py`` the way the sidebar does; the page must not raise."""
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)
