"""``tlcore adapt`` and ``tlcore domain-shift``: domain adaptation from a shell.

``adapt`` starts a DANN run and its baseline (same settings, adaptation off),
waits for both and prints source-validation and target accuracy side by side.
``domain-shift`` writes a colour/blur-shifted copy of a dataset's photos, a
ready-made target domain for trying it out.
"""

from __future__ import annotations

import argparse
import sys

from tlcore.cli import flags, print_json
from tlcore.errors import RunError
from tlcore.training.config import AUGMENTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add adapt and domain-shift."""
    p = subparsers.add_parser(
        "adapt",
        help="train with domain adaptation (DANN) and a baseline, compare on target photos",
        description="Start two runs on DATA with the same settings, one with DANN on the "
        "unlabelled TARGET photos and one without, and report both accuracies. Target photos "
        "in folders named like a class are used only to score the models.",
    )
    flags.add_data(p, "labelled source dataset: class folders (or train/ val/), or a .zip")
    p.add_argument("--target", required=True, metavar="DIR|ZIP", help="target-domain photos")
    flags.add_model(p)
    p.add_argument("--freeze", default="last-2", metavar="PRESET",
                   help="layers to train: last-K | full | progressive (default last-2)")  # fmt: skip
    p.add_argument("--epochs", default="3", metavar="N", help="epochs per run (default 3)")
    p.add_argument("--lr", default="0.001", metavar="X", help="learning rate (default 0.001)")
    flags.add_batch_size(p)
    flags.add_img_size(p)
    p.add_argument("--augment", choices=AUGMENTS, default="light",
                   help="training augmentation (default light)")  # fmt: skip
    p.add_argument("--dann-weight", default="1.0", metavar="X",
                   help="weight of the domain loss, 0 to 100 (default 1.0)")  # fmt: skip
    flags.add_seed(p)
    flags.add_device(p)
    p.add_argument("--detach", action="store_true", help="start both runs and return at once")
    flags.add_json(p, "print the comparison as one JSON object")
    p.set_defaults(func=cmd_adapt)

    p = subparsers.add_parser(
        "domain-shift",
        help="write a colour/blur-shifted copy of a dataset (a demo target domain)",
        description="Copy the photos of one split (default val) into DEST/<class>/, with hues "
        "turned, blur and flat contrast, as if taken by a very different camera.",
    )
    p.add_argument("source", metavar="SOURCE", help="dataset folder")
    p.add_argument("dest", metavar="DEST", help="new folder to write (must not exist)")
    p.add_argument("--split", default="val", help="split to copy, or 'all' (default val)")
    p.add_argument("--seed", default="0", metavar="N", help="seed of the per-photo variation")
    p.set_defaults(func=cmd_domain_shift)


def cmd_adapt(args: argparse.Namespace) -> int:
    from tlcore.lab.adaptation_runs import comparison_rows, start_pair
    from tlcore.models.freeze_plan import FreezePlan
    from tlcore.training.config import TrainConfig

    config = TrainConfig(
        data=args.data, model=args.model, weights=flags.weights(args),
        freeze=FreezePlan.parse(args.freeze).to_dict(),
        epochs=flags.epochs(args),
        lr=flags.bounded(args, "lr"),
        batch_size=flags.batch_size(args),
        img_size=flags.img_size(args), augment=args.augment, device=args.device,
        seed=flags.seed(args),
    )  # fmt: skip
    weight = flags.bounded(args, "dann_weight")
    runs = start_pair(config, args.target, weight)
    if not args.json:
        print(f"Started baseline {runs[0].id} and DANN {runs[1].id}.", file=sys.stderr)
    if not args.detach:
        try:
            for run in runs:
                status = run.wait()
                if status["state"] != "finished":
                    raise RunError(f"run {run.id} ended {status['state']}: {status.get('message')}")
        except KeyboardInterrupt:
            print("Both runs go on in the background; see `tlcore runs`.", file=sys.stderr)
            return 130
    rows = comparison_rows(runs)
    if args.json:
        print_json({"runs": rows})
        return 0
    for row in rows:
        target = row["target accuracy"]
        source = row["source val accuracy"]
        print(
            f"{row['adaptation']:<16} {row['run']}  source val acc "
            f"{'-' if source is None else f'{source:.3f}'}  target acc "
            f"{'-' if target is None else f'{target:.3f}'} ({row['labelled target photos'] or 0} "
            "labelled target photos)"
        )
    return 0


def cmd_domain_shift(args: argparse.Namespace) -> int:
    from tlcore.lab.domain_shift import make_shifted_copy

    seed = flags.seed(args)
    split = None if args.split == "all" else args.split
    shifted = make_shifted_copy(args.source, args.dest, split=split, seed=seed)
    counts = ", ".join(f"{name} {n}" for name, n in shifted.counts.items())
    print(f"Wrote {shifted.n_images} shifted photos to {shifted.folder} ({counts}).")
    return 0
