"""The bundle's file format: ``tlcore.json`` plus ``model.safetensors``, written and read.

It sits below the ``Predictor`` (which loads bundles) and below ``tlcore.export.bundle``
(which adds the model card and measured metrics), so neither imports the other's wing.

Layout of a bundle (a folder, or the same files at the top of a .zip):

- ``model.safetensors``     the weights (safe to load: no code inside)
- ``tlcore.json``           architecture, class names in output order, preprocessing
                            (size, mean, std, interpolation, crop), the training
                            settings, a data summary and the validation metrics
- ``README.md``             the model card (``tlcore.export.model_card``)
- ``confusion_matrix.png``  the validation confusion matrix

``read_bundle`` needs nothing but the bundle: ``tlcore.load`` / ``Predictor.from_bundle``
rebuild the model with timm and the preprocessing from ``tlcore.json``, so a bundle
predicts the same on a machine that never saw the run.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from tlcore.data.archive import check_archive, read_member_safely
from tlcore.errors import ArchiveError, ModelError

BUNDLE_META = "tlcore.json"
WEIGHTS_FILE = "model.safetensors"
BUNDLE_FORMAT = "tlcore-bundle"
FORMAT_VERSION = 1
MAX_META_BYTES = 64 * 1024**2  # a tlcore.json is a few kB; more is not a bundle
PREPROCESSING_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def preprocessing(data_config: dict[str, Any]) -> dict[str, Any]:
    """The evaluation preprocessing as plain JSON values (tuples become lists)."""
    out = {}
    for key in PREPROCESSING_KEYS:
        if key in data_config:
            value = data_config[key]
            out[key] = list(value) if isinstance(value, tuple | list) else value
    return out


def write_bundle_files(
    folder: Path, meta: dict[str, Any], state: dict[str, torch.Tensor], run_id: str
) -> None:
    """Write the weights and ``tlcore.json`` into ``folder`` (created if missing)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"run_id": run_id})
    (folder / BUNDLE_META).write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")


# -- reading ---------------------------------------------------------------------------------


def _zip_prefix(names: list[str]) -> str | None:
    """'' when tlcore.json sits at the top of the zip, 'folder/' when one level down."""
    for name in names:
        path = PurePosixPath(name)
        if path.name == BUNDLE_META and len(path.parts) <= 2:
            return "" if len(path.parts) == 1 else f"{path.parts[0]}/"
    return None


def is_bundle(path: str | Path) -> bool:
    """A folder holding ``tlcore.json``, or a zip with one at its top."""
    path = Path(str(path))
    if path.is_dir():
        return (path / BUNDLE_META).is_file()
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return _zip_prefix(zf.namelist()) is not None
    return False


def _check_meta(meta: Any, label: str) -> dict[str, Any]:
    def bad(why: str) -> ModelError:
        return ModelError(f"{label} is not a usable tlcore bundle: {why}.")

    from tlcore.results.bundle_checks import check_meta_fields

    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise bad(f"its {BUNDLE_META} is not a tlcore bundle description")
    version = meta.get("format_version", 0)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise bad(
            f"it was written by a newer tlcore (bundle format {meta['format_version']}); "
            "upgrade tlcore to load it"
        )
    check_meta_fields(meta, label, BUNDLE_META)  # every field, one line per problem
    return meta


def _parse_meta(raw: bytes, label: str) -> Any:
    """tlcore.json's JSON; ModelError in words for bad JSON, bad UTF-8 or a file nested
    thousands of levels deep (the parser's RecursionError)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        why = "its JSON is nested too deeply to be a file tlcore wrote"
    except UnicodeDecodeError as exc:
        why = f"it is not UTF-8 text ({exc.reason} at byte {exc.start})"
    except ValueError as exc:
        why = f"it is not valid JSON ({exc})"
    raise ModelError(f"{label} cannot be read as a tlcore bundle: {BUNDLE_META}: {why}.")


def bundle_meta(path: str | Path) -> dict[str, Any]:
    """A bundle's ``tlcore.json`` alone, whatever its format (a label, text, columns or
    detector bundle), so ``tlcore.load`` can pick the task's reader from its ``task``."""
    path = Path(str(path))
    label = str(path)
    try:
        if path.is_dir():
            meta_file = path / BUNDLE_META
            if meta_file.is_file() and meta_file.stat().st_size <= MAX_META_BYTES:
                raw = meta_file.read_bytes()
            else:
                raise ModelError(f"{label} is not a tlcore bundle: no usable {BUNDLE_META}.")
        else:
            with zipfile.ZipFile(path) as zf:
                prefix = _zip_prefix(zf.namelist())
                if prefix is None:
                    raise ModelError(
                        f"{label} is a zip without {BUNDLE_META}: not a tlcore bundle."
                    )
                check_archive(zf, path.name, path.stat().st_size)
                raw = read_member_safely(zf, prefix + BUNDLE_META, max_bytes=MAX_META_BYTES)
    except ArchiveError as exc:
        raise ModelError(f"{label} was refused as a bundle: {exc}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{label} cannot be read as a tlcore bundle ({exc}).") from None
    meta = _parse_meta(raw, label)
    if not isinstance(meta, dict):
        raise ModelError(f"{label} is not a usable tlcore bundle: its {BUNDLE_META} is not "
                         "a tlcore bundle description.")  # fmt: skip
    return meta


def read_bundle(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(tlcore.json contents, weights) of a bundle folder or .zip; ModelError if it is not one.
    The class list is checked against the weights' shapes before anything is built."""
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    from tlcore.results.bundle_checks import classes_fit_weights

    path = Path(str(path))
    label = str(path)
    try:
        if path.is_dir():
            if not (path / BUNDLE_META).is_file():
                raise ModelError(f"{label} is not a tlcore bundle: it has no {BUNDLE_META}.")
            meta_file = path / BUNDLE_META
            if meta_file.stat().st_size > MAX_META_BYTES:
                raise ModelError(f"{label} is not a tlcore bundle: its {BUNDLE_META} is too large.")
            meta = _check_meta(_parse_meta(meta_file.read_bytes(), label), label)
            weights = path / meta.get("weights_file", WEIGHTS_FILE)
            if not weights.is_file():
                raise ModelError(
                    f"{label} is not a usable tlcore bundle: {weights.name} is missing."
                )
            state = load_file(str(weights))
            classes_fit_weights(meta, state, label)
            return meta, state
        if not (path.is_file() and zipfile.is_zipfile(path)):
            raise ModelError(
                f"{label} is neither a bundle folder nor a .zip bundle: export one with "
                "`tlcore export RUN --format bundle --out model.zip`."
            )
        with zipfile.ZipFile(path) as zf:
            prefix = _zip_prefix(zf.namelist())
            if prefix is None:
                raise ModelError(f"{label} is a zip without {BUNDLE_META}: not a tlcore bundle.")
            # the safe-unzip limits (sizes, ratios, names) before a byte is inflated in memory
            check_archive(zf, path.name, path.stat().st_size)
            raw = read_member_safely(zf, prefix + BUNDLE_META, max_bytes=MAX_META_BYTES)
            meta = _check_meta(_parse_meta(raw, label), label)
            try:
                blob = read_member_safely(zf, prefix + meta.get("weights_file", WEIGHTS_FILE))
            except KeyError:
                raise ModelError(
                    f"{label} is not a usable tlcore bundle: its weights file is missing."
                ) from None
            state = load(blob)
            classes_fit_weights(meta, state, label)
            return meta, state
    except ArchiveError as exc:
        raise ModelError(f"{label} was refused as a bundle: {exc}") from None
    except (OSError, ValueError, TypeError, zipfile.BadZipFile, SafetensorError) as exc:
        raise ModelError(f"{label} cannot be read as a tlcore bundle ({exc}).") from None


def preprocessing_config(meta: dict[str, Any]) -> dict[str, Any]:
    """tlcore.json's preprocessing as the data config ``build_transform`` takes."""
    config = dict(meta["preprocessing"])
    for key in ("input_size", "mean", "std"):
        config[key] = tuple(config[key])
    return config
