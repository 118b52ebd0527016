"""Unpacking an uploaded zip without trusting anything inside it.

A zip from a browser upload may hold paths that climb out of the target folder,
symlinks, or a few kilobytes that inflate to terabytes. Every member name is
checked before a single byte is written; sizes are checked from the central
directory and again while streaming (headers can lie); extraction goes into a
temporary sibling folder that is moved into place only when complete, so a
failed upload never leaves a half-extracted dataset behind.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tlcore.errors import ArchiveError

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipLimits:
    """Caps for one archive; the defaults fit a few-GB image dataset, not a zip bomb."""

    max_members: int = 100_000
    max_total_bytes: int = 8 * 1024**3
    max_ratio: float = 200.0  # uncompressed / compressed size of one member
    ratio_min_bytes: int = 1024**2  # members smaller than this are not ratio-checked


def _check_member_name(name: str) -> PurePosixPath:
    """The member's relative path, or ArchiveError when it could land outside the target."""
    if not name or "\x00" in name:
        raise ArchiveError(f"The zip holds an entry with an empty or invalid name ({name!r}).")
    if "\\" in name:
        raise ArchiveError(
            f"The zip entry {name!r} uses backslashes in its path; re-create the zip with a "
            "standard tool (e.g. 'Send to > Compressed folder' or 'zip -r')."
        )
    if name.startswith("/") or _DRIVE.match(name):
        raise ArchiveError(f"The zip entry {name!r} has an absolute path; refusing to extract it.")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise ArchiveError(
            f"The zip entry {name!r} points outside the folder it is extracted to ('..'); "
            "refusing to extract it."
        )
    return PurePosixPath(*[p for p in parts if p != "."]) if parts else PurePosixPath(".")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_members(
    zf: zipfile.ZipFile, zip_name: str, limits: ZipLimits, archive_bytes: int
) -> list:
    """Validate every member from the central directory before anything is written."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveError(
            f"{zip_name} holds {len(infos):,} entries, more than the limit of "
            f"{limits.max_members:,}; split the dataset or raise the limit."
        )
    seen: set[str] = set()
    total = 0
    plan = []
    for info in infos:
        rel = _check_member_name(info.filename)
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"{zip_name} is password-protected ({info.filename!r} is encrypted); "
                "upload a zip without a password."
            )
        if _is_symlink(info):
            raise ArchiveError(
                f"The zip entry {info.filename!r} is a symbolic link; links are not allowed."
            )
        key = rel.as_posix()
        if key in seen and not info.is_dir():
            raise ArchiveError(f"{zip_name} holds the entry {info.filename!r} twice.")
        seen.add(key)
        total += info.file_size
        _check_ratio(info.filename, info.file_size, info.compress_size, limits)
        plan.append((info, rel))
    if total > limits.max_total_bytes:
        raise ArchiveError(
            f"{zip_name} would unpack to {total / 1024**2:,.0f} MB, more than the limit of "
            f"{limits.max_total_bytes / 1024**2:,.0f} MB."
        )
    _check_overall_ratio(zip_name, total, archive_bytes, limits)
    return plan


def _check_overall_ratio(zip_name: str, total: int, archive_bytes: int, limits: ZipLimits) -> None:
    """The whole archive against the ratio cap: a bomb split into many small members."""
    if total > limits.ratio_min_bytes and total / max(archive_bytes, 1) > limits.max_ratio:
        raise ArchiveError(
            f"{zip_name} would unpack to {total / 1024**2:,.0f} MB from "
            f"{archive_bytes / 1024**2:,.1f} MB, more than {limits.max_ratio:.0f}x "
            "(a possible zip bomb); refusing to extract it."
        )


def _check_ratio(name: str, size: int, compressed: int, limits: ZipLimits) -> None:
    if size > limits.ratio_min_bytes and size / max(compressed, 1) > limits.max_ratio:
        raise ArchiveError(
            f"The zip entry {name!r} inflates more than {limits.max_ratio:.0f}x "
            "(a possible zip bomb); refusing to extract it."
        )


def _check_free_space(target_parent: Path, needed: int, zip_name: str) -> None:
    free = shutil.disk_usage(target_parent).free
    if needed > free:
        raise ArchiveError(
            f"{zip_name} needs {needed / 1024**2:,.0f} MB but only "
            f"{free / 1024**2:,.0f} MB of disk space is free."
        )


def _stream_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, budget: int, limits: ZipLimits
) -> int:
    """Copy one member in chunks, counting real bytes; returns how many were written."""
    written = 0
    with zf.open(info) as src, open(out, "xb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise ArchiveError(
                    f"The zip entry {info.filename!r} unpacks to more data than the archive "
                    "declares or allows (a possible zip bomb); extraction stopped."
                )
            _check_ratio(info.filename, written, info.compress_size, limits)
            dst.write(chunk)
    return written


def check_archive(zf: zipfile.ZipFile, zip_name: str, archive_bytes: int,
                  limits: ZipLimits = ZipLimits()) -> None:  # fmt: skip
    """Every member's name, flags, size and ratio, and the whole archive's, from its directory.

    For readers that take a few members into memory (a model bundle) instead of
    extracting: the same limits as ``extract_zip_safely``, before a byte is inflated.
    """
    _check_members(zf, zip_name, limits, archive_bytes)


def read_member_safely(
    zf: zipfile.ZipFile, name: str, limits: ZipLimits = ZipLimits(), max_bytes: int | None = None
) -> bytes:
    """One member into memory, counting real bytes: a lying header cannot inflate past its size."""
    info = zf.getinfo(name)  # KeyError when missing, as zf.read
    cap = min(info.file_size, limits.max_total_bytes, max_bytes or limits.max_total_bytes)
    if info.file_size > cap:
        raise ArchiveError(
            f"The zip entry {name!r} would unpack to {info.file_size / 1024**2:,.0f} MB, more "
            f"than the limit of {cap / 1024**2:,.0f} MB."
        )
    _check_ratio(name, info.file_size, info.compress_size, limits)
    parts, read = [], 0
    with zf.open(info) as src:
        while chunk := src.read(_CHUNK):
            read += len(chunk)
            if read > cap:
                raise ArchiveError(
                    f"The zip entry {name!r} unpacks to more data than the archive declares "
                    "(a possible zip bomb); reading stopped."
                )
            _check_ratio(name, read, info.compress_size, limits)
            parts.append(chunk)
    return b"".join(parts)


def _prepare_destination(dest: Path) -> None:
    if dest.exists():
        if not dest.is_dir() or any(dest.iterdir()):
            raise ArchiveError(f"Cannot extract into {dest}: it already exists and is not empty.")
        dest.rmdir()
    dest.parent.mkdir(parents=True, exist_ok=True)


def extract_zip_safely(
    zip_path: str | Path, dest_dir: str | Path, limits: ZipLimits = ZipLimits()
) -> Path:
    """Unpack ``zip_path`` into the fresh folder ``dest_dir`` and return it, or raise ArchiveError.

    Nothing is written outside ``dest_dir``; on any failure nothing is left at
    ``dest_dir`` either.
    """
    zip_path, dest = Path(zip_path), Path(dest_dir).absolute()
    zip_name = zip_path.name
    if not zip_path.is_file():
        raise ArchiveError(f"{zip_path} does not exist or is not a file.")
    if not zipfile.is_zipfile(zip_path):
        raise ArchiveError(f"{zip_name} is not a zip archive (or it is damaged).")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            plan = _check_members(zf, zip_name, limits, zip_path.stat().st_size)
            _prepare_destination(dest)
            _check_free_space(dest.parent, sum(i.file_size for i, _ in plan), zip_name)
            tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                _extract_all(zf, plan, tmp, limits)
                os.replace(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ArchiveError(f"{zip_name} is damaged and cannot be unpacked ({exc}).") from None
    except NotImplementedError as exc:
        raise ArchiveError(f"{zip_name} uses a compression method not supported ({exc}).") from None
    except RuntimeError as exc:  # zipfile raises this for encrypted members
        raise ArchiveError(f"{zip_name} cannot be unpacked ({exc}).") from None
    except OSError as exc:  # e.g. a file entry and a folder entry with the same name
        raise ArchiveError(f"{zip_name} cannot be unpacked here ({exc}).") from None
    return dest


def _extract_all(zf: zipfile.ZipFile, plan: list, tmp: Path, limits: ZipLimits) -> None:
    root = tmp.resolve()
    budget = limits.max_total_bytes
    for info, rel in plan:
        out = (tmp / rel).resolve()
        if out != root and root not in out.parents:  # defence in depth after name checks
            raise ArchiveError(f"The zip entry {info.filename!r} points outside the target.")
        if info.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            raise ArchiveError(f"The zip entry {info.filename!r} collides with another entry.")
        budget -= _stream_member(zf, info, out, budget, limits)
