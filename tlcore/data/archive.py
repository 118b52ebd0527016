"""Unpacking an uploaded zip without trusting anything inside it.

A zip from a browser upload may hold paths that climb out of the target folder,
symlinks, or a few kilobytes that inflate to terabytes. Every member name is
checked before a single byte is written; sizes are checked from the central
directory and again while streaming (headers can lie); extraction goes into a
temporary sibling folder that is moved into place only when complete, so a
failed upload never leaves a half-extracted dataset behind.

A process killed halfway (SIGKILL, a server stopped) cannot clean up after itself:
its temporary folder is named ``.<dest>.partial-<pid>-<random>``, and the next
extraction beside it removes it once that process is gone (or a day later, for
names without a pid). Several processes may unpack one upload at once: each into
its own temporary folder, the first to finish moves it into place and the others
use that one (``reuse_finished``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import stat
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tlcore.errors import ArchiveError

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# ".<dest>.partial-<pid>-<8 hex>" (older tlcore: without the pid): only these are leftovers
_PARTIAL = re.compile(r"\..+\.partial-(?:(?P<pid>[1-9][0-9]{0,9})-)?[0-9a-f]{8}")
LEFTOVER_AGE_S = 24 * 3600  # no unpack takes a day: older temporary folders are leftovers
log = logging.getLogger(__name__)


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


@dataclass
class LeftoverCleanup:
    """The temporary folders of unpacks that were killed halfway, removed, and their size."""

    paths: list[Path] = field(default_factory=list)
    bytes_freed: int = 0


@dataclass
class UnpackDiskUse:
    """What a folder of unpacked uploads holds: finished unpacks and leftovers of killed ones
    (and of unpacks still running), counted apart so neither hides in the other."""

    finished: int = 0
    finished_bytes: int = 0
    leftovers: int = 0
    leftover_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.finished_bytes + self.leftover_bytes


def folder_bytes(folder: str | Path) -> int:
    """Bytes of the files under ``folder`` (links not followed; unreadable entries skipped)."""
    total = 0
    for current, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(current, name)).st_size
    return total


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process: alive
    return True


def _is_leftover(entry: os.DirEntry, now: float) -> bool:
    """A temporary unpack folder whose process is gone, or that is older than a day."""
    match = _PARTIAL.fullmatch(entry.name)
    if not match or not entry.is_dir(follow_symlinks=False):
        return False
    try:
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    pid = match.group("pid")
    return age > LEFTOVER_AGE_S or (pid is not None and not _process_alive(int(pid)))


def clean_unpack_leftovers(folder: str | Path) -> LeftoverCleanup:
    """Remove from ``folder`` the temporary folders of unpacks killed halfway.

    Only names tlcore gives its temporary folders are touched, and only when the
    process that made one is gone (or, without a pid in the name, after a day): an
    unpack running now in another process keeps its folder.
    """
    cleanup = LeftoverCleanup()
    now = time.time()
    try:
        entries = [e for e in os.scandir(folder) if _is_leftover(e, now)]
    except OSError:  # no folder yet, or not readable: nothing to clean
        return cleanup
    for entry in entries:
        size = folder_bytes(entry.path)
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            cleanup.paths.append(Path(entry.path))
            cleanup.bytes_freed += size
    if cleanup.paths:
        log.info("removed %d unfinished unpacks (%.1f MB) in %s", len(cleanup.paths),
                 cleanup.bytes_freed / 1e6, folder)  # fmt: skip
    return cleanup


def unpack_disk_use(folder: str | Path) -> UnpackDiskUse:
    """Disk used under ``folder`` by finished unpacks and by temporary ones (leftovers)."""
    use = UnpackDiskUse()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return use
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        size = folder_bytes(entry.path)
        if _PARTIAL.fullmatch(entry.name):
            use.leftovers, use.leftover_bytes = use.leftovers + 1, use.leftover_bytes + size
        elif not entry.name.startswith("."):
            use.finished, use.finished_bytes = use.finished + 1, use.finished_bytes + size
    return use


def _finished(dest: Path) -> bool:
    return dest.is_dir() and any(dest.iterdir())


def _prepare_destination(dest: Path, reuse_finished: bool) -> bool:
    """Make way for ``dest``; True when it already holds a finished unpack to reuse."""
    if dest.exists():
        if reuse_finished and _finished(dest):
            return True
        if not dest.is_dir() or any(dest.iterdir()):
            raise ArchiveError(f"Cannot extract into {dest}: it already exists and is not empty.")
        with contextlib.suppress(FileNotFoundError):  # another unpack of it removed it first
            dest.rmdir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    return False


def _move_into_place(tmp: Path, dest: Path, reuse_finished: bool) -> None:
    """Rename the finished temporary folder to ``dest`` (atomic). When another unpack of
    the same upload got there first, its folder is used and this copy removed."""
    try:
        os.replace(tmp, dest)
    except OSError as exc:
        if not (reuse_finished and exc.errno in (errno.ENOTEMPTY, errno.EEXIST)
                and _finished(dest)):  # fmt: skip
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def extract_zip_safely(
    zip_path: str | Path,
    dest_dir: str | Path,
    limits: ZipLimits = ZipLimits(),
    *,
    reuse_finished: bool = False,
) -> Path:
    """Unpack ``zip_path`` into the fresh folder ``dest_dir`` and return it, or raise ArchiveError.

    Nothing is written outside ``dest_dir``; on any failure nothing is left at
    ``dest_dir`` either. Leftovers of unpacks killed halfway beside ``dest_dir`` are
    removed first. ``reuse_finished``: ``dest_dir`` is named after the zip's content, so
    a finished folder found there (another process unpacked the same upload meanwhile)
    is returned instead of an error.
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
            if _prepare_destination(dest, reuse_finished):
                return dest
            clean_unpack_leftovers(dest.parent)
            _check_free_space(dest.parent, sum(i.file_size for i, _ in plan), zip_name)
            tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                _extract_all(zf, plan, tmp, limits)
                _move_into_place(tmp, dest, reuse_finished)
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
