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
    # a task with its own model and files (detection): (fmt, run, checkpoint, stage, steps)
    # -> (artifact, check or None, details), built instead of the Predictor's export
    build: Callable[..., tuple[Path, Any, dict[str, Any]]] | None = None


def _nothing_to_add(predictor: Predictor) -> dict[str, Any]:
    return {}


def _no_files(predictor: Predictor, folder: Path) -> None:
    return None


def _columns_card(meta: dict[str, Any]) -> str:
    from tlcore.export.columns_export import columns_model_card

    return columns_model_card(meta)


def _columns_build(fmt: str, run: Run, checkpoint: str, stage: Path, steps: Any) -> tuple[Path, Any, dict[str, Any]]:  # fmt: skip
    """A bundle with one head per task, or ONNX with one output per task checked against
    PyTorch (``tlcore.export.columns_export``)."""
    from tlcore.export.columns_export import build_columns_export

    return build_columns_export(fmt, run, checkpoint, stage, steps, export_task(run.task))


def _boxes_card(meta: dict[str, Any]) -> str:
    from tlcore.export.box_bundle import box_model_card

    return box_model_card(meta)


def _boxes_build(fmt: str, run: Run, checkpoint: str, stage: Path, steps: Any) -> tuple[Path, Any, dict[str, Any]]:  # fmt: skip
    """A detector's bundle or checked ONNX file (``tlcore.export.box_export``)."""
    from tlcore.export.box_export import build_box_export

    return build_box_export(fmt, run, checkpoint, stage, steps)


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
    # their own model and files: ``build`` writes them (tlcore.export.exporter._task_build)
    "image-columns": ExportTask(
        formats=("bundle", "onnx"),
        refused="A run of several label columns is exported as a bundle or ONNX (one output "
        "per task); TorchScript and the standalone train.py are not written for it.",
        check_inputs=photos_to_check,  # not used: build checks on the run's photos itself
        model_card=_columns_card,
        bundle_meta=_nothing_to_add,
        bundle_files=_no_files,
        input_name="image",
        input_axes={0: "batch"},
        build=_columns_build,
    ),
    "text-columns": ExportTask(  # the same build: the tokenizer in the bundle, ids into ONNX
        formats=("bundle", "onnx"),
        refused="A run of sentences with several label columns is exported as a bundle or "
        "ONNX (one output per task); TorchScript and the standalone train.py are not written "
        "for it.",
        check_inputs=texts_to_check,  # not used: build checks on the run's sentences itself
        model_card=_columns_card,
        bundle_meta=_nothing_to_add,
        bundle_files=_no_files,
        input_name="input_ids",  # int64 [batch, tokens], padded with the tokenizer's pad id
        input_axes={0: "batch", 1: "tokens"},
        build=_columns_build,
    ),
    "image-boxes": ExportTask(
        formats=("bundle", "onnx"),
        refused="A detection run is exported as a bundle or ONNX; TorchScript and the "
        "standalone train.py are not written for detectors.",
        check_inputs=photos_to_check,  # not used: build checks on the run's photos itself
        model_card=_boxes_card,
        bundle_meta=_nothing_to_add,
        bundle_files=_no_files,
        input_name="image",  # float32 [3, height, width] at the training size
        input_axes={},  # one photo of a fixed size (tlcore.export.box_onnx)
        build=_boxes_build,
    ),
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
