"""A multi-label table from the detection sample: which cell kinds each BCCD photo shows.

``python -m benchmarks.bccd_tags`` writes ``assets/bccd/tags.csv`` (``image,cells``, the
classes present per photo from its Pascal VOC boxes, separated by ``|``). Measure it with
``python -m benchmarks.multitask_vs_single assets/bccd/tags.csv --tasks cells --group ""``
(mAP and micro-F1 of the heads on cached embeddings against logistic regression).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tlcore import settings

BCCD = settings.PROJECT_ROOT / "assets" / "bccd"


def main() -> None:
    rows = ["image,cells"]
    for xml in sorted((BCCD / "Annotations").glob("*.xml")):
        photo = BCCD / "JPEGImages" / f"{xml.stem}.jpg"
        if not photo.is_file():
            continue
        names = sorted(
            {o.findtext("name", "").strip() for o in ET.parse(xml).getroot().iter("object")}
        )
        rows.append(f'JPEGImages/{photo.name},"{"|".join(n for n in names if n)}"')
    (BCCD / "tags.csv").write_text("\n".join(rows) + "\n")
    print(f"{len(rows) - 1} photos -> {BCCD / 'tags.csv'}")


if __name__ == "__main__":
    main()
