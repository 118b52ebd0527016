"""A shared demo (``?demo=<token>``): one run's Predict and model card, nothing else.

``app.py`` shows this page alone, without the sidebar, when the link carries a token; the
token (``tlcore.runs.demo_links``) is the only way in, and it opens one finished run.
"""

import streamlit as st

from appkit import demo_view, navigation
from appkit.text import md
from tlcore.errors import TLCoreError
from tlcore.runs.demo_links import run_for_token

navigation.through_app()

try:
    run = run_for_token(st.query_params.get("demo"))
except TLCoreError as exc:
    st.error(md(exc))
    st.stop()
demo_view.render(str(run.dir))
