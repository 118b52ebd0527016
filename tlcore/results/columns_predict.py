"""Every task's answer for photos: a backbone, one head per label column, thresholds, temperatures.

``ColumnsPredictor`` is what a run of several label columns (``tlcore.runs.columns_run``)
and its exported bundle both answer with: the frozen backbone embeds each photo (through
the one embedding cache for a run; directly for a bundle, which carries its backbone's
weights), the shared layer and heads (``tlcore.training.multitask.MultiHead``) give each
task's probabilities, calibrated with the task's temperature (one-of columns) or cut at
each tag's threshold (tag columns). The bundle is a ``tlcore-bundle`` whose
``model.safetensors`` is the backbone and whose ``heads.safetensors`` holds the heads,
so ``tlcore.load(bundle)`` reads it like any bundle and hands it here by its task. A table of
sentences packs the same way, with the text encoder's tokenizer and config beside it
(``encoder/``, as a text classifier's bundle: ``tlcore.results.text_predict``).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlcore.data.columns import ColumnTask
from tlcore.errors import DataError, ModelError
from tlcore.training import multitask as mt

HEADS_MEMBER = "heads.safetensors"


@dataclass
class ColumnsAnswer:
    """One photo's answer from ``predict_files`` (what ``tlcore predict BUNDLE`` prints):
    ``tasks`` per task, or ``error`` when the photo could not be read."""

    path: str
    tasks: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    unknown: bool = False  # "none of these" is not measured for label columns
    unknown_score: float | None = None

    @property
    def top(self) -> list[tuple[str, float]]:
        """Each task's answer as "task: class" with its probability (tags: each tag above)."""
        out = []
        for name, said in self.tasks.items():
            if "labels" in said:
                out += [(f"{name}: {tag}", p) for tag, p in said["probability"].items()]
            else:
                out.append((f"{name}: {said['label']}", said["probability"]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "tasks": self.tasks} if self.error is None else {
            "path": self.path, "error": self.error}  # fmt: skip


class ColumnsPredictor:
    """A backbone and one head per task; ``predict(inputs)`` answers every task for photos
    (paths) or, with a text embedder (``tlcore.training.columns_text``), for sentences."""

    def __init__(self, heads: mt.MultiHead, tasks: Sequence[ColumnTask],
                 thresholds: dict[str, list[float]], temperatures: dict[str, float],
                 backbone: torch.nn.Module, data_config: dict[str, Any], model_name: str,
                 source: str, embedder: Any = None, modality: str = "image") -> None:  # fmt: skip
        from tlcore.data.dataset import build_transform
        from tlcore.training.columns_text import TextEmbedder

        self.modality = "text" if isinstance(embedder, TextEmbedder) else modality
        self.heads, self.tasks = heads.eval(), list(tasks)
        self.thresholds, self.temperatures = dict(thresholds), dict(temperatures)
        self.backbone = backbone.eval()
        self.data_config, self.model_name, self.source = data_config, model_name, source
        self.transform = (
            build_transform(data_config, train=False) if self.modality == "image" else None
        )
        self.tokenizer = None
        if self.modality == "text":  # the embedder's, or the bundle's own (encoder/)
            from tlcore.data.text_dataset import load_tokenizer

            self.tokenizer = getattr(embedder, "tokenizer", None) or load_tokenizer(
                data_config["tokenizer"]
            )
        self.embedder = embedder  # a run's Embedder: photos through the embedding cache

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def embed(self, paths: Sequence[str]) -> torch.Tensor:
        """The backbone's pooled features of each photo (DataError for one that cannot be read),
        or of each sentence."""
        if self.modality == "text":
            if self.embedder is not None:
                return self.embedder.embed_texts([str(p) for p in paths])[0]
            from tlcore.training.columns_text import embed_texts_now

            return embed_texts_now(self.backbone, self.tokenizer,
                                   int(self.data_config["max_tokens"]), paths)  # fmt: skip
        for path in paths:
            if not Path(path).is_file():
                raise DataError(f"no photo at {path}.")
        if self.embedder is not None:
            return mt.embed_paths(self.embedder, [str(Path(p).resolve()) for p in paths])[0]
        from tlcore.training import features

        loader = torch.utils.data.DataLoader(mt.Photos(list(paths), self.transform),
                                             batch_size=32, num_workers=0)  # fmt: skip
        device = next(self.backbone.parameters()).device
        try:
            return features.embed(self.backbone, loader, device)[0].float().cpu()
        except OSError as exc:
            raise DataError(f"a photo could not be read ({exc}).") from None

    def token_ids(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentences as the model reads them, each padded to ``max_tokens`` (the export's check
        inputs: a padded sentence gives the same answer as a trimmed one)."""
        from tlcore.data.text_dataset import tokenize

        return tokenize(
            self.tokenizer, [str(t) for t in texts], int(self.data_config["max_tokens"])
        )

    def probabilities(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """Per task: calibrated softmax rows (one-of) or a sigmoid per tag (tags)."""
        kinds = {t.name: t.kind for t in self.tasks}
        return mt.predict_probs(self.heads, self.embed(paths), self.temperatures, kinds)

    def predict(self, paths: Sequence[str]) -> list[dict[str, Any]]:
        """Per photo, ``{"path", "tasks": {name: {label, probability} or {labels, probability,
        scores}}}``: the class and its probability, or the tags above their thresholds."""
        probs = self.probabilities(paths)
        return [{"path": str(path), "tasks": {t.name: self.answer(t, probs[t.name][row])
                                              for t in self.tasks}}
                for row, path in enumerate(paths)]  # fmt: skip

    unknown = None  # no "none of these" detector: every photo gets each task's answer

    @property
    def classes(self) -> list[str]:
        return [f"{t.name}: {c}" for t in self.tasks for c in t.classes]

    def predict_files(self, files: Sequence[str | Path], k: int = 1,
                      unknown_threshold: float | None = None) -> list[ColumnsAnswer]:  # fmt: skip
        """``tlcore predict BUNDLE PHOTOS``: every task's answer per photo; a photo that
        cannot be read gets its error, the others are still answered."""
        try:  # one batch through the backbone; photo by photo only when one cannot be read
            return [
                ColumnsAnswer(a["path"], a["tasks"]) for a in self.predict([str(p) for p in files])
            ]
        except (DataError, OSError):
            pass
        answers = []
        for path in files:
            try:
                answers.append(ColumnsAnswer(str(path), self.predict([str(path)])[0]["tasks"]))
            except (DataError, OSError) as exc:
                answers.append(ColumnsAnswer(str(path), error=str(exc)))
        return answers

    def predict_texts(self, texts: Sequence[str], k: int = 1) -> list[ColumnsAnswer]:
        """``tlcore predict BUNDLE "a sentence"``: every task's answer per sentence."""
        return [ColumnsAnswer(a["path"], a["tasks"]) for a in self.predict([str(t) for t in texts])]

    def answer(self, task: ColumnTask, p: np.ndarray) -> dict[str, Any]:
        if task.kind == "tags":
            cut = self.thresholds.get(task.name, [0.5] * len(task.classes))
            above = [j for j in range(len(task.classes)) if p[j] >= cut[j]]
            return {"labels": [task.classes[j] for j in above],
                    "probability": {task.classes[j]: round(float(p[j]), 4) for j in above},
                    "scores": {c: round(float(p[j]), 4) for j, c in enumerate(task.classes)}}  # fmt: skip
        best = int(p.argmax())
        return {"label": task.classes[best], "probability": round(float(p[best]), 4),
                "scores": {c: round(float(p[j]), 4) for j, c in enumerate(task.classes)}}  # fmt: skip

    # -- the bundle --------------------------------------------------------------------------
    def bundle_meta(self) -> dict[str, Any]:
        """``tlcore.json``: a valid tlcore bundle (its classes are "task: class") with the
        tasks, thresholds and temperatures, and how the model reads its input."""
        from tlcore.results.bundle_format import BUNDLE_FORMAT, FORMAT_VERSION, preprocessing

        meta = {"format": BUNDLE_FORMAT, "format_version": FORMAT_VERSION,
                "architecture": self.model_name, "modality": self.modality,
                "task": {"modality": self.modality, "target": "columns"},
                "classes": [f"{t.name}: {c}" for t in self.tasks for c in t.classes],
                "columns": {"tasks": [t.__dict__ for t in self.tasks],
                            "thresholds": self.thresholds, "temperatures": self.temperatures,
                            "heads_file": HEADS_MEMBER}}  # fmt: skip
        if self.modality == "text":
            from tlcore.results.text_predict import text_bundle_metadata

            meta.update(text_bundle_metadata(self._as_text_model()))
        else:
            meta.update(img_size=int(self.data_config["input_size"][-1]),
                        preprocessing=preprocessing(self.data_config))  # fmt: skip
        return meta

    def _as_text_model(self) -> Any:
        """What the text bundle's writers read of a text predictor (model, tokenizer, config)."""
        from types import SimpleNamespace

        return SimpleNamespace(model=self.backbone, tokenizer=self.tokenizer,
                               data_config=self.data_config)  # fmt: skip

    def write_bundle(self, folder: Path, meta: dict[str, Any], run_id: str) -> None:
        """The backbone (``model.safetensors``), the heads and ``tlcore.json`` into ``folder``;
        for sentences also the tokenizer and encoder config (``encoder/``)."""
        from tlcore.results.bundle_format import write_bundle_files

        write_bundle_files(folder, meta, _without_classifier(self.backbone), run_id)
        mt.save_heads(folder / HEADS_MEMBER, self.heads, self.tasks, self.thresholds,
                      self.temperatures)  # fmt: skip
        if self.modality == "text":
            from tlcore.results.text_predict import write_text_bundle_files

            write_text_bundle_files(self._as_text_model(), folder)

    @classmethod
    def from_bundle(cls, bundle: str | Path, device: str = "cpu") -> ColumnsPredictor:
        """A bundle folder or .zip written by ``write_bundle`` (ModelError in words if not)."""
        from safetensors.torch import load

        from tlcore.results.bundle_format import preprocessing_config, read_bundle

        meta, state = read_bundle(bundle)
        columns = meta.get("columns")
        if not isinstance(columns, dict):
            raise ModelError(f"{bundle} is not a bundle of several label columns.")
        heads_blob = _member(Path(str(bundle)), str(columns.get("heads_file", HEADS_MEMBER)))
        text = meta.get("modality") == "text"
        backbone, data_config = _text_backbone(bundle, meta) if text else _photo_backbone(meta)
        try:
            _load_without_classifier(backbone, state)
            tasks = [ColumnTask(**t) for t in columns["tasks"]]
            heads = mt.heads_from_state(_heads_fit(load(heads_blob), tasks, bundle), tasks)
            thresholds, temperatures = columns["thresholds"], columns["temperatures"]
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"{bundle} holds weights that do not fit its model ({exc}).") from None
        if not text:
            data_config = preprocessing_config(meta)
        return cls(heads, tasks, thresholds, temperatures, backbone, data_config,
                   meta["architecture"], f"bundle {bundle}",
                   modality="text" if text else "image")  # fmt: skip


def _heads_fit(state: dict[str, torch.Tensor], tasks: Sequence[ColumnTask],
               bundle: str | Path) -> dict[str, torch.Tensor]:  # fmt: skip
    """The heads' weights, checked on their shapes before a head is built: one output per
    class or tag of its task (a ``tlcore.json`` listing 100,000 classes builds nothing)."""
    for i, task in enumerate(tasks):
        weight = state.get(f"heads.t{i}.weight")
        if weight is None or int(weight.shape[0]) != len(task.classes):
            raise ModelError(f"{bundle} is not a usable bundle: the head of task "
                             f"{task.name!r} does not fit its {len(task.classes)} classes.")  # fmt: skip
    return state


def _classifier_keys(backbone: torch.nn.Module) -> set[str]:
    """The state keys of the backbone's own classifier (unused: the heads answer)."""
    head = backbone.get_classifier()
    inside = {id(p) for p in head.parameters()}
    return {k for k, v in backbone.state_dict(keep_vars=True).items() if id(v) in inside}


def _without_classifier(backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a bundle packs of the backbone: everything but its unused classifier (a bundle's
    classes are the tasks' classes, which its weights are checked against)."""
    drop = _classifier_keys(backbone)
    return {k: v for k, v in backbone.state_dict().items() if k not in drop}


def _load_without_classifier(backbone: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected or set(missing) - _classifier_keys(backbone):
        raise ValueError(f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}")


def _photo_backbone(meta: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any]]:
    from tlcore.models.factory import create_model

    backbone = create_model(meta["architecture"], None, weights="scratch")
    backbone.reset_classifier(0)  # packed without its ImageNet classifier
    return backbone, {}


def _text_backbone(bundle: str | Path, meta: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any]]:  # fmt: skip
    """The text encoder built from the bundle's own ``encoder/`` folder (no download)."""
    from tlcore.models.text_models import create_text_model
    from tlcore.results.text_predict import ENCODER_DIR, _bundle_folder

    folder = _bundle_folder(Path(str(bundle))) / ENCODER_DIR
    if not (folder / "config.json").is_file():
        raise ModelError(f"{bundle} is a text bundle without its {ENCODER_DIR}/ folder.")
    try:
        backbone = create_text_model(meta["architecture"], None, "scratch", folder=folder)
        backbone.pad_id = int(meta["text"]["pad_id"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{bundle} is not a usable text bundle ({exc}).") from None
    return backbone, {**backbone.text_config, "pad_id": backbone.pad_id,
                      "max_tokens": int(meta["text"]["max_tokens"])}  # fmt: skip


def _member(bundle: Path, name: str) -> bytes:
    """One file of a bundle folder or of a bundle .zip (its files at the top or in one folder)."""
    if Path(name).name != name:
        raise ModelError(f"{bundle}: {name!r} is not a plain file name.")
    if bundle.is_dir():
        path = bundle / name
        if not path.is_file():
            raise ModelError(f"{bundle} is not a usable bundle: {name} is missing.")
        return path.read_bytes()
    from tlcore.data.archive import read_member_safely

    with zipfile.ZipFile(bundle) as zf:
        names = [n for n in zf.namelist() if Path(n).name == name and n.count("/") <= 1]
        if not names:
            raise ModelError(f"{bundle} is not a usable bundle: {name} is missing.")
        return read_member_safely(zf, names[0])


def read_metrics(bundle: str | Path) -> dict[str, Any]:
    """The measured numbers per task a bundle carries (its ``tlcore.json`` ``metrics``)."""
    path = Path(str(bundle))
    raw = _member(path, "tlcore.json")
    return json.load(io.BytesIO(raw)).get("metrics", {})
