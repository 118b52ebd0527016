"""From what the user gave (a folder or a zip) to a validated, split, saved dataset.

This is the one call the UI and the CLI make: unpack safely, scan, decode every
image once, report, split, and write the manifest a run will train on.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlcore import settings
from tlcore.data.archive import ZipLimits, clean_unpack_leftovers, extract_zip_safely
from tlcore.data.images import ImageInfo, inspect_image
from tlcore.data.manifest import Manifest, collector_paused, folder_manifest, make_split
from tlcore.data.progress import ProgressCallback, Tracker
from tlcore.data.report import ValidationReport, build_report
from tlcore.data.scan import DatasetScan, scan_folder
from tlcore.errors import ConfigError, DataError

_HASH_CHUNK = 1 << 20


@dataclass
class PreparedData:
    """The dataset root actually used, its report and, when trainable, its saved manifest."""

    root: Path
    report: ValidationReport
    manifest: Manifest | None
    manifest_path: Path | None


def _inspect_one(path: Path) -> ImageInfo | str:
    try:
        return inspect_image(path)
    except DataError as exc:
        message = str(exc)
        prefix = f"{path.name}: "
        return message[len(prefix) :] if message.startswith(prefix) else message


def inspect_files(
    paths: list[Path], workers: int | None = None, progress: ProgressCallback | None = None
) -> dict[Path, ImageInfo | str]:
    """Inspect many images in threads (Pillow decodes without the GIL); path -> info or reason.

    ``progress`` hears "Reading photos: k of N" as they are done (tlcore.data.progress)."""
    if not paths:
        return {}
    workers = workers or min(8, (os.cpu_count() or 1) + 1)
    tracker = Tracker("Reading photos", len(paths), progress)
    results: dict[Path, ImageInfo | str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, result in zip(paths, pool.map(_inspect_one, paths), strict=True):
            results[path] = result
            tracker.advance()
    return results


def validate_folder(
    folder: str | Path, progress: ProgressCallback | None = None
) -> tuple[DatasetScan, ValidationReport]:
    """Scan and inspect a folder; the report says what is usable and what is wrong."""
    scan = scan_folder(folder)
    results = inspect_files([image.path for image in scan.images], progress=progress)
    return scan, build_report(scan, results)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def unpack_upload(zip_path: str | Path, limits: ZipLimits | None = None) -> Path:
    """Extract a zip under uploads_dir()/extracted/<content hash>; reuses an earlier extraction.

    Keyed by content so re-uploading (or re-running a page) the same zip costs nothing,
    and several processes unpacking it at once all end with the one finished folder.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise DataError(f"The file {zip_path} does not exist.")
    dest = settings.uploads_dir() / "extracted" / _file_digest(zip_path)[:16]
    clean_unpack_leftovers(dest.parent)  # of unpacks killed halfway, even when none is needed
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    return extract_zip_safely(zip_path, dest, limits or ZipLimits(), reuse_finished=True)


def build_manifest(
    report: ValidationReport, *, val_fraction: float = 0.2, seed: int = 0
) -> Manifest:
    """The split for a trainable report: the given val/ folder, or a stratified random one."""
    if not report.trainable:
        raise DataError(f"The dataset cannot be trained on: {report.reason}")
    if report.split_source == "folders":
        samples = [(img.path, img.class_name, img.split or "train") for img in report.images]
        return folder_manifest(report.root, report.classes, samples, report.val_copies)
    pool: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    groups: dict[str, str] = {}
    # one pass over the report (at 50,000 photos each pass costs ~0.2 us a photo in memory
    # traffic alone), with the collector paused: see manifest.collector_paused
    with collector_paused():
        for img in report.images:
            groups[img.path] = img.group
            if img.split in (None, "train"):
                pool.append((img.path, img.class_name))
            elif img.split == "test":
                tests.append((img.path, img.class_name))
    return make_split(
        report.root,
        report.classes,
        pool,
        val_fraction=val_fraction,
        seed=seed,
        groups=groups,
        test_samples=tests,
    )


def _default_manifest_path(root: Path, val_fraction: float, seed: int) -> Path:
    key = json.dumps([str(root), round(float(val_fraction), 6), int(seed)])
    name = f"{root.name or 'data'}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"
    return settings.uploads_dir() / "manifests" / name


def prepare_data(
    source: str | Path,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    manifest_path: Path | None = None,
    progress: ProgressCallback | None = None,
) -> PreparedData:
    """Validate ``source`` (a folder or a .zip) and, when trainable, write its manifest.

    ``progress`` hears how many photos have been read (tlcore.data.progress).

    Raises DataError (ArchiveError for zips) only when the source cannot be read at
    all: missing path, not a folder or zip, unsafe or broken archive. Everything
    else, including "no usable images", is described by the returned report, whose
    ``trainable``/``reason`` say whether a manifest was written.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
    source = Path(source).expanduser()
    if not source.exists():
        raise DataError(f"{source} does not exist; give a folder of class folders or a .zip.")
    from tlcore.data.text_source import is_text_source

    if is_text_source(source):  # a text,label CSV or folders of .txt: tlcore.data.text_source
        return prepare_text_data(source, val_fraction=val_fraction, seed=seed,
                                 manifest_path=manifest_path)  # fmt: skip
    if source.is_file():
        if source.suffix.lower() != ".zip":
            raise DataError(f"{source.name} is neither a folder nor a .zip archive.")
        source = unpack_upload(source)
    _, report = validate_folder(source, progress)
    root = Path(report.root)
    return _split_and_keep(root, report, build_manifest, val_fraction, seed, manifest_path)


def prepare_trainable(
    source: str | Path,
    doing: str,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    manifest_path: Path | None = None,
    progress: ProgressCallback | None = None,
) -> PreparedData:
    """``prepare_data`` for a caller that cannot go on without the split (training, the
    doctor, few-shot, a comparison): DataError "cannot ``doing`` ``source``: the report's
    reason" when no manifest was written, so the user reads why and not a missing file."""
    prepared = prepare_data(source, val_fraction=val_fraction, seed=seed,
                            manifest_path=manifest_path, progress=progress)  # fmt: skip
    if prepared.manifest is None or not prepared.report.trainable:
        reason = prepared.report.reason or "no usable images were found"
        raise DataError(f"cannot {doing} {source}: {reason}")
    return prepared


def prepare_text_data(
    source: Path, *, val_fraction: float = 0.2, seed: int = 0, manifest_path: Path | None = None
) -> PreparedData:
    """``prepare_data`` for labelled texts: the same report, split rules and saved manifest."""
    from tlcore.data.text_source import build_text_report, text_manifest

    report = build_text_report(source)
    source = Path(report.root)  # absolute: the manifest and the run name the same file
    return _split_and_keep(source, report, text_manifest, val_fraction, seed, manifest_path)


def _split_and_keep(root: Path, report: Any, split: Any, val_fraction: float, seed: int,
                    manifest_path: str | Path | None) -> PreparedData:  # fmt: skip
    """The split (``split(report, val_fraction=, seed=)``) of trainable data, kept as a
    manifest; untrainable data is returned with its report alone."""
    if not report.trainable:
        return PreparedData(root, report, None, None)
    manifest = split(report, val_fraction=val_fraction, seed=seed)
    path = (
        Path(manifest_path) if manifest_path else _default_manifest_path(root, val_fraction, seed)
    )
    manifest.save(path)
    report.split_counts = manifest.counts()
    return PreparedData(root, report, manifest, path)
