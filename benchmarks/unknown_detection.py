"""Which "none of these" score, measured: AUROC of each candidate, both ways, and ECE.

Not a speed benchmark (so not a ``bench_*`` module): it scores two finished runs,
one trained on each bundled sample, and uses the other sample's photos as the
unknown ones. The table in ``tlcore/results/unknown.py`` comes from it::

    .venv/bin/tlcore train --data assets/ants-bees --json     # defaults; note the run id
    .venv/bin/tlcore train --data assets/clothing4 --json
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.unknown_detection ANTS_RUN CLOTHING_RUN

Known: the run's validation photos. Unknown: every photo (train and val) of the other
sample. Also printed: the run's ECE before and after temperature scaling, and the
share of known photos accepted and unknown photos flagged at the run's threshold.
"""

from __future__ import annotations

import argparse
import json

import torch


def measure(run_id: str, other_sample: str) -> dict:
    from tlcore.data.images import images_in
    from tlcore.data.manifest import Manifest
    from tlcore.results.calibration import calibrate
    from tlcore.results.unknown import compare_methods
    from tlcore.runs.run import Run
    from tlcore.runs.scoring import load_predictor
    from tlcore.runs.trust_store import ensure_trust

    run = Run.open(run_id)
    trust = ensure_trust(run, "best")
    predictor = load_predictor(run, "best")
    manifest = Manifest.load(run.manifest_path)
    train, val = manifest.items_for("train"), manifest.items_for("val")
    _, train_feats = predictor.logits_and_features([it.path for it in train])
    val_logits, val_feats = predictor.logits_and_features([it.path for it in val])
    other = [str(p) for p in images_in([other_sample])]
    other_logits, other_feats = predictor.logits_and_features(other)
    targets = torch.tensor([it.label for it in val])
    cal = calibrate(val_logits, targets)
    aurocs = compare_methods(
        train_feats,
        torch.tensor([it.label for it in train]),
        (val_feats, val_logits),
        (other_feats, other_logits),
        temperature=cal.temperature,
    )
    detector = trust.detector
    return {
        "run": run.id,
        "classes": manifest.classes,
        "known_photos": len(val),
        "unknown_photos": len(other),
        "unknown_from": other_sample,
        "val_accuracy": float((val_logits.argmax(1) == targets).float().mean()),
        "temperature": cal.temperature,
        "ece_before": cal.ece_before,
        "ece_after_crossfitted": cal.ece_after,
        "auroc": aurocs,
        "threshold": detector.threshold,
        "known_accepted": float((~detector.is_unknown(detector.scores(val_feats))).float().mean()),
        "unknown_flagged": float(detector.is_unknown(detector.scores(other_feats)).float().mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unknown_detection")
    parser.add_argument("ants_bees_run", help="a finished run trained on assets/ants-bees")
    parser.add_argument("clothing_run", help="a finished run trained on assets/clothing4")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    rows = [
        measure(args.ants_bees_run, "assets/clothing4"),
        measure(args.clothing_run, "assets/ants-bees"),
    ]
    for r in rows:
        print(json.dumps(r, indent=1))
    names = list(rows[0]["auroc"])
    print(f"\n| score | {rows[0]['run']} vs clothing4 | {rows[1]['run']} vs ants-bees |")
    print("|---|---|---|")
    for name in names:
        print(f"| {name} | {rows[0]['auroc'][name]:.3f} | {rows[1]['auroc'][name]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
