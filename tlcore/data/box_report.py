"""The detection data report in words: photos, boxes per class and per photo, box sizes at
the training size, background photos, and every box or file that was not used."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from tlcore.data.boxes import BoxData
from tlcore.data.scan import printable

TOO_SMALL_PX = 8  # a box under 8 px on its short side at the training size is hard to find
DEFAULT_LONG_SIDE = 512


def training_size(data: BoxData, long_side: int | None = None) -> tuple[int, int]:
    """(height, width) every photo is resized to: the most common photo shape with its long
    side at ``long_side`` (default: the photos' own, at most 512), multiples of 32."""
    w, h = Counter((p.width, p.height) for p in data.photos).most_common(1)[0][0]
    side = long_side or min(DEFAULT_LONG_SIDE, max(w, h))
    scale = side / max(w, h)
    return max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)


def box_sides(data: BoxData, size: tuple[int, int]) -> list[float]:
    """The square-root area of every box at the training size (for anchors and words)."""
    sides = []
    for p in data.photos:
        sx, sy = size[1] / p.width, size[0] / p.height
        sides += [((b.width * sx) * (b.height * sy)) ** 0.5 for b in p.boxes]
    return sides


def box_report(data: BoxData, size: tuple[int, int]) -> list[str]:
    """One line per fact, written for a person (names are printable, not formatted)."""
    photos = data.photos
    counts = Counter(b.label for p in photos for b in p.boxes)
    per_photo = [len(p.boxes) for p in photos]
    lines = [
        f"{len(photos)} photos with {sum(per_photo)} boxes of {len(counts)} classes, read as "
        f"{data.format.upper()} from {printable(Path(data.root).name)}.",
        "Boxes per class: "
        + ", ".join(f"{printable(c)} {n}" for c, n in counts.most_common())
        + ".",
        f"Boxes per photo: {min(per_photo)} to {max(per_photo)}, "
        f"median {statistics.median(per_photo):g}.",
    ]
    sides = box_sides(data, size)
    small = {c: 0 for c in counts}
    for p in photos:
        sx, sy = size[1] / p.width, size[0] / p.height
        for b in p.boxes:
            if min(b.width * sx, b.height * sy) < TOO_SMALL_PX:
                small[b.label] += 1
    lines.append(
        f"At the training size {size[1]}×{size[0]} boxes are {min(sides):.0f} to "
        f"{max(sides):.0f} px across (median {statistics.median(sides):.0f}); "
        + (f"{sum(small.values())} are under {TOO_SMALL_PX} px and hard to find ("
           + ", ".join(f"{printable(c)} {n}" for c, n in small.items() if n) + ")."
           if any(small.values()) else f"none is under {TOO_SMALL_PX} px.")
    )  # fmt: skip
    background = sum(1 for n in per_photo if n == 0)
    if background:
        lines.append(f"{background} photos have no box: kept as background (nothing to find).")
    if data.problems:
        lines.append(f"{len(data.problems)} boxes or files were clipped, dropped or skipped:")
        lines += [f"  - {printable(p)}" for p in data.problems[:50]]
        if len(data.problems) > 50:
            lines.append(f"  - and {len(data.problems) - 50} more.")
    if data.annotations_without_photo:
        names = ", ".join(printable(n) for n in data.annotations_without_photo[:10])
        lines.append(f"{len(data.annotations_without_photo)} annotation(s) without a photo: "
                     f"{names}.")  # fmt: skip
    if data.photos_without_annotation:
        names = ", ".join(printable(n) for n in data.photos_without_annotation[:10])
        lines.append(f"{len(data.photos_without_annotation)} photo(s) without annotations "
                     f"(kept as background): {names}.")  # fmt: skip
    by_split = Counter(p.split for p in photos)
    lines.append(f"Split: {by_split.get('train', 0)} training, {by_split.get('val', 0)} "
                 f"validation, {by_split.get('test', 0)} test photos ({data.split_source}).")  # fmt: skip
    for split in ("train", "val"):
        missing = set(counts) - {b.label for p in photos if p.split == split for b in p.boxes}
        if missing:
            lines.append(f"No {split} photo has a box of: "
                         + ", ".join(printable(c) for c in sorted(missing)) + ".")  # fmt: skip
    return lines
