"""Entry point of the web app: ``streamlit run app.py``.

One page per step of the wizard (files in ``pages/``), a sidebar that shows the
choices so far on every page, and nothing else: the pages call ``tlcore``.
"""

import contextlib

import streamlit as st

from appkit import sidebar
from tlcore import settings
from tlcore.data.archive import clean_unpack_leftovers


@st.cache_resource(show_spinner=False)
def clean_leftovers_once() -> None:
    """Unpacks killed halfway (a stopped server, a closed tab) left temporary folders:
    removed when the server starts, not only at the next upload."""
    with contextlib.suppress(OSError):
        clean_unpack_leftovers(settings.uploads_dir() / "extracted")


st.set_page_config(
    page_title="Transfer learning studio", page_icon=":material/psychology:", layout="wide"
)

PAGES = {
    "Wizard": [
        st.Page("pages/home.py", title="Start", icon=":material/home:", default=True),
        st.Page("pages/data.py", title="1 · Data", icon=":material/photo_library:"),
        st.Page("pages/model.py", title="2 · Model", icon=":material/psychology:"),
        st.Page("pages/layers.py", title="3 · Layers", icon=":material/layers:"),
        st.Page("pages/train.py", title="4 · Train", icon=":material/model_training:"),
        st.Page("pages/evaluate.py", title="5 · Evaluate", icon=":material/fact_check:"),
        st.Page("pages/predict.py", title="6 · Predict", icon=":material/image_search:"),
        st.Page("pages/export.py", title="7 · Export", icon=":material/download:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
        st.Page("pages/doctor.py", title="Doctor", icon=":material/stethoscope:"),
    ],
    "Little or shifted data": [
        st.Page("pages/fewshot.py", title="Few-shot", icon=":material/filter_5:"),
        st.Page("pages/label.py", title="Label photos", icon=":material/label:"),
        st.Page("pages/domain.py", title="Domain adaptation", icon=":material/compare_arrows:"),
    ],
    "Class": [
        st.Page("pages/challenge.py", title="Challenge", icon=":material/trophy:"),
    ],
    "Learn": [
        st.Page("pages/compare.py", title="Compare experiment", icon=":material/science:"),
        st.Page("pages/network.py", title="What the network sees", icon=":material/visibility:"),
        st.Page("pages/glossary.py", title="Glossary", icon=":material/menu_book:"),
    ],
}


def menu(pages: dict[str, list]) -> None:
    """The app's own menu in the sidebar, one link per page under its section's name.

    Streamlit draws its automatic menu of ``pages/`` file names ("app, compare, data…")
    on the first paint after a server start, before this script reaches ``st.navigation``;
    ``client.showSidebarNavigation = false`` (.streamlit/config.toml) hides that menu, and
    with it ``st.navigation``'s own, so the links are drawn here.
    """
    for section, section_pages in pages.items():
        st.sidebar.caption(section)
        for item in section_pages:
            st.sidebar.page_link(item)


clean_leftovers_once()
if st.query_params.get("demo"):  # a shared demo link: that model's Predict alone, no sidebar
    st.navigation([st.Page("pages/demo.py", title="Demo", default=True)], position="hidden").run()
    st.stop()
page = st.navigation(PAGES, position="hidden")  # the menu is drawn below (see `menu`)
menu(PAGES)
sidebar.render()  # pages rerun after changing a choice, so this is never out of date
page.run()
