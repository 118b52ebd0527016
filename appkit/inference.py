"""Trained models for the Evaluate and Predict pages, loaded once and shared.

A checkpoint is read from disk once per (run, checkpoint, file time) and kept
with ``st.cache_resource``: a finished checkpoint never changes, and when a
running run writes a new best the file time changes and the next call loads
it. No model in training is ever cached here; these are read-only copies.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import streamlit as st

from appkit import state
from tlcore.data.manifest import Manifest
from tlcore.errors import TLCoreError
from tlcore.results.evaluation import EvaluationReport
from tlcore.results.explain import CamResult, embedding_map, gradcam, map_rows
from tlcore.results.predict import Predictor, read_upload
from tlcore.results.tasks import results_task
from tlcore.runs.checkpoint_model import checkpoint_stamp as runs_checkpoint_stamp
from tlcore.runs.outputs import validation_outputs
from tlcore.runs.run import Run, list_runs
from tlcore.runs.scoring import evaluate_run, load_predictor, store_evaluation, stored_evaluation
from tlcore.training.checkpoints import checkpoint_paths


def checkpoint_label(run: Run, checkpoint: str) -> str:
    """ "Best epoch (highest validation mAP@0.5)": what "best" means is the run's task's."""
    if checkpoint != "best":
        return "Last epoch"
    try:
        return f"Best epoch ({results_task(run.task).best_is})"
    except TLCoreError:
        return "Best epoch"


def has_checkpoint(run: Run, checkpoint: str = "last") -> bool:
    return checkpoint_paths(run.checkpoints_dir, checkpoint)[0].is_file()


def checkpoint_stamp(run: Run, checkpoint: str) -> tuple[int, int]:
    """Changes when the worker replaces the file, so caches reload a newer best model
    (tlcore's stamp as a cache key; (0, 0) while there is none)."""
    stamp = runs_checkpoint_stamp(run, checkpoint) or {}
    return stamp.get("size", 0), stamp.get("mtime_ns", 0)


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=3)
def _predictor(run_dir: str, checkpoint: str, stamp: tuple[int, int]) -> Predictor:
    return load_predictor(Run(Path(run_dir)), checkpoint=checkpoint)


def predictor(run: Run, checkpoint: str) -> Predictor:
    return _predictor(str(run.dir), checkpoint, checkpoint_stamp(run, checkpoint))


@st.cache_data(show_spinner="Scoring every validation image…", max_entries=8)
def _evaluation(run_dir: str, checkpoint: str, stamp: tuple[int, int]) -> EvaluationReport:
    run = Run.open(run_dir)
    report = evaluate_run(run, checkpoint)  # from the kept validation outputs (one pass)
    if not is_training(run):  # a run from before scores were kept: keep this one for next time
        with contextlib.suppress(OSError):
            store_evaluation(run, checkpoint, report)
    return report


def evaluation(run: Run, checkpoint: str, stamp: tuple[int, int] | None = None) -> EvaluationReport:
    """The score the worker kept when the run finished; else scored here, once per saved
    model. ``stamp`` pins the model a training run had saved when the user asked, so
    later epochs do not trigger a new scoring on every visit."""
    if stamp is None:
        stored = stored_evaluation(run, checkpoint)
        if stored is not None:
            return stored
        stamp = checkpoint_stamp(run, checkpoint)
    return _evaluation(str(run.dir), checkpoint, stamp)


@st.cache_data(show_spinner="Looking at the photo…", max_entries=64)
def _explained(
    run_dir: str, checkpoint: str, stamp: tuple[int, int], name: str, data: bytes
) -> tuple[Any, list[float], CamResult | None, str]:
    predictor = _predictor(run_dir, checkpoint, stamp)
    image = read_upload(name, data)
    try:
        cam = gradcam(predictor, image)  # its forward pass gives the probabilities too
    except TLCoreError as exc:
        return image, predictor.predict([image])[0].tolist(), None, str(exc)
    return image, cam.probabilities, cam, ""


def explained_photo(
    run: Run, checkpoint: str, name: str, data: bytes
) -> tuple[Any, list[float], CamResult | None, str]:
    """(photo, probability of every class, Grad-CAM or None, why none), once per photo and
    model: moving a slider or adding a photo does not run the model on the others again."""
    return _explained(str(run.dir), checkpoint, checkpoint_stamp(run, checkpoint), name, data)


def is_training(run: Run) -> bool:
    try:
        return run.status().get("state") in ("queued", "running")
    except TLCoreError:
        return False


@st.cache_data(show_spinner="Embedding the validation images…", max_entries=8)
def _embedding(
    run_dir: str, checkpoint: str, stamp: tuple[int, int], pretrained: bool
) -> list[dict]:
    run = Run.open(run_dir)
    manifest = Manifest.load(run.manifest_path)
    items = manifest.items_for("val") or manifest.items_for("train")
    paths = [it.path for it in items]
    labels = [manifest.classes[it.label] for it in items]
    if not pretrained and manifest.items_for("val"):  # the features kept when it was scored
        return map_rows(validation_outputs(run, checkpoint).features, labels, paths)
    model = _predictor(run_dir, checkpoint, stamp)
    return embedding_map(model, paths, labels, pretrained=pretrained)


def embedding(run: Run, checkpoint: str, pretrained: bool) -> list[dict[str, Any]]:
    return _embedding(str(run.dir), checkpoint, checkpoint_stamp(run, checkpoint), pretrained)


def validation_images(run: Run) -> list[tuple[str, str]]:
    """(path, true class) of the run's validation images, for "try a known photo"."""
    manifest = Manifest.load(run.manifest_path)
    return [(it.path, manifest.classes[it.label]) for it in manifest.items_for("val")]


def pick_run(key: str) -> tuple[Run, str] | None:
    """Run and checkpoint selectors; the run followed in the sidebar comes first.

    Shows a hint and returns None when no run has a saved model yet.
    """
    runs = [r for r in list_runs(state.runs_owner()) if has_checkpoint(r, "last")]
    if not runs:
        st.info("No trained model yet: train one on the **4 · Train** page, then come back here.")
        return None
    ids = [r.id for r in runs]
    active = state.get("run_id")
    left, right = st.columns([3, 2])
    picked = left.selectbox(
        "Trained run", ids, index=ids.index(active) if active in ids else 0, key=f"{key}_run"
    )
    run = runs[ids.index(picked)]
    options = [c for c in ("best", "last") if has_checkpoint(run, c)]
    checkpoint = right.radio(
        "Model", options, format_func=lambda c: checkpoint_label(run, c), horizontal=True,
        key=f"{key}_ckpt",
    )  # fmt: skip
    try:
        status = run.status()
    except TLCoreError:
        status = {}
    if status.get("state") in ("queued", "running"):
        st.caption("This run is still training: the numbers are for the model saved so far.")
    return run, checkpoint or options[0]
