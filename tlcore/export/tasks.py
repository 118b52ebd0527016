"""What an export carries for each task: one entry per ``Task.key`` (``tlcore.data.task``).

A photo model and a text model travel the same way (a bundle with its model card,
ONNX and TorchScript checked against PyTorch); what differs is said once here: the
formats offered, the real inputs a graph is checked on, the model card, the files and
``tlcore.json`` keys a bundle adds, and the name and axes of the graph's input. The
words ("photos", "texts") are the task's own (``Task.items``). An export function looks
its task up once (``Run.task`` for a run, ``model_task`` for a predictor or a bundle's
``tlcore.json``) and reads the entry; adding a task adds one entry to ``EXPORT_TASKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.data.task import Task, entry_for
from tlcore.errors import ConfigError
from tlcore.export.check_inputs import photos_to_check, texts_to_check
from tlcore.export.model_card import model_card
from tlcore.export.text_model_card import text_model_card

if TYPE_CHECKING:
    import torch

    from tlcore.results.predict import Predictor
    from tlcore.runs.run import Run


@dataclass(frozen=True)
class ExportTask:
    """What exporting a model of one task needs."""

    formats: tuple[str, ...]  # of tlcore.export.exporter.FORMATS, in the order pages show them
    refused: str  # said when a format not in ``formats`` is asked for
    check_inputs: Callable[[Run, Any, int], torch.Tensor]  # (run, predictor, limit)
    model_card: Callable[[dict[str, Any]], str]  # the bundle's README.md from its tlcore.json
    bundle_meta: Callable[[Predictor], dict[str, Any]]  # keys tlcore.json adds
    bundle_files: Callable[[Predictor, Path], None]  # files beside the weights
    input_name: str  # the ONNX graph's input
    input_axes: Mapping[int, str]  # its dynamic axes


def _nothing_to_add(predictor: Predictor) -> dict[str, Any]:
    return {}


def _no_files(predictor: Predictor, folder: Path) -> None:
    return None


def _columns_card(meta: dict[str, Any]) -> str:
    raise ConfigError("a run of several label columns cannot be exported yet (a bundle "
                      "and ONNX with one output per task are not written); predict with "
                      "`tlcore predict RUN PHOTO`.")  # fmt: skip


def _boxes_card(meta: dict[str, Any]) -> str:
    raise ConfigError("a detection run cannot be exported yet (its bundle and an ONNX file "
                      "checked against PyTorch are not written); predict with "
                      "`tlcore predict RUN PHOTO`.")  # fmt: skip


def _text_meta(predictor: Predictor) -> dict[str, Any]:
    """The modality and how texts become token ids (``tlcore.results.text_predict``)."""
    from tlcore.results.text_predict import text_bundle_metadata

    return text_bundle_metadata(predictor)  # type: ignore[arg-type]


def _text_files(predictor: Predictor, folder: Path) -> None:
    """The tokenizer and encoder config, so the bundle loads offline."""
    from tlcore.results.text_predict import write_text_bundle_files

    write_text_bundle_files(predictor, folder)  # type: ignore[arg-type]


def _not_exported_yet(card: Callable[..., str], what: str) -> ExportTask:
    """A photo task whose export is not written yet: its card, every other format refused."""
    return ExportTask(formats=("bundle",), check_inputs=photos_to_check, model_card=card,
                      refused=f"{what} cannot be exported as ONNX, TorchScript or train.py yet.",
                      bundle_meta=_nothing_to_add, bundle_files=_no_files, input_name="image",
                      input_axes={0: "batch"})  # fmt: skip


EXPORT_TASKS: dict[str, ExportTask] = {
    "image-label": ExportTask(
        formats=("bundle", "onnx", "torchscript", "script"),
        refused="",
        check_inputs=photos_to_check,
        model_card=model_card,
        bundle_meta=_nothing_to_add,
        bundle_files=_no_files,
        input_name="image",
        input_axes={0: "batch"},
    ),
    "text-label": ExportTask(
        formats=("bundle", "onnx", "torchscript"),  # train.py is written for photos
        refused="The standalone train.py is written for photo runs; export a text run as a "
        "bundle or ONNX.",
        check_inputs=texts_to_check,
        model_card=text_model_card,
        bundle_meta=_text_meta,
        bundle_files=_text_files,
        input_name="input_ids",  # int64 [batch, tokens], padded with the tokenizer's pad id
        input_axes={0: "batch", 1: "tokens"},  # texts differ in length too
    ),
    # not written yet: the bundle is refused in words when its model is loaded (results wing)
    "image-columns": _not_exported_yet(_columns_card, "A run of several label columns"),
    "image-boxes": _not_exported_yet(_boxes_card, "A detection run"),
}


def export_task(task: Task) -> ExportTask:
    """The entry for ``task``; ConfigError in words for a task this version cannot export."""
    return entry_for(EXPORT_TASKS, task, "this version of tlcore cannot export a {key} model "
                     "(it exports {known}); update tlcore to export it.")  # fmt: skip


def model_task(model: Predictor | Mapping[str, Any]) -> Task:
    """The task of a ``Predictor`` or of a bundle's ``tlcore.json``: its ``modality``
    (absent: photos, as in every bundle written before text models)."""
    if isinstance(model, Mapping):
        modality = model.get("modality")
    else:
        modality = getattr(model, "modality", None)
    return Task(str(modality or "image"), "label")


def offered_formats(run: Run) -> tuple[str, ...]:
    """The formats a run can be exported as (the Export page shows these)."""
    return export_task(run.task).formats
