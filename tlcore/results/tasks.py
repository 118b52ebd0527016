"""What ``tlcore.results`` needs of each task: what the model reads of an item, and its words.

One entry per ``tlcore.data.task.TASKS`` key; ``results_task(task)`` is the lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.data.task import Task, entry_for, refused

if TYPE_CHECKING:
    from torch import nn

    from tlcore.results.predict import Predictor
    from tlcore.results.text_predict import TextPredictor
    from tlcore.training.config import TrainConfig


def _photo_predictor(model: nn.Module, classes: list[str], config: TrainConfig, source: str,
                     device: str) -> Predictor:  # fmt: skip
    from tlcore.results.predict import Predictor

    return Predictor(model, classes, config.img_size, model_name=config.model,
                     weights=config.weights, source=source, device=device)  # fmt: skip


def _text_predictor(model: nn.Module, classes: list[str], config: TrainConfig, source: str,
                    device: str) -> TextPredictor:  # fmt: skip
    from tlcore.results.text_predict import TextPredictor

    return TextPredictor(model, classes, config.max_tokens, model_name=config.model,
                         weights=config.weights, source=source, device=device)  # fmt: skip


def _photo_bundle(bundle: str | Path, device: str) -> Predictor:
    from tlcore.results.predict import Predictor

    return Predictor.from_bundle(bundle, device=device)


def _text_bundle(bundle: str | Path, device: str) -> TextPredictor:
    from tlcore.results.text_predict import TextPredictor

    return TextPredictor.from_text_bundle(bundle, device=device)


def _boxes_bundle(bundle: str | Path, device: str) -> Any:
    from tlcore.results.box_predict import BoxPredictor

    return BoxPredictor.from_bundle(bundle, device=device)


def _columns_bundle(bundle: str | Path, device: str) -> Any:
    from tlcore.results.columns_predict import ColumnsPredictor

    return ColumnsPredictor.from_bundle(bundle, device=device)


@dataclass(frozen=True)
class ResultsTask:
    """``model_input`` turns a manifest item into what the Predictor reads (a photo's path,
    a text's sentence); ``predictor`` wraps a trained model (model, classes, TrainConfig,
    source, device); ``has_unknown`` says whether "none of these" is measured for it;
    ``best_is`` says which epoch the "best" checkpoint is (the Evaluate/Predict pages' words)."""

    model_input: Callable[[Any], str]
    predictor: Callable[[Any, list[str], Any, str, str], Any]
    load_bundle: Callable[[str | Path, str], Any]  # an exported bundle's Predictor (path, device)
    has_unknown: bool
    items: str
    best_is: str = "highest validation accuracy"


RESULTS_TASKS: dict[str, ResultsTask] = {
    "image-label": ResultsTask(
        model_input=lambda item: item.path,
        predictor=_photo_predictor,
        load_bundle=_photo_bundle,
        has_unknown=True,
        items="photos",
    ),  # fmt: skip
    # "none of these" would need outside texts to measure it on: the temperature only
    "text-label": ResultsTask(
        model_input=lambda item: item.text or "",
        predictor=_text_predictor,
        load_bundle=_text_bundle,
        has_unknown=False,
        items="texts",
    ),  # fmt: skip
    "image-columns": ResultsTask(  # a run answers through tlcore.runs.columns_run
        model_input=lambda item: item.path,
        predictor=refused(
            "A run of several label columns answers every task with "
            "`tlcore predict RUN PHOTO` (tlcore.runs.columns_run), not as a "
            "single-label Predictor."
        ),  # fmt: skip
        load_bundle=_columns_bundle,
        has_unknown=False,
        items="photos",
    ),
    "text-columns": ResultsTask(  # sentences with several label columns: the same run
        model_input=lambda item: item.text or "",
        predictor=refused(
            "A run of several label columns answers every task with "
            "`tlcore predict RUN TEXT` (tlcore.runs.columns_run)."
        ),  # fmt: skip
        load_bundle=_columns_bundle,  # the tokenizer travels in the bundle (encoder/)
        has_unknown=False,
        items="texts",
    ),
    "image-boxes": ResultsTask(  # a run draws boxes through tlcore.runs.boxes_run
        model_input=lambda item: item.path,
        predictor=refused(
            "A detection run draws boxes on the Predict page or with `tlcore predict RUN "
            "PHOTO`, and is scored by `tlcore evaluate RUN` (tlcore.runs.boxes_run, "
            "tlcore.results.box_evaluation); it has no single-label Predictor."
        ),  # fmt: skip
        load_bundle=_boxes_bundle,  # a detector bundle: tlcore.results.box_predict
        has_unknown=False,
        items="photos",
        best_is="highest validation mAP@0.5",
    ),
}


def results_task(task: Task) -> ResultsTask:
    return entry_for(RESULTS_TASKS, task, "Results for task {key} are not known to this "
                     "version (it knows {known}).")  # fmt: skip


def bundle_task(meta: Mapping[str, Any]) -> Task:
    """The task of an exported bundle, from its ``tlcore.json``: its ``task`` block, else its
    ``modality`` (absent: photos, as in every bundle written before text models)."""
    block = meta.get("task")
    if isinstance(block, Mapping):
        return Task.from_dict(block)
    return Task(str(meta.get("modality") or "image"), "label")
