"""Exported files on the Export page: download buttons that read from disk, previews.

A download button given bytes keeps them in the server's memory for as long as
the page is open, for every export on the page, on every rerun. Given a
callable, Streamlit reads the file only when the person clicks, so a 100 MB
model costs nothing until it is actually downloaded.
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import streamlit as st

from tlcore.export.exporter import ExportResult

MIMES = {
    ".zip": "application/zip",
    ".onnx": "application/octet-stream",
    ".pt": "application/octet-stream",
}


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def download_button(result: ExportResult, file_name: str, key: str) -> None:
    """A button that hands over ``result.path``, read from disk when clicked."""
    size = result.size_bytes / 1e6
    st.download_button(
        f"Download {file_name} ({size:.1f} MB)",
        data=functools.partial(_read, result.path),
        file_name=file_name,
        mime=MIMES.get(Path(result.path).suffix.lower(), "application/octet-stream"),
        key=key,
        icon=":material/download:",
        type="primary",
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _member(path: str, stamp: float, name: str) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(name)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def member(result: ExportResult, name: str) -> bytes | None:
    """One small file (a card, a script) from an exported zip, or None."""
    try:
        stamp = Path(result.path).stat().st_mtime
    except OSError:
        return None
    return _member(result.path, stamp, name)


def is_older_than_checkpoint(result: ExportResult, checkpoint_stamp: tuple[int, int]) -> bool:
    """A run still training replaces its checkpoint each epoch; its earlier exports lag
    (``checkpoint_stamp``: size and file time in ns, appkit.inference)."""
    try:
        return Path(result.path).stat().st_mtime_ns < checkpoint_stamp[1]
    except OSError:
        return False


def show_check(result: ExportResult) -> None:
    """The ONNX/TorchScript comparison with PyTorch, green or red."""
    if result.check is None:
        return
    from tlcore.export.format_check import FormatCheck

    check = FormatCheck(**result.check)
    if check.passed:
        st.success(f"Checked: {check.text()}", icon=":material/verified:")
    else:
        st.error(
            f"Check failed: {check.text()} Do not use this file; report the model name.",
            icon=":material/error:",
        )
