"""Reading one image file the same way at inspection time and at training time.

Everything that decodes a user's image goes through here, so that the report
(``inspect_image``) and the training data (``load_rgb``) agree on what an image
is: EXIF orientation applied, any colour mode turned into RGB, the first frame of
an animation, and a clear ``DataError`` for files that cannot be used.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tlcore.errors import DataError


def _quiet_bomb_warning() -> None:
    """Pillow warns (on stderr, raw) about images between its pixel limit and twice it.

    tlcore refuses every image over the limit itself, with a sentence (``_check_pixels``),
    so the warning is only noise in a terminal or a server log. Set before each open,
    not once at import: a caller's ``catch_warnings`` (pytest's, Streamlit's) may have
    dropped a filter added at import time.
    """
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


# The photo files tlcore reads, each with the file format its extension promises (to flag a
# JPEG saved as ".png"): the one list, read by the scan, the uploaders and the format check.
FORMAT_OF_EXTENSION: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
IMAGE_EXTENSIONS: frozenset[str] = frozenset(FORMAT_OF_EXTENSION)
# the same, as a file uploader takes them (no dot): ["jpg", "jpeg", "png", ...]
UPLOAD_TYPES: tuple[str, ...] = tuple(ext.removeprefix(".") for ext in FORMAT_OF_EXTENSION)
IGNORED_NAMES: frozenset[str] = frozenset({"__macosx", ".ds_store", "thumbs.db", "desktop.ini"})

# Longest side kept by default when loading for training: far above any model input
# size, small enough that a 50-megapixel photo costs ~12 MB instead of ~150 MB.
DEFAULT_MAX_SIDE = 2048

# How much larger than the size a transform resizes to a JPEG is still decoded (see load_rgb).
DRAFT_MARGIN = 2

# A photo file larger than this is refused before it is read: far above any photo (a 50 MP
# JPEG is ~25 MB), and reading a mislabelled video or disk image whole would exhaust memory.
# The same limit as a photo given to predict (tlcore.results.predict.read_for_prediction).
MAX_IMAGE_BYTES = 50_000_000

_ROTATING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF values that swap width and height
_EXIF_ORIENTATIONS = range(1, 9)  # what the EXIF standard defines; others are ignored
_EXIF_ORIENTATION_TAG = 0x0112


def is_image_file(path: str | PurePath) -> bool:
    """True when the extension is one we read (case-insensitive), so scans skip the rest."""
    return PurePath(path).suffix.lower() in IMAGE_EXTENSIONS


def is_ignored(path: str | PurePath) -> bool:
    """True for OS litter that is never data: hidden files/folders, __MACOSX, .DS_Store, Thumbs.db.

    Every component of ``path`` is checked, so pass a path relative to the dataset
    root (a hidden folder above the dataset must not hide the whole dataset).
    """
    for part in PurePath(path).parts:
        if part in ("", ".", "..", "/"):
            continue
        if part.startswith(".") or part.lower() in IGNORED_NAMES:
            return True
    return False


@dataclass
class ImageInfo:
    """What inspection learned about one readable image (for the validation report)."""

    path: str
    width: int  # after EXIF orientation
    height: int
    format: str
    mode: str
    sha256: str
    converted_from: str | None = None  # e.g. "CMYK", "grayscale", "16-bit", "RGBA"
    exif_rotated: bool = False
    exif_invalid: int | None = None  # an EXIF orientation outside 1-8, ignored
    n_frames: int = 1
    extension_mismatch: str | None = None  # the real format when the extension lies

    def to_dict(self) -> dict:
        return asdict(self)


def _conversion_kind(im: Image.Image) -> str | None:
    """A person's name for what turning this mode into RGB means, or None for plain RGB."""
    mode = im.mode
    if mode == "RGB":
        return None
    if mode in ("L", "1"):
        return "grayscale"
    if mode in ("LA", "La"):
        return "grayscale with transparency"
    if mode in ("RGBA", "RGBa"):
        return "RGBA (transparency)"
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return "palette with transparency" if has_alpha else "palette"
    if mode.startswith("I;16") or mode == "I":
        return "16-bit"
    if mode == "F":
        return "32-bit float"
    return mode  # CMYK, YCbCr, LAB, HSV


def _on_white(im: Image.Image) -> Image.Image:
    """Composite a transparent image over white: transparent pixels' colours are often junk."""
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_rgb(im: Image.Image) -> Image.Image:
    """Scale 16-bit / 32-bit samples to 8 bits instead of clipping them to white."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = arr.astype(np.float64)
        arr = arr * 255.0 if arr.size and np.nanmax(arr) <= 1.0 else arr
    elif im.mode.startswith("I;16") or (arr.size and arr.max() > 255):
        arr = arr.astype(np.float64) / 257.0
    arr = np.nan_to_num(np.clip(arr, 0, 255)).round().astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB, with transparency flattened on white and high depth rescaled."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in im.info):
        return _on_white(im)
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(im)
    return im.convert("RGB")


def _check_pixels(im: Image.Image, name: str) -> None:
    """Refuse images over Pillow's decompression-bomb limit (read at call time, never raised)."""
    limit = Image.MAX_IMAGE_PIXELS
    width, height = im.size
    if limit and width * height > limit:
        raise DataError(
            f"{name}: {width}x{height} pixels is over the {limit:,}-pixel safety limit for "
            "one image (a possible decompression bomb); resize it or leave it out."
        )


def _open(data: io.BytesIO | Path, name: str) -> Image.Image:
    """Image.open with every failure turned into a DataError that says why."""
    _quiet_bomb_warning()
    try:
        im = Image.open(data)
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"{name}: too many pixels for one image (a possible decompression bomb): {exc}"
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image Pillow can read (unknown format).") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{name}: cannot be opened as an image ({exc}).") from None
    _check_pixels(im, name)
    return im


def _decode(im: Image.Image, name: str) -> None:
    """Decode the pixel data now, so truncation and corruption show up here, not mid-training."""
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: too many pixels for one image ({exc}).") from None
    except OSError as exc:
        if "truncated" in str(exc):
            raise DataError(f"{name}: truncated image file (part of it is missing).") from None
        raise DataError(f"{name}: corrupt image data ({exc}).") from None
    except MemoryError:  # its reason is empty: say what it means
        width, height = im.size
        raise DataError(
            f"{name}: too large to decode in memory ({width}x{height} pixels)."
        ) from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise DataError(f"{name}: corrupt image data ({exc}).") from None


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION_TAG, 1) or 1)
    except Exception:  # a broken EXIF block must not make a readable image unusable
        return 1


def _read_bytes(path: Path) -> bytes:
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            raise DataError(f"{path.name}: not a regular file (a pipe, socket or device).")
        if info.st_size > MAX_IMAGE_BYTES:  # checked before one byte is read
            raise DataError(
                f"{path.name}: {info.st_size / 1e6:,.0f} MB is too large for one image "
                f"(limit {MAX_IMAGE_BYTES // 1_000_000} MB); resize it first."
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path.name}: file not found ({path}).") from None
    except OSError as exc:
        raise DataError(f"{path.name}: cannot be read ({exc.strerror or exc}).") from None
    if not data:
        raise DataError(f"{path.name}: empty file (0 bytes).")
    return data


def inspect_image(path: str | Path) -> ImageInfo:
    """Open and fully decode one file cheaply (JPEG at 1/8 scale) to learn if it is usable.

    Raises DataError with a one-line reason for empty, non-image, truncated or
    too-large files.
    """
    path = Path(path)
    name = path.name
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    im = _open(io.BytesIO(data), name)
    with im:
        width, height = im.size
        fmt = im.format or "unknown"
        n_frames = int(getattr(im, "n_frames", 1) or 1)
        orientation = _orientation(im)
        conversion = _conversion_kind(im)
        mode = im.mode
        im.draft(im.mode, (1, 1))  # JPEG: decode at the smallest DCT scale, still every byte
        _decode(im, name)
    if orientation in _ROTATING_ORIENTATIONS:
        width, height = height, width
    valid = orientation in _EXIF_ORIENTATIONS
    expected = FORMAT_OF_EXTENSION.get(path.suffix.lower())
    same_family = fmt == expected or (expected == "JPEG" and fmt == "MPO")
    mismatch = fmt if expected and not same_family else None
    return ImageInfo(
        path=str(path),
        width=width,
        height=height,
        format=fmt,
        mode=mode,
        sha256=digest,
        converted_from=conversion,
        exif_rotated=valid and orientation != 1,
        exif_invalid=None if valid or orientation == 0 else orientation,
        n_frames=n_frames,
        extension_mismatch=mismatch,
    )


def load_rgb(
    path: str | Path, *, max_side: int | None = DEFAULT_MAX_SIDE, min_side: int | None = None
) -> Image.Image:
    """The image as training sees it: RGB, upright per EXIF, first frame, at most ``max_side``.

    JPEGs are decoded directly at a reduced scale (``draft``: 1/2, 1/4 or 1/8, done
    in the DCT, so most of the decoding is skipped) when much larger than ``max_side``,
    so memory stays bounded for huge photos, or than ``min_side``, the shortest side
    the caller's transform resizes to (``decoded_cache.decode_side``). The reduced
    photo keeps at least ``DRAFT_MARGIN`` times ``min_side``, so the transform's own
    antialiased resize still does the last step: a 12-megapixel phone photo bound for
    224 px is decoded at 1000x750, three times faster, features within 0.995 cosine
    of a full decode (measured: 0.9995; at 1/8 scale ImageNet top-1 changed on 2 of 15).
    Raises DataError with a reason for anything unreadable.
    """
    path = Path(path)
    name = path.name
    im = _open(io.BytesIO(_read_bytes(path)), name)
    with im:
        sides = [side for side in (max_side, min_side and DRAFT_MARGIN * min_side) if side]
        if sides:  # both sides stay >= the request; a no-op for other formats
            im.draft(im.mode, (min(sides), min(sides)))
        _decode(im, name)
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception:  # unusual EXIF must not lose an otherwise fine image
            upright = im.copy()
        if upright is None:  # in-place variant semantics in old Pillow versions
            upright = im.copy()
    rgb = to_rgb(upright)
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


def images_in(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given (a non-image gets its own error entry later), folders' images sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and is_image_file(p) and not is_ignored(p.relative_to(path))
            )
        else:
            found.append(path)
    return found
