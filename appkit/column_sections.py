"""The Data page's tables of labels: several label columns per photo (multitask).

The clothing-attributes sample (``garment``, ``kids``, grouped by ``sender``): each label
column shown as a task with its counts, the columns to learn and the group column chosen
here, the split said in groups per side, and **Use this table** makes it the dataset
(``data_choice.choose_task_data``, the chosen columns and group kept in the state). An
uploaded zip holding such a table (a ``.csv``/``.tsv``/``.xlsx`` naming its photos) is
noticed and chosen the same way (``choose_uploaded_table``). The Train, Evaluate and Predict
pages of these runs are ``appkit.column_pages``. The tags sample (``tags_sample``: the blood
cell photos tagged with the kinds of cell each shows) is the multi-label example.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from appkit import data_choice, state
from appkit.column_pages import show_tasks
from tlcore import settings
from tlcore.data.columns import find_table, is_sentence_table, read_columns
from tlcore.data.markdown import md
from tlcore.data.task import PHOTO_COLUMNS, TEXT_COLUMNS, Task
from tlcore.errors import TLCoreError

SAMPLE = settings.PROJECT_ROOT / "assets" / "clothing-attributes" / "labels.csv"
SAMPLE_LABEL = "Sample: clothing, two labels per photo (multitask)"
TAGS_SAMPLE = settings.PROJECT_ROOT / "assets" / "bccd" / "tags.csv"
TAGS_LABEL = "Sample: blood cells, tags per photo (multi-label)"


def columns_sample() -> None:
    """The *Try several labels per photo* button and, once pressed, the table as tasks."""
    everything = data_choice.offered_sample(
        "**Clothing, two labels per photo** (multitask): 551 photos, each with its garment "
        "kind and whether it is for children, taken by 129 senders (CC0).",
        "Try several labels per photo",
        "use_sample_columns",
        lambda: read_columns(SAMPLE, group="sender"),
    )
    if everything is None:
        return
    show_tasks(everything)
    names = [t.name for t in everything.tasks]
    chosen = st.multiselect("Columns to learn together", names, default=names, key="columns_tasks")
    grouped = st.checkbox(
        "Keep each sender's photos on one side of the split (their photos look alike)",
        value=True,
        key="columns_grouped",
    )
    if not chosen:
        st.info("Choose at least one column.")
        return
    group = "sender" if grouped else None
    try:
        data = read_columns(SAMPLE, tasks=chosen, group=group)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    for line in data.summary().split("\n")[:2]:
        st.caption(md(line))
    for problem in data.problems:
        st.warning(md(problem))
    if st.button("Use this table", key="columns_use", type="primary"):
        choose_table(SAMPLE, SAMPLE_LABEL, chosen, group)
        st.rerun()  # the sidebar shows the new choice


def tags_sample() -> None:
    """The *Try tags per photo* button: the detection sample's classes present in each photo
    as one tag column (``assets/bccd/tags.csv``, from its boxes), a multi-label example."""
    if not TAGS_SAMPLE.is_file():
        return
    data = data_choice.offered_sample(
        "**Blood cells, tags per photo** (multi-label): 364 microscope photos, each tagged "
        "with the kinds of cell it shows (RBC, WBC, Platelets; a photo can carry several), "
        "from the detection sample's boxes (MIT).",
        "Try tags per photo",
        "use_sample_tags",
        lambda: read_columns(TAGS_SAMPLE),
    )
    if data is None:
        return
    show_tasks(data)
    for line in data.summary().split("\n")[:1]:
        st.caption(md(line))
    st.caption("Each tag gets its own threshold, chosen on the validation photos; Evaluate "
               "shows the mean average precision, F1 per tag and the tags that go together.")  # fmt: skip
    if st.button("Use these tags", key="tags_use", type="primary"):
        choose_table(TAGS_SAMPLE, TAGS_LABEL, [t.name for t in data.tasks], None)
        st.rerun()


def choose_table(source: str | Path, label: str, tasks: list[str] | None,
                 group: str | None, task: Task = PHOTO_COLUMNS) -> None:  # fmt: skip
    """Make a table of labels the dataset, with the columns to learn and the group column."""
    data_choice.choose_task_data(task, source, label)
    state.update(data={**state.get("data"), "tasks": tasks, "group": group})


def choose_uploaded_table(upload: str | Path, label: str) -> bool:
    """An uploaded zip (or a folder on the server) holding a table of labels that names its
    photos: read it and make it the dataset (True). False when it holds none (a folder per
    label goes on as before). A zip is unpacked safely first; DataError in words."""
    from tlcore.data.prepare import unpack_upload

    upload = Path(upload)
    if upload.is_file() and upload.suffix.lower() != ".zip":
        return choose_sentence_table(upload, label)
    table = find_table(unpack_upload(upload) if upload.is_file() else upload)
    if table is None:
        return False
    data = read_columns(table)  # a DataError in words when no column can be learned
    choose_table(table, label, [t.name for t in data.tasks], None)
    return True


def choose_sentence_table(table: Path, label: str) -> bool:
    """An uploaded .csv/.tsv/.xlsx of sentences with SEVERAL label columns: chosen as a table
    of labels (True). One label column (``text,label``) is left to the texts' reading."""
    if not is_sentence_table(table):
        return False  # one label per text, or not a table: the texts' reading takes it
    choose_table(table, label, [t.name for t in read_columns(table).tasks], None, TEXT_COLUMNS)
    return True
