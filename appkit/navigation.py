"""Make every page go through ``app.py``, even when Streamlit starts it on its own.

Streamlit treats an app with a ``pages/`` folder as a legacy multipage app until
``st.navigation`` has been called in the process (AppTest even resets that for
every run). If the first request after a server start is a refresh of, say,
``/train``, Streamlit runs ``pages/train.py`` by itself: no sidebar, no wide
layout, file names as the menu. Each page calls ``through_app()`` first; in that
case it runs ``app.py`` in its place, in the same script run (so a click that
caused the run is not lost), which builds the wizard and runs the page again.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"


def through_app() -> None:
    if PagesManager.uses_pages_directory:
        runpy.run_path(str(APP_SCRIPT), run_name="__main__")
        st.stop()
