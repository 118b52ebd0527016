"""Labelled texts as a dataset: the text sample and a CSV upload on the Data page.

They sit beside the photo sources whatever was chosen before, so they are not task
sections (``appkit.text_sections``) but more ways to choose data.
"""

from __future__ import annotations

import streamlit as st

from appkit import column_sections, data_choice
from appkit.text import md
from tlcore import settings
from tlcore.data import sources
from tlcore.errors import TLCoreError

TEXT_SAMPLE_LABEL = "Sample: product reviews (positive / negative sentences)"


# -- Data ------------------------------------------------------------------------------------
def sample_button() -> None:
    """The text sample, beside the photo samples."""
    st.markdown(
        "**Product reviews (text)**: 1,000 one-sentence reviews of phones and accessories "
        "from amazon.com, labelled positive or negative (CC BY 4.0)."
    )
    if st.button("Use the text sample", key="use_sample_text"):
        try:
            with st.spinner("Reading every sentence…"):
                data_choice.choose_data("sample", settings.text_sample_path(), TEXT_SAMPLE_LABEL)
            st.rerun()
        except TLCoreError as exc:
            st.error(md(exc))


def csv_upload_tab() -> None:
    """A CSV (or TSV) with a text column and a label column."""
    st.markdown(
        "One example a row, with a header line naming a **text** column and a **label** column "
        "(for example `text,label`). The file should be UTF-8; rows that are not are listed "
        "and left out."
    )
    upload = st.file_uploader("A .csv of labelled texts", type=["csv", "tsv"], key="csv_upload")
    if upload is not None and st.button("Use this CSV", key="use_csv", type="primary"):
        try:
            saved = sources.save_upload(upload.name, upload.getvalue(), "texts")
            with st.spinner("Reading every row…"):
                if not column_sections.choose_uploaded_table(saved, f"CSV: {upload.name}"):
                    data_choice.choose_data("csv", saved, f"CSV: {upload.name}")  # one label
            st.rerun()
        except TLCoreError as exc:
            st.error(md(exc))
