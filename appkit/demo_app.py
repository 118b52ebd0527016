"""The app ``tlcore demo BUNDLE_OR_RUN`` starts: one model's Predict and model card, read-only.

A separate script (not ``app.py``), so there is no wizard, no sidebar and no other page to
reach; the model is named by ``TLCORE_DEMO_SOURCE`` (set by ``tlcore.cli.demo``).
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` from anywhere

import streamlit as st  # noqa: E402

from appkit import demo_view  # noqa: E402

st.set_page_config(page_title="Model demo", page_icon=":material/image_search:", layout="wide")
source = os.environ.get("TLCORE_DEMO_SOURCE", "")
if not source:
    st.error("No model to show: start this app with `tlcore demo BUNDLE_OR_RUN`.")
    st.stop()
demo_view.render(source)
