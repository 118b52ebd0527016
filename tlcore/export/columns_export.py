"""A run of several label columns packed to travel: a bundle, or ONNX with one output per task.

Photos and sentences share this code ("image-columns" and "text-columns"): the bundle
(``ColumnsPredictor.write_bundle``: the backbone, the heads, ``tlcore.json`` with the tasks,
thresholds and temperatures; for sentences the tokenizer too) adds a model card with a section
per task holding the numbers measured on the run's validation items; ``tlcore.load`` reads it
back and answers as the run does. The ONNX graph takes a batch of preprocessed photos (or token
ids, as the task's ``EXPORT_TASKS`` entry names the input) and gives one output per task
(calibrated probabilities, or a probability per tag); it is run with onnxruntime on the run's
own items and compared with PyTorch, per task, before it is handed over (a graph that differs
is never published: ``tlcore.export.exporter``).
"""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcore.data.markdown import md
from tlcore.errors import DataError, ModelError
from tlcore.export.format_check import FormatCheck
from tlcore.results.columns_predict import ColumnsPredictor
from tlcore.runs.run import Run

CHECK_PHOTOS = 8
METADATA_KEY = "tlcore.json"
TOLERANCE = 1e-4  # as every graph tlcore hands over (tlcore.export.graph_export)
ONNX_OPSET = 17


def _required(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(f"{purpose} needs the Python package '{module}', which is not "
                         f"installed: pip install {module}") from None  # fmt: skip


class ColumnsGraph(nn.Module):
    """Photo (or token ids) -> backbone -> shared layer -> per task: softmax(logits / T) or a
    sigmoid per tag."""

    def __init__(self, predictor: ColumnsPredictor) -> None:
        super().__init__()
        self.backbone, self.heads = predictor.backbone, predictor.heads
        self.kinds = [t.kind for t in predictor.tasks]
        self.register_buffer("temperatures", torch.tensor(
            [float(predictor.temperatures.get(t.name, 1.0)) for t in predictor.tasks]))  # fmt: skip

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled = self.backbone.forward_head(self.backbone.forward_features(inputs), pre_logits=True)
        logits = self.heads(pooled.float())
        out = []
        for i, name in enumerate(self.heads.names):
            if self.kinds[i] == "tags":
                out.append(torch.sigmoid(logits[name]))
            else:
                out.append(torch.softmax(logits[name] / self.temperatures[i], 1))
        return tuple(out)


def output_names(tasks: list[str]) -> list[str]:
    """One plain, distinct graph output name per task (the task's name, made safe)."""
    names: list[str] = []
    for name in tasks:
        safe = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "task"
        candidate, n = safe, 2
        while candidate in names:
            candidate, n = f"{safe}_{n}", n + 1
        names.append(candidate)
    return names


def build_columns_export(fmt: str, run: Run, checkpoint: str, stage: Path, steps: Any,
                         exported: Any) -> tuple[Path, FormatCheck | None, dict[str, Any]]:  # fmt: skip
    """``ExportTask.build`` of "image-columns" and "text-columns" (``exported``: the task's
    ``EXPORT_TASKS`` entry): (the bundle folder or ONNX file, its check, the measured numbers
    per task)."""
    from tlcore.runs.columns_run import columns_predictor, evaluate_columns, fine_tunes

    items = run.task.items
    steps.start(f"scoring the validation {items} per task")
    report = evaluate_columns(run)
    metrics = {name: {k: v for k, v in entry.items() if isinstance(v, int | float)}
               for name, entry in report["tasks"].items()}  # fmt: skip
    predictor = columns_predictor(run)
    predictor.backbone = predictor.backbone.cpu().float()
    if predictor.modality == "image":
        predictor.backbone.reset_classifier(0)  # pooled features only: the heads answer
    predictor.embedder = None  # items through the packed backbone, as the bundle will
    meta = predictor.bundle_meta()
    meta.update(run_id=run.id, metrics=metrics, validation_items=report["items"],
                groups=report.get("groups", {}), items=items)  # fmt: skip
    if fine_tunes(run.config):
        from tlcore.models.freezing import FreezePlan

        meta["fine_tuned"] = FreezePlan.from_dict(run.config.freeze).label()
    if fmt == "bundle":
        steps.start("writing the files")
        folder = stage / "bundle"
        predictor.write_bundle(folder, meta, run.id)
        (folder / "README.md").write_text(columns_model_card(meta), encoding="utf-8")
        return folder, None, {"metrics": metrics}
    steps.start("writing the ONNX file and checking it against PyTorch, per task")
    inputs = inputs_to_check(run, predictor, CHECK_PHOTOS)
    path = stage / "model.onnx"
    check = export_columns_onnx(predictor, inputs, path, meta, exported)
    return path, check, {"metrics": metrics}


def inputs_to_check(run: Run, predictor: ColumnsPredictor, limit: int) -> torch.Tensor:
    """Up to ``limit`` of the run's own items as the graph reads them: preprocessed photos
    that still exist, or sentences as token ids (validation first)."""
    from tlcore.runs.columns_run import columns_data

    if predictor.modality == "text":
        data = columns_data(run)
        texts = [item.text or "" for item in data.items_for("val") + data.items_for("train")]
        return predictor.token_ids(texts[:limit])
    return torch.stack([_preprocessed(predictor, p) for p in photos_to_check(run, limit)])


def photos_to_check(run: Run, limit: int) -> list[str]:
    """Up to ``limit`` of the run's photos that still exist, validation first."""
    from tlcore.runs.columns_run import columns_data

    data = columns_data(run)
    items = data.items_for("val") + data.items_for("train")
    photos = [item.path for item in items if Path(item.path).is_file()][:limit]
    if not photos:
        raise DataError(f"cannot check the export on real photos: none of run {run.id}'s photos "
                        "can be read any more. Put the table's folder back, then export.")  # fmt: skip
    return photos


def _preprocessed(predictor: ColumnsPredictor, path: str) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as image:
        return predictor.transform(image.convert("RGB"))


@torch.no_grad()
def export_columns_onnx(predictor: ColumnsPredictor, images: torch.Tensor, path: Path,
                        meta: dict[str, Any], exported: Any) -> FormatCheck:  # fmt: skip
    """Write the graph (one output per task, the tasks in its metadata; its input named and
    shaped as the task's ``exported`` entry says) and compare it with PyTorch on ``images``
    (photos or token ids) in batches of 1 and all: every output's largest difference, the
    same class per one-of task and the same tags above their thresholds."""
    onnx = _required("onnx", "ONNX export")
    ort = _required("onnxruntime", "Checking the ONNX export")
    graph = ColumnsGraph(predictor).eval()
    names = output_names(predictor.task_names)
    with warnings.catch_warnings():  # the TorchScript-based exporter warns it is deprecated
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (images[:2],), str(path), input_names=[exported.input_name],
                          output_names=names, opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={exported.input_name: dict(exported.input_axes),
                                        **{n: {0: "batch"} for n in names}})  # fmt: skip
    model = onnx.load(str(path))
    described = {**meta, "outputs": dict(zip(names, predictor.task_names, strict=True))}
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(described)
    onnx.save(model, str(path))

    started = time.monotonic()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = [o.numpy() for o in graph(images)]
    sizes = [1, len(images)] if len(images) > 1 else [1]
    worst, same = 0.0, True
    for size in sizes:
        got = [[] for _ in names]
        for start in range(0, len(images), size):
            outs = session.run(names, {exported.input_name: images[start : start + size].numpy()})
            for i, out in enumerate(outs):
                got[i].append(out)
        for i, task in enumerate(predictor.tasks):
            import numpy as np

            ours, theirs = np.concatenate(got[i]), expected[i]
            worst = max(worst, float(np.abs(ours - theirs).max()))
            if task.kind == "tags":
                cut = np.asarray(predictor.thresholds.get(task.name, [0.5] * len(task.classes)))
                same &= bool(((ours >= cut) == (theirs >= cut)).all())
            else:
                same &= bool((ours.argmax(1) == theirs.argmax(1)).all())
    passed = worst <= TOLERANCE and same
    verdict = "matches" if passed else "does NOT match"
    summary = (f"onnxruntime {verdict} PyTorch on {len(images)} real "
               f"{'sentences' if predictor.modality == 'text' else 'photos'} (batches of "
               f"{' and '.join(map(str, sizes))}), one output per task "
               f"({', '.join(predictor.task_names)}): largest probability difference "
               f"{worst:.1e} (limit {TOLERANCE:.0e}), "
               f"{'the same' if same else 'a DIFFERENT'} answer for every task and photo.")  # fmt: skip
    return FormatCheck(format="onnx", runtime="onnxruntime", images=len(images), batch_sizes=sizes,
                       max_abs_diff=worst, tolerance=TOLERANCE, same_top_class=same, passed=passed,
                       seconds=time.monotonic() - started, summary=summary)  # fmt: skip


def columns_model_card(meta: dict[str, Any]) -> str:
    """The bundle's README.md: what it answers and, per task, the numbers measured on the
    run's validation photos (task and class names are the user's: escaped)."""
    columns = meta.get("columns", {})
    items = str(meta.get("items") or ("texts" if meta.get("modality") == "text" else "photos"))
    item = "sentence" if items == "texts" else "photo"
    if meta.get("modality") == "text":
        reads = (
            f"Encoder {md(meta.get('architecture', ''))} (sentences up to "
            f"{(meta.get('text') or {}).get('max_tokens', '?')} word pieces)"
        )
        example = '`.predict(["a sentence"])`'
    else:
        reads = f"Backbone {md(meta.get('architecture', ''))} at {meta.get('img_size')} px"
        example = '`.predict(["photo.jpg"])`'
    if meta.get("fine_tuned"):
        how = (f"fine-tuned ({md(meta['fine_tuned'])}) together with one shared layer and one "
               f"head per task, end to end on the {items}")  # fmt: skip
    else:
        how = "frozen; one shared layer and one head per task, trained on the cached embeddings"
    lines = [f"# Several labels per {item}: {len(columns.get('tasks', []))} tasks, one model", "",
             f"{reads}, {how} (run {md(meta.get('run_id', ''))}).", "",
             f"Load it with `tlcore.load(\"bundle.zip\")` and call {example}.", ""]  # fmt: skip
    groups = meta.get("groups") or {}
    scored = f"{meta.get('validation_items', '?')} validation {items}"
    if groups:
        scored += (f" (whole groups: {groups.get('train', 0)} in training, "
                   f"{groups.get('val', 0)} in validation)")  # fmt: skip
    for task in columns.get("tasks", []):
        name = task["name"]
        numbers = meta.get("metrics", {}).get(name, {})
        lines += [f"## {md(name)}", ""]
        if task["kind"] == "tags":
            cut = columns.get("thresholds", {}).get(name, [])
            lines.append(f"Tags (any number per {item}, separated by '{md(task.get('separator') or '')}'"
                         f"): {', '.join(md(c) for c in task['classes'])}.")  # fmt: skip
            lines.append("")
            lines.append(f"Measured on {scored}: mean average precision "
                         f"{_num(numbers.get('map'))}, micro-F1 {_num(numbers.get('micro_f1'))} "
                         f"at the thresholds below (chosen per tag on the same {items}).")  # fmt: skip
            lines.append("")
            lines += ["| tag | threshold |", "| --- | --- |"]
            lines += [f"| {md(c)} | {t:.3f} |" for c, t in zip(task["classes"], cut, strict=False)]
        else:
            temp = columns.get("temperatures", {}).get(name, 1.0)
            lines.append(f"One of: {', '.join(md(c) for c in task['classes'])}.")
            lines.append("")
            lines.append(f"Measured on {scored}: accuracy {_num(numbers.get('accuracy'))}, "
                         f"macro-F1 {_num(numbers.get('macro_f1'))}; probabilities calibrated "
                         f"with temperature {temp:.2f}.")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3f}"
