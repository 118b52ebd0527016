"""Export a trained run: a bundle, ONNX, TorchScript, or a script that retrains it.

``export_run`` is the one entry point the CLI (``tlcore export``) and the Export
page share. Each format is built in a hidden folder next to the destination and
moved into place at the end, so a failed or interrupted export never leaves a
half-written file where a good one (or nothing) was; a destination that exists
is only replaced when asked. ONNX and TorchScript files are checked against the
PyTorch model on the run's own photos before they are handed over
(``tlcore.export.graph_export``).

The page keeps its exports in ``<run>/exports/`` with their check results in
``exports.json`` (``export_into_run`` / ``recorded_exports``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.data.progress import ProgressCallback, Steps
from tlcore.errors import ConfigError, ModelError, TLCoreError
from tlcore.export.formats import FILE_NAMES, FORMATS
from tlcore.export.ownership import check_replaceable, mark_export
from tlcore.export.tasks import export_task, model_task
from tlcore.runs.scoring import load_predictor
from tlcore.runs.trust_store import ensure_trust

EXPORTS_DIR = "exports"
RESULTS_FILE = "exports.json"
FORMAT_NAMES = {"bundle": "bundle", "onnx": "ONNX", "torchscript": "TorchScript",
                "script": "training script"}  # fmt: skip
STEPS = {"bundle": 3, "onnx": 3, "torchscript": 3, "script": 2}  # as _build starts them
CHECK_IMAGES = 8
OUTSIDE_CHECK_IMAGES = 4
_STORED_SUFFIXES = (".safetensors", ".pt", ".png")  # already dense: zip would only cost time

if TYPE_CHECKING:
    import torch

    from tlcore.data.task import Task
    from tlcore.export.format_check import FormatCheck
    from tlcore.results.predict import Predictor
    from tlcore.runs.run import Run


@dataclass
class ExportResult:
    """What was written where, and for ONNX/TorchScript how well it matches PyTorch."""

    format: str
    path: str
    size_bytes: int
    run_id: str
    checkpoint: str
    check: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def check_passed(self) -> bool | None:
        return None if self.check is None else bool(self.check["passed"])

    def text(self) -> str:
        """What the CLI prints and the page shows."""
        size = self.size_bytes / 1e6
        lines = [
            f"Wrote {self.format} of run {self.run_id} ({self.checkpoint}) to {self.path} ({size:.1f} MB)."
        ]
        if self.check is not None:
            from tlcore.export.format_check import FormatCheck

            lines.append(
                ("Check passed: " if self.check_passed else "CHECK FAILED: ")
                + FormatCheck(**self.check).text()
            )
        return "\n".join(lines)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def zip_folder(folder: Path, out: Path) -> Path:
    """The files of ``folder`` at the top of a zip (weights stored, text compressed)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stored = path.suffix.lower() in _STORED_SUFFIXES
            zf.write(path, path.relative_to(folder).as_posix(),
                     compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)  # fmt: skip
    return out


def check_images(run: Run, predictor: Predictor, limit: int = CHECK_IMAGES) -> torch.Tensor:
    """Up to ``limit`` of the run's own photos or sentences (validation first), prepared as
    for prediction: what its task checks an exported graph on (``tlcore.export.tasks``)."""
    return export_task(run.task).check_inputs(run, predictor, limit)


def with_outside_photos(run: Run, predictor: Predictor, images: torch.Tensor) -> torch.Tensor:
    """The check photos plus a few of a sample with none of the run's classes (the unknowns)."""
    import torch

    from tlcore.runs.trust_store import reference_photos

    paths, _ = reference_photos(run, limit=OUTSIDE_CHECK_IMAGES)
    outside = []
    for path in paths:
        try:
            outside.append(predictor.preprocess(path))
        except TLCoreError:
            continue
    return torch.cat([images, torch.stack(outside)]) if outside else images


def _build(
    fmt: str,
    run: Run,
    task: Task,
    checkpoint: str,
    predictor: Predictor,
    stage: Path,
    zipped: bool,
    steps: Steps,
) -> tuple[Path, FormatCheck | None, dict]:
    """Write the artifact inside ``stage``; (its path, FormatCheck or None, details)."""
    from tlcore.export import graph_export
    from tlcore.export.bundle import model_metadata, write_bundle
    from tlcore.export.reproduce import write_reproduction
    from tlcore.export.trusted_graph import with_trust

    if fmt == "bundle":
        steps.start(f"scoring the validation {task.items}")
        meta = write_bundle(run, checkpoint, predictor, stage / "bundle", steps.part(),
                            writing=lambda: steps.start("writing the files"))  # fmt: skip
        mark_export(stage / "bundle", "bundle")  # what --force may replace later
        details = {
            "metrics": {k: meta["metrics"].get(k) for k in ("images", "accuracy", "macro_f1")}
        }
        if zipped:
            return zip_folder(stage / "bundle", stage / "bundle.zip"), None, details
        return stage / "bundle", None, details
    if fmt == "script":
        steps.start("writing train.py and the split")
        folder = write_reproduction(run, stage / "reproduce")
        mark_export(folder, "script")
        if zipped:
            return zip_folder(folder, stage / "reproduce.zip"), None, {}
        return folder, None, {}
    steps.start(f"reading the {task.items} to check it on")
    images = export_task(task).check_inputs(run, predictor, CHECK_IMAGES)
    if getattr(predictor, "unknown", None) is not None:  # "none of these" must agree on both
        images = with_outside_photos(run, predictor, images)  # sides (texts: calibrated only)
    meta = model_metadata(run, checkpoint, predictor)
    # with calibration and "none of these" fitted: three outputs (tlcore.export.trusted_graph)
    model = with_trust(predictor.model.cpu().float(), getattr(predictor, "trust", None))
    steps.start(f"writing the {FORMAT_NAMES[fmt]} file and checking it against PyTorch")
    if fmt == "onnx":
        path = stage / "model.onnx"
        check = graph_export.export_onnx(model, images, path, meta)
    else:
        path = stage / "model.pt"
        check = graph_export.export_torchscript(model, images, path, meta)
    return path, check, {}


def _predictor_build(fmt: str, run: Run, checkpoint: str, stage: Path, zipped: bool,
                     steps: Steps, fitting: Callable[[], None]) -> tuple[Path, Any, dict]:  # fmt: skip
    """A model the ``Predictor`` loads: calibrated first, then built by ``_build``."""
    trust = ensure_trust(run, checkpoint, on_fit=fitting)  # calibration, "none of these"
    predictor = load_predictor(run, checkpoint=checkpoint)
    if predictor.trust is None and trust is not None:  # fitted, not kept: a read-only run
        predictor.set_trust(trust)
    task = model_task(predictor)  # what the export carries: its entry in export.tasks
    if fmt not in export_task(task).formats:  # e.g. train.py is written for photo runs
        raise ConfigError(export_task(task).refused)
    return _build(fmt, run, task, checkpoint, predictor, stage, zipped, steps)


def _task_build(fmt: str, run: Run, checkpoint: str, stage: Path, zipped: bool,
                steps: Steps) -> tuple[Path, Any, dict]:  # fmt: skip
    """A task whose entry builds its own files (``ExportTask.build``); marked and zipped here."""
    entry = export_task(run.task)
    if fmt not in entry.formats:
        raise ConfigError(entry.refused)
    artifact, check, details = entry.build(fmt, run, checkpoint, stage, steps)
    if artifact.is_dir():
        mark_export(artifact, fmt)  # what --force may replace later
        if zipped:
            artifact = zip_folder(artifact, stage / FILE_NAMES[fmt])
    return artifact, check, details


def _publish(artifact: Path, out: Path, stage: Path) -> None:
    """Move the finished artifact to ``out``: a file atomically, an old folder moved aside first."""
    if out.is_dir() and not out.is_symlink():
        os.replace(out, stage / "replaced")  # dropped with the stage
    elif artifact.is_dir() and (out.exists() or out.is_symlink()):
        out.unlink()
    os.replace(artifact, out)


def _stage_beside(out: Path) -> Path:
    """A hidden build folder next to ``out``; ConfigError when ``out``'s folder cannot be made."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise ConfigError(
            f"cannot write {out}: {exc.strerror or exc} ({exc.filename or out.parent}); "
            "choose an --out inside a folder you can write to."
        ) from None


def export_run(
    run: Run,
    fmt: str,
    out: str | Path,
    *,
    checkpoint: str = "best",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """Export ``run`` as ``fmt`` to ``out``.

    bundle and script: a folder, or a .zip when ``out`` ends in .zip. onnx and
    torchscript: one file, checked against PyTorch before it is moved into place (a
    failed check is a ModelError, and the file is removed, never left at ``out``).
    ``progress`` hears its steps, and the count of photos where it scores them.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")
    out = Path(out).expanduser().absolute()
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise ConfigError(
            f"{out} already exists: choose another --out, or use --force to replace it."
        )
    check_replaceable(out)  # --force replaces only an export tlcore wrote, never other files
    stage = _stage_beside(out)  # an --out that cannot be written fails before the work
    steps = Steps(f"Exporting {FORMAT_NAMES[fmt]}", STEPS[fmt], progress)
    steps.start("loading the model")

    def fitting() -> None:  # an older or stopped run: calibration is fitted once, now
        steps.total += 1
        steps.start("fitting the calibration on the run's photos (once)")

    zipped = out.suffix.lower() == ".zip"
    try:
        if export_task(run.task).build is not None:  # its own model and files (detection)
            artifact, check, details = _task_build(fmt, run, checkpoint, stage, zipped, steps)
        else:
            artifact, check, details = _predictor_build(fmt, run, checkpoint, stage, zipped,
                                                        steps, fitting)  # fmt: skip
        if check is not None and not check.passed:  # never hand over a graph that differs
            raise ModelError(
                f"the {FORMAT_NAMES[fmt]} export does not match the PyTorch model, so nothing "
                f"was written to {out}: {check.text()}"
            )
        _publish(artifact, out, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    steps.finish()
    return ExportResult(
        format=fmt,
        path=str(out),
        size_bytes=_size(out),
        run_id=run.id,
        checkpoint=checkpoint,
        check=check.to_dict() if check is not None else None,
        details=details,
    )


# -- exports kept inside a run (the Export page) -----------------------------------------------


def run_export_path(run: Run, fmt: str) -> Path:
    return run.dir / EXPORTS_DIR / FILE_NAMES[fmt]


def recorded_exports(run: Run) -> dict[str, ExportResult]:
    """The exports already made for ``run`` whose files are still there, by format."""
    from tlcore.runs.files import read_json

    recorded = read_json(run.dir / EXPORTS_DIR / RESULTS_FILE) or {}
    results = {}
    for fmt, data in recorded.items():
        try:
            result = ExportResult(**data)
        except TypeError:
            continue  # written by another version: export again
        if fmt in FORMATS and Path(result.path).exists():
            results[fmt] = result
    return results


def export_into_run(
    run: Run, fmt: str, checkpoint: str = "best", progress: ProgressCallback | None = None
) -> ExportResult:
    """Export into ``<run>/exports/`` (replacing an older export) and remember the result."""
    from tlcore.runs.files import write_json_atomic

    result = export_run(run, fmt, run_export_path(run, fmt), checkpoint=checkpoint,
                        overwrite=True, progress=progress)  # fmt: skip
    recorded = {k: v.to_dict() for k, v in recorded_exports(run).items()}
    recorded[fmt] = result.to_dict()
    write_json_atomic(run.dir / EXPORTS_DIR / RESULTS_FILE, recorded)
    return result
