"""Issue 21's measurements of the data doctor on the clothing4 sample (not a timed benchmark).

    python -m benchmarks.doctor_measure [--train]

1. Flip 10 % of the training labels (seed 21) as a dataset version, run the doctor:
   precision / recall of the reported label issues, doctor time on a cold and a warm cache.
2. Accept every suggestion as a new version, and only the confident ones (``--accept``'s
   default) as another; with ``--train`` train on the clean, noisy and both fixed versions
   (``tlcore train --data-version N --augment none``): validation accuracy.
3. Copy clothing4, put resized / cropped / re-compressed copies of 12 photos into the other
   split: which copies the doctor pairs with their original, and any other pair it reports;
   the copies' lowest embedding cosine and pixel similarity, and the highest pixel similarity
   of any other candidate pair (the margins around tlcore.results.doctor's thresholds).

Runs, uploads and caches go to a temporary folder (TLCORE_RUNS_DIR / TLCORE_UPLOADS_DIR).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "assets" / "clothing4"


def label_noise(work: Path, train: bool) -> dict:
    from tlcore.data.prepare import prepare_data
    from tlcore.data.versions import Override, VersionStore
    from tlcore.results.doctor import confident_issues, diagnose

    prepared = prepare_data(DATA)
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    base = store.base
    rng = random.Random(21)
    flipped = rng.sample(base.items_for("train"), round(0.1 * len(base.items_for("train"))))
    flips = []
    for item in flipped:
        others = [c for c in base.classes if c != base.classes[item.label]]
        flips.append(Override(item.path, "relabel", rng.choice(others)))
    noisy = store.create(flips, author="benchmark", note="10 % flipped", parent=0)
    every = [item.path for item in base.items]
    seconds = []
    for _ in range(2):  # cold, then warm cache
        started = time.perf_counter()
        report = diagnose(store.manifest(noisy.number), img_size=224, embed_paths=every)
        seconds.append(time.perf_counter() - started)
    truth, found = {i.path for i in flipped}, {i.path for i in report.label_issues}
    base_label = {i.path: i.label for i in base.items}
    hits = len(truth & found)
    result = {"flipped": len(truth), "reported": len(found), "correct": hits,
              "precision": round(hits / max(1, len(found)), 3),
              "recall": round(hits / len(truth), 3),
              "doctor_seconds_cold": round(seconds[0], 1),
              "doctor_seconds_warm": round(seconds[1], 1)}  # fmt: skip
    fixes = [Override(i.path, "relabel", i.suggested) for i in report.label_issues]
    fixed = store.create(fixes, author="benchmark", note="accept all", parent=noisy.number)
    sure = confident_issues(report.label_issues)  # what --accept and the page's button take
    right = sum(i.path in truth and i.suggested == base.classes[base_label[i.path]] for i in sure)
    result |= {"confident_accepted": len(sure), "confident_right": right}
    fixes = [Override(i.path, "relabel", i.suggested) for i in sure]
    confident = store.create(
        fixes, author="benchmark", note="accept confident", parent=noisy.number
    )
    if train:
        versions = (("clean", 0), ("noisy", noisy.number), ("fixed", fixed.number),
                    ("fixed_confident", confident.number))  # fmt: skip
        for name, number in versions:
            cmd = [sys.executable, "-m", "tlcore", "train", "--data", str(DATA), "--data-version",
                   str(number), "--augment", "none", "--img-size", "224", "--json"]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            result[f"val_accuracy_{name}"] = json.loads(out.strip().splitlines()[-1])[
                "val_accuracy"
            ]
    return result


def near_duplicates(work: Path) -> dict:
    from tlcore.data.prepare import prepare_data
    from tlcore.results.doctor import diagnose

    folder = work / "clothing4-copies"
    shutil.copytree(DATA, folder)
    rng = random.Random(21)
    copies = {}
    for k, photo in enumerate(rng.sample(sorted(folder.rglob("*.jpg")), 12)):
        split, label = photo.parts[-3], photo.parts[-2]
        kind = ("resized", "cropped", "recompressed")[k % 3]
        with Image.open(photo) as opened:
            image = opened.convert("RGB")
        if kind == "resized":
            image = image.resize((image.width // 2, image.height // 2), Image.BICUBIC)
        elif kind == "cropped":
            w, h = image.size
            image = image.crop((int(w * 0.08), int(h * 0.08), int(w * 0.92), int(h * 0.92)))
        other = "val" if split == "train" else "train"
        copy = folder / other / label / f"copy-{kind}-{photo.stem}.jpg"
        image.save(copy, quality=35 if kind == "recompressed" else 90)
        copies[frozenset((str(photo), str(copy)))] = kind
    manifest = prepare_data(folder).manifest
    report = diagnose(manifest, img_size=224)
    pairs = {frozenset((p.a, p.b)): p for p in report.near_duplicates}
    found = {kind: 0 for kind in ("resized", "cropped", "recompressed")}
    for pair, kind in copies.items():
        found[kind] += pair in pairs
    touched = set().union(*copies)
    others = [p for key, p in pairs.items() if key not in copies]
    # every embedding candidate with its pixel score (pixel threshold 0): the margins on both sides
    candidates = diagnose(manifest, img_size=224, pixel_threshold=0.0).near_duplicates
    copy_scores = [(p.similarity, p.pixel_similarity) for p in candidates
                   if frozenset((p.a, p.b)) in copies]  # fmt: skip
    other_scores = [p.pixel_similarity for p in candidates if frozenset((p.a, p.b)) not in copies]
    return {"copies_found": found, "copies_per_kind": 4,
            "other_pairs": [(Path(p.a).name, Path(p.b).name, p.similarity) for p in others],
            "other_pairs_among_untouched": sum(1 for p in others if not {p.a, p.b} & touched),
            "copies_embedding_cosine_min": min(s for s, _ in copy_scores),
            "copies_pixel_similarity_min": min(s for _, s in copy_scores),
            "candidate_pairs": len(candidates),
            "other_candidates_pixel_similarity_max": max(other_scores, default=None)}  # fmt: skip


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tlcore-doctor-"))
    os.environ["TLCORE_RUNS_DIR"] = str(work / "runs")
    os.environ["TLCORE_UPLOADS_DIR"] = str(work / "uploads")
    print(json.dumps({"label_noise": label_noise(work, "--train" in sys.argv)}), flush=True)
    print(json.dumps({"near_duplicates": near_duplicates(work)}), flush=True)


if __name__ == "__main__":
    main()
