"""What the pages show for each task: one entry per ``tlcore.data.task`` key.

The chosen data and every run have one task (``Task``: photos or texts, one label per
item). A page looks its task up here (``data_choice.data_view()`` for the chosen data,
``run_view(run)`` for a run) instead of asking "photos or texts?": the words for its
items, the model a new dataset of this task starts with, which settings and sections
apply, and the sections that replace the photo ones. Adding a task adds one entry to
``VIEWS`` (and one in each tlcore wing's table, docs/architecture.md "Adding a task").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from appkit import state
from tlcore.data.task import (
    PHOTO_BOXES,
    PHOTO_COLUMNS,
    PHOTO_LABEL,
    TEXT_COLUMNS,
    TEXT_LABEL,
    Task,
    entry_for,
)
from tlcore.errors import TLCoreError
from tlcore.models.text_catalog import DEFAULT_TEXT_MODEL, is_text_model
from tlcore.runs.run import Run

Section = Callable[..., None]


@dataclass(frozen=True)
class TaskView:
    """The pages' entry for one task. A section left None means "the page's photo section"."""

    task: Task
    files: str  # what the Data page counts: "images", "texts"
    default_model: str  # the model a dataset of this task switches to (feature extraction)
    reads_model: Callable[[str], bool]  # can this model (by name) learn this task?
    # settings that do not apply to this task, with the value a run keeps for them
    fixed_settings: Mapping[str, Any] = field(default_factory=dict)
    settings_note: str = ""  # said on the Train page above the settings
    pixels: bool = True  # image size and augmentation mean something (the Train page's words)
    doctor: bool = True  # the data doctor and the dataset versions it writes
    domain: bool = False  # domain adaptation (photos with one label each: appkit PHOTOS)
    network_note: str = ""  # said instead of the Network page's filters and feature maps
    model_page: Section | None = None  # () -> the whole Model page
    examples: Section | None = None  # (prepared) -> the Data page's examples per label
    evaluate_sections: Section | None = None  # (run, checkpoint, report, predictor)
    predict_section: Section | None = None  # (run, checkpoint, predictor, top_k)
    fewshot_section: Section | None = None  # (prepared) -> the Few-shot page
    # where a problem's item is, in words: a photo's path; a text's "reviews.csv, line 336"
    where: Callable[[str], str] = str
    # whole pages for a task whose steps differ from one label per item (boxes, columns):
    data_section: Section | None = None  # () -> the Data page's report of the chosen data
    train_page: Section | None = None  # () -> the Train page for the chosen data
    evaluate_page: Section | None = None  # (run, checkpoint) -> the Evaluate page
    predict_page: Section | None = None  # (run, checkpoint) -> the Predict page
    export_words: Mapping[str, str] = field(default_factory=dict)  # a format's Export words

    @property
    def items(self) -> str:
        """The items in words: "photos", "texts"."""
        return self.task.items


def _later(module: str, name: str) -> Callable[..., Any]:
    """A page hook of ``appkit.<module>``, imported when a page first calls it: the box and
    column pages import torch, which the Home page's first paint does not need."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"appkit.{module}"), name)(*args, **kwargs)

    return call


# the Export page's ONNX words for a detector
BOX_ONNX_WORDS = (
    "One `.onnx` file for ONNX Runtime and other languages: the whole detector (backbone, "
    "pyramid, proposals, boxes). It takes **one photo at a time, at the fixed size the run "
    "trained at** (float32 `[3, height, width]`, RGB in [0, 1]; resize the photo first: the "
    "size is in the file's metadata, `tlcore.json`) and gives `boxes` at that size, `scores` "
    "and `labels`. Boxes torchvision scores under **0.05** are not in the graph: a threshold "
    "below 0.05 finds no more. Checked box by box against PyTorch on your photos as it is "
    "written."
)


PHOTOS = TaskView(
    task=PHOTO_LABEL,
    domain=True,
    files="images",
    default_model=state.DEFAULT_MODEL,
    reads_model=lambda name: not is_text_model(name),
)
TEXTS = TaskView(
    task=TEXT_LABEL,
    files="texts",
    default_model=DEFAULT_TEXT_MODEL,
    reads_model=is_text_model,
    fixed_settings={"augment": "none", "augment_views": 0},  # no pixels to augment or resize
    settings_note="Texts: image size and augmentation do not apply (they are ignored); each "
    "text is read up to its first 128 word pieces.",
    pixels=False,
    doctor=False,  # the doctor looks at photos
    network_note="This page draws what a photo model sees (filters, feature maps). For texts, "
    "the **Evaluate** and **Predict** pages highlight the words that pushed each decision.",
    model_page=_later("text_sections", "model_page"),
    examples=_later("text_sections", "examples"),
    evaluate_sections=_later("text_sections", "evaluate_sections"),
    predict_section=_later("text_sections", "predict_section"),
    fewshot_section=_later("text_sections", "ladder_section"),
    where=_later("text_sections", "where"),
)


def _photos_of_another_shape(task: Task) -> TaskView:
    """Label columns (tlcore.runs.columns_run) and boxes (tlcore.runs.boxes_run): the photo
    pages' words; their Evaluate/Predict sections are the CLI's for now."""
    return TaskView(task=task, files="images", default_model=state.DEFAULT_MODEL,
                    reads_model=lambda name: not is_text_model(name),
                    doctor=False)  # the doctor reads one label per photo  # fmt: skip


COLUMNS = TaskView(  # several label columns per photo: appkit.column_pages
    task=PHOTO_COLUMNS, files="images", default_model=state.DEFAULT_MODEL,
    reads_model=lambda name: not is_text_model(name),
    doctor=False,  # the doctor reads one label per photo
    data_section=_later("column_pages", "data_section"),
    train_page=_later("column_pages", "train_page"),
    evaluate_page=_later("column_pages", "evaluate_page"),
    predict_page=_later("column_pages", "predict_page"),
)  # fmt: skip
TEXT_COLUMNS_VIEW = TaskView(  # several label columns per sentence: appkit.column_pages
    task=TEXT_COLUMNS, files="texts", default_model=DEFAULT_TEXT_MODEL, reads_model=is_text_model,
    fixed_settings=TEXTS.fixed_settings, pixels=False, doctor=False,
    data_section=_later("column_pages", "data_section"),
    train_page=_later("column_pages", "train_page"),
    evaluate_page=_later("column_pages", "evaluate_page"),
    predict_page=_later("column_pages", "text_predict_page"),
)  # fmt: skip


BOXES = TaskView(task=PHOTO_BOXES, files="images", default_model=state.DEFAULT_MODEL,
                 reads_model=lambda name: not is_text_model(name), doctor=False,
                 data_section=_later("box_pages", "data_section"),
                 train_page=_later("box_pages", "train_page"),
                 evaluate_page=_later("box_results", "evaluate_page"),
                 predict_page=_later("box_results", "predict_page"),
                 export_words={"onnx": BOX_ONNX_WORDS})  # boxes: appkit.box_*  # fmt: skip
VIEWS: dict[str, TaskView] = {
    view.task.key: view for view in (PHOTOS, TEXTS, COLUMNS, TEXT_COLUMNS_VIEW, BOXES)
}


def view(task: Task) -> TaskView:
    """The pages' entry for ``task``; ConfigError in words for a task this app cannot show."""
    return entry_for(VIEWS, task, "The app cannot show task {key} yet ({known}).")


def run_task(run: Run) -> Task:
    """What ``run`` learns (``Run.task``); photos when its files cannot tell (the page that
    needs them says what is wrong)."""
    try:
        return run.task
    except TLCoreError:
        return PHOTO_LABEL


def run_view(run: Run) -> TaskView:
    return view(run_task(run))
