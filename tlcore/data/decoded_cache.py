"""Decode each image once: uint8 pixels kept in memory, spilling to a file on disk.

Fine-tuning with augmentation cannot cache embeddings (every epoch sees other
pixels), but it can skip JPEG decoding: the first time an image is asked for,
it is decoded (``load_rgb``), shrunk once to the size the transform needs and
kept as uint8. Later epochs rebuild a PIL image from those bytes and run the
random crops and flips as before.

What is kept depends on the transform (``split_transform``):

- a deterministic prefix (the eval transform's Resize + CenterCrop, or the train
  transform when augmentation is off) is applied once and its output kept, so
  cached tensors are bit-identical to uncached ones;
- a random-resized-crop transform gets the photo shrunk to the short side at
  which even its smallest crop still has about the output's pixels.

Memory stays bounded: images are kept in RAM up to a budget, then appended to a
private file (read back through the page cache) that is deleted with the cache.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from tlcore.data.images import load_rgb
from tlcore.errors import ConfigError, DataError

MODES = ("auto", "memory", "disk", "off")
_DETERMINISTIC = (T.Resize, T.CenterCrop)
_NOT_CACHED, _IN_MEMORY, _ON_DISK = 0, 1, 2
_FILE_PREFIX = "decoded-"


def default_memory_budget() -> int:
    """Bytes of pixels kept in RAM before spilling to disk: 1/8 of physical memory, at most 2 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows)
        total = 8 << 30
    return int(min(2 << 30, total // 8))


class ShortSide:
    """Shrink (never enlarge) so the short side is ``side`` pixels; keeps the aspect ratio."""

    def __init__(self, side: int, interpolation: int = Image.Resampling.BICUBIC) -> None:
        self.side = int(side)
        self.interpolation = interpolation

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        short = min(width, height)
        if short <= self.side:
            return image
        scale = self.side / short
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return image.resize(size, self.interpolation)

    def __repr__(self) -> str:
        return f"ShortSide({self.side})"


def _steps(transform: Callable) -> list[Callable]:
    return list(transform.transforms) if isinstance(transform, T.Compose) else [transform]


def split_transform(transform: Callable) -> tuple[Callable, Callable]:
    """(what to apply once and keep, what to apply every epoch) for a PIL -> tensor transform."""
    from timm.data.transforms import RandomResizedCropAndInterpolation

    steps = _steps(transform)
    n = 0
    while n < len(steps) and isinstance(steps[n], _DETERMINISTIC):
        n += 1
    if n:
        return T.Compose(steps[:n]), T.Compose(steps[n:])
    first = steps[0] if steps else None
    if isinstance(first, RandomResizedCropAndInterpolation | T.RandomResizedCrop):
        size = first.size if isinstance(first.size, tuple | list) else (first.size, first.size)
        smallest = max(1e-3, min(first.scale))
        return ShortSide(math.ceil(max(size) / math.sqrt(smallest))), transform
    return keep_as_decoded, transform  # unknown transform: keep the decoded image


def decode_side(transform: Callable) -> int | None:
    """The shortest side a transform's first step needs from the decoded photo (its
    ``Resize`` or ``ShortSide``), so ``load_rgb`` may decode a much larger JPEG at a
    reduced scale; None for a transform that crops first (the full photo is needed)."""
    steps = _steps(transform)
    first = steps[0] if steps else None
    if isinstance(first, T.Compose):
        return decode_side(first)
    if isinstance(first, ShortSide):
        return first.side
    if isinstance(first, T.Resize) and first.max_size is None:
        size = first.size
        return int(size) if isinstance(size, int) else int(max(size))
    return None


def deterministic(transform: Callable) -> bool:
    """True when the transform draws no random numbers (its photos may be read in any order)."""
    from timm.data.transforms import MaybeToTensor

    fixed = (*_DETERMINISTIC, ShortSide, T.PILToTensor, T.ToTensor, MaybeToTensor, T.Normalize)
    return (
        all(
            deterministic(step) if isinstance(step, T.Compose) else isinstance(step, fixed)
            for step in _steps(transform)
        )
        or transform is keep_as_decoded
    )


def keep_as_decoded(image: Image.Image) -> Image.Image:
    """The presize of transforms this module does not know: the image as ``load_rgb`` gave it."""
    return image


class NormalizeBatch:
    """``ToTensor`` + ``Normalize`` done once on a stacked uint8 batch: same numbers, far fewer ops.

    Per image these are two small parallel torch ops, whose thread start-up costs
    more than the arithmetic; on a batch they run once.
    """

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(torch.float32).div(255).sub_(self.mean).div_(self.std)

    def __repr__(self) -> str:
        return f"NormalizeBatch(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def split_batch_normalize(transform: Callable) -> tuple[Callable, NormalizeBatch | None]:
    """Move a trailing ToTensor + Normalize to the batch; (per-image uint8 transform, batch op)."""
    from timm.data.transforms import MaybeToTensor

    steps = _steps(transform)
    if (
        len(steps) >= 2
        and isinstance(steps[-2], MaybeToTensor | T.ToTensor)
        and isinstance(steps[-1], T.Normalize)
        and not steps[-1].inplace
    ):
        return T.Compose([*steps[:-2], T.PILToTensor()]), NormalizeBatch(
            steps[-1].mean, steps[-1].std
        )
    return transform, None


def _remove_file(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        Path(path).unlink(missing_ok=True)


def _remove_stale_files(directory: Path) -> None:
    """Files left by caches whose process died (killed workers): their pid is in the name."""
    for path in directory.glob(f"{_FILE_PREFIX}*.u8"):
        try:
            pid = int(path.name[len(_FILE_PREFIX) :].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


class DecodedImageCache:
    """uint8 HxWx3 pixels of a list of image files, decoded on first use (or all by ``fill``).

    ``mode`` is "memory" (all in RAM), "disk" (all in the file) or "auto" (RAM up
    to ``memory_budget`` bytes, then the file). Only the process that created the
    cache stores images; a DataLoader worker that meets an uncached image decodes
    it without storing (``fill`` first when the loader has workers).
    """

    def __init__(
        self,
        paths: list[str],
        presize: Callable[[Image.Image], Image.Image],
        *,
        mode: str = "auto",
        directory: Path | None = None,
        memory_budget: int | None = None,
    ) -> None:
        if mode not in MODES or mode == "off":
            raise ConfigError(f"decoded_cache mode must be memory, disk or auto, got {mode!r}.")
        self.paths = [str(p) for p in paths]
        self.presize = presize
        self.mode = mode
        self.memory_budget = default_memory_budget() if memory_budget is None else memory_budget
        if mode == "memory":
            self.memory_budget = 1 << 62
        if mode == "disk":
            self.memory_budget = 0
        # per image: where (0 not cached, 1 memory, 2 disk), byte offset, height, width
        self.table = np.zeros((len(self.paths), 4), dtype=np.int64)
        self.memory: dict[int, np.ndarray] = {}
        self.memory_bytes = 0
        self.disk_bytes = 0
        self.directory = Path(directory) if directory else Path(tempfile.gettempdir())
        self.file = self.directory / f"{_FILE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}.u8"
        self.owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._write_fd: int | None = None
        self._read_fd: tuple[int, int] | None = None  # (pid, fd): fds are per process
        self._finalizer = weakref.finalize(self, _remove_file, str(self.file), self.owner_pid)

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:  # spawn-started workers: no fds, no lock
        state = self.__dict__.copy()
        state.update(_lock=None, _write_fd=None, _read_fd=None, _finalizer=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def cached(self) -> int:
        """How many images are decoded and kept."""
        return int(np.count_nonzero(self.table[:, 0]))

    def image(self, index: int) -> Image.Image:
        """The kept pixels of image ``index`` as RGB (decoded now if not yet kept)."""
        return Image.fromarray(self.pixels(index), "RGB")

    def pixels(self, index: int) -> np.ndarray:
        where, offset, height, width = (int(v) for v in self.table[index])
        if where == _IN_MEMORY:
            return self.memory[index]
        if where == _ON_DISK:
            return self._read(offset, height, width)
        pixels = self._decode(index)
        if os.getpid() == self.owner_pid:
            self._store(index, pixels)
        return pixels

    def fill(self, threads: int | None = None) -> None:
        """Decode every image not yet kept, in threads (Pillow decodes without the GIL)."""
        missing = [i for i in range(len(self)) if self.table[i, 0] == _NOT_CACHED]
        threads = threads or min(8, os.cpu_count() or 1)
        chunk = max(1, 4 * threads)  # bounded: at most a few chunks of pixels in flight
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for start in range(0, len(missing), chunk):
                part = missing[start : start + chunk]
                for index, pixels in zip(part, pool.map(self._decode, part), strict=True):
                    self._store(index, pixels)

    def close(self) -> None:
        """Drop the kept pixels and delete the file (also done when the cache is collected)."""
        for fd in (self._write_fd, self._read_fd[1] if self._read_fd else None):
            if fd is not None:
                os.close(fd)
        self._write_fd = self._read_fd = None
        self.memory.clear()
        self.table[:] = 0
        if self._finalizer is not None:
            self._finalizer()

    # -- internals -----------------------------------------------------------------------
    def _decode(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            image = load_rgb(path, min_side=decode_side(self.presize))
        except DataError as exc:
            raise DataError(
                f"{exc} The file changed since the dataset was checked; inspect it again."
            ) from None
        return np.ascontiguousarray(np.asarray(self.presize(image).convert("RGB"), np.uint8))

    def _store(self, index: int, pixels: np.ndarray) -> None:
        height, width = pixels.shape[:2]
        with self._lock:
            if self.table[index, 0] != _NOT_CACHED:
                return
            if self.memory_bytes + pixels.nbytes <= self.memory_budget:
                self.memory[index] = pixels
                self.memory_bytes += pixels.nbytes
                self.table[index] = (_IN_MEMORY, 0, height, width)
                return
            offset = self._append(pixels.tobytes())
            self.table[index] = (_ON_DISK, offset, height, width)

    def _append(self, data: bytes) -> int:
        if self._write_fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            _remove_stale_files(self.directory)
            self._write_fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        offset = self.disk_bytes
        view = memoryview(data)
        while view:
            view = view[os.write(self._write_fd, view) :]
        self.disk_bytes += len(data)
        return offset

    def _read(self, offset: int, height: int, width: int) -> np.ndarray:
        if self._read_fd is None or self._read_fd[0] != os.getpid():
            self._read_fd = (os.getpid(), os.open(self.file, os.O_RDONLY))
        size = height * width * 3
        data = os.pread(self._read_fd[1], size, offset)
        if len(data) != size:
            raise DataError(f"the decoded-image cache file {self.file} was cut short.")
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
