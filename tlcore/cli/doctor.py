"""``tlcore doctor`` and ``tlcore versions``: find wrong labels, near-copies and odd photos; fix them.

``doctor DATA|RUN`` checks every labelled photo of a dataset (or of the data a
run trained on) with a pretrained backbone's embeddings, cached on disk, so a
second look takes seconds. ``--accept`` saves a new dataset version that
relabels every reported label issue to its suggestion (the photos on disk are
never touched). ``versions DATA|RUN`` lists the versions; ``tlcore train
--data DATA --data-version N`` trains on one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tlcore.cli import flags, print_json
from tlcore.data.scan import printable
from tlcore.errors import ConfigError, DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add doctor and versions."""
    p = subparsers.add_parser(
        "doctor",
        help="find photos with wrong labels, near-duplicates (leaks) and outliers",
        description="Check a dataset (or a run's data) for labels that look wrong (out-of-fold "
        "probabilities + confident learning), near-duplicate photos, pairs split between train "
        "and validation, and photos unlike every class. Uses cached embeddings of a pretrained "
        "backbone: seconds after the first pass.",
    )
    _add_source(p)
    flags.add_model(p)
    flags.add_img_size(p)
    flags.add_device(p)
    p.add_argument("--threshold", default=None, metavar="X",
                   help="embedding cosine similarity from which two photos are compared pixel by "
                   "pixel as possible near-duplicates (default 0.60: copies of a photo measured "
                   "0.66-0.97, different look-alike photos up to 0.87, so pixels decide; why: "
                   "tlcore/results/doctor.py)")  # fmt: skip
    p.add_argument("--pixel-threshold", default=None, metavar="X",
                   help="how alike two candidates' details must be, once aligned for a crop, to "
                   "count as copies (default 0.90: copies measured 0.98-1.00, different photos at "
                   "most 0.80; 0 reports every candidate, i.e. photos of the same thing)")  # fmt: skip
    p.add_argument("--top", default="10", metavar="N", help="items listed per finding (default 10)")
    p.add_argument("--accept", action="store_true",
                   help="save a new dataset version that relabels the reported label issues "
                   "whose suggestion is confident (see --accept-min) to that suggestion (photos "
                   "on disk are never changed)")  # fmt: skip
    p.add_argument("--accept-min", default="0.5", metavar="P",
                   help="with --accept: relabel only photos that a model which never saw them "
                   "gives the suggested label at least this probability (default 0.5: on "
                   "clothing4 with 10 %% wrong labels, 9 in 10 of those photos were really "
                   "mislabelled, against 2 in 3 of all suggestions; 0 accepts every suggestion)")  # fmt: skip
    flags.add_json(p, "print the findings as one JSON object")
    p.set_defaults(func=cmd_doctor)

    p = subparsers.add_parser(
        "versions",
        help="list the saved versions (label fixes) of a dataset",
        description="Every dataset version: v0 is the original; each later one lists its "
        "relabelled and left-out photos with who decided and when.",
    )
    _add_source(p, version=False)
    flags.add_json(p, "print the versions as one JSON object")
    p.set_defaults(func=cmd_versions)


def _add_source(p: argparse.ArgumentParser, version: bool = True) -> None:
    p.add_argument("source", metavar="DATA|RUN", help="a dataset folder or .zip, or a run id")
    p.add_argument("--val-fraction", default="0.2", metavar="F",
                   help="for a folder: the validation share of its split (default 0.2)")  # fmt: skip
    flags.add_seed(p, "for a folder: seed of its split")
    if version:
        p.add_argument("--data-version", default=None, metavar="N",
                       help="check this saved version (see `tlcore versions`; default: the "
                       "original, or the run's)")  # fmt: skip


def resolve_source(args: argparse.Namespace) -> dict[str, Any]:
    """The manifest to check, its file, and the model settings (the run's for a run)."""
    from tlcore.data.manifest import Manifest
    from tlcore.data.versions import VersionStore
    from tlcore.errors import RunError

    source = str(args.source)
    run = None
    if not Path(source).expanduser().exists():
        from tlcore.runs.run import Run

        try:
            run = Run.open(source)
        except RunError:
            raise DataError(f"{source} is neither a dataset folder, a .zip nor a run id "
                            "(see `tlcore runs`).") from None  # fmt: skip
    elif (Path(source) / "config.json").is_file():
        from tlcore.runs.run import Run

        run = Run.open(source)
    settings: dict[str, Any] = {}
    if run is not None:
        config = run.config
        path = config.manifest_path if _readable(config.manifest_path) else str(run.manifest_path)
        manifest = Manifest.load(path)
        settings = {"model": config.model, "weights": config.weights, "img_size": config.img_size}
        if config.weights == "scratch":
            settings["weights"] = "bundled"  # label checks need a pretrained backbone
    else:
        from tlcore.data.prepare import prepare_trainable
        from tlcore.data.progress import terminal_bar

        val_fraction = flags.bounded(args, "val_fraction")
        prepared = prepare_trainable(source, "check", val_fraction=val_fraction,
                                     seed=flags.seed(args), progress=terminal_bar())  # fmt: skip
        manifest, path = prepared.manifest, str(prepared.manifest_path)
    store = VersionStore.of(manifest, path)
    if getattr(args, "data_version", None) is not None:
        number = flags.whole(args, "data_version", 0)
        version = store.get(number)
        manifest = store.manifest(number)
        path = version.manifest_path or path
    return {"manifest": manifest, "path": path, "store": store, "settings": settings, "run": run}


def _readable(path: str | None) -> bool:
    return bool(path) and Path(str(path)).is_file()


def cmd_doctor(args: argparse.Namespace) -> int:
    from tlcore.data.progress import terminal_bar
    from tlcore.data.versions import Override, read_version
    from tlcore.results.doctor import (
        NEAR_DUPLICATE_THRESHOLD,
        PIXEL_THRESHOLD,
        confident_issues,
        diagnose,
    )

    found = resolve_source(args)
    model_settings = found["settings"] or {
        "model": args.model, "weights": flags.weights(args), "img_size": flags.img_size(args),
    }  # fmt: skip
    threshold = NEAR_DUPLICATE_THRESHOLD
    if args.threshold is not None:
        threshold = flags.number(args, "threshold", float, lambda v: 0 < v <= 1,
                                 "a cosine similarity in (0, 1], e.g. 0.95")  # fmt: skip
    pixel_threshold = PIXEL_THRESHOLD
    if args.pixel_threshold is not None:
        pixel_threshold = flags.number(args, "pixel_threshold", float, lambda v: 0 <= v <= 1,
                                       "a similarity in [0, 1], e.g. 0.9")  # fmt: skip
    top = flags.whole(args, "top", 1)
    accept_min = flags.number(args, "accept_min", float, lambda v: 0 <= v <= 1,
                              "a probability in [0, 1], e.g. 0.5")  # fmt: skip
    store = found["store"]
    report = diagnose(
        found["manifest"], device=args.device, near_duplicate_threshold=threshold,
        pixel_threshold=pixel_threshold,
        embed_paths=[item.path for item in store.base.items],
        progress=terminal_bar(quiet_for_s=0), **model_settings,
    )  # fmt: skip
    version = read_version(found["path"])
    result = report.to_dict() | {
        "data_version": version.name if version else "v0",
        "manifest_path": found["path"],
    }
    if args.accept:
        decisions = [
            Override(issue.path, "relabel", issue.suggested,
                     why=f"doctor: labelled {issue.given}, looks like {issue.suggested} "
                     f"({issue.suggested_probability:.0%})")
            for issue in confident_issues(report.label_issues, accept_min)
        ]  # fmt: skip
        if not report.label_issues:
            raise ConfigError("--accept: the doctor reported no label issue, so nothing to fix.")
        if not decisions:
            raise ConfigError(f"--accept: none of the {len(report.label_issues)} suggestions "
                              f"reaches {accept_min:.0%}; look at them on the Doctor page, or "
                              "lower --accept-min.")  # fmt: skip
        parent = version.number if version else 0
        note = ("accepted every suggestion of `tlcore doctor`" if accept_min <= 0 else
                f"accepted the suggestions of `tlcore doctor` at {accept_min:.0%} or more")  # fmt: skip
        same = store.holding(decisions)  # accepted before: a second version would be identical
        saved = same or store.create(decisions, note=note, parent=parent)
        result["accepted"] = {"version": saved.name, "number": saved.number,
                              "manifest_path": saved.manifest_path,
                              "relabelled": 0 if same else len(decisions), "new": same is None,
                              "not_accepted": len(report.label_issues) - len(decisions)}  # fmt: skip
    if args.json:
        print_json(result)
        return 0
    print(printable(f"Data doctor on {found['manifest'].root or found['path']} "
                    f"({result['data_version']}):"))  # fmt: skip
    print(report.text(top))
    if args.accept:
        accepted = result["accepted"]
        left = (f" ({accepted['not_accepted']} less sure suggestions left for you to look at)"
                if accepted["not_accepted"] else "")  # fmt: skip
        train = f"`tlcore train --data DATA --data-version {accepted['number']}`"
        if not accepted["new"]:
            print(f"\nNothing new to accept: {accepted['version']} already relabels these "
                  f"{len(decisions)} photos{left}; train on it with {train}.")  # fmt: skip
        else:
            print(f"\nSaved {accepted['version']}: {accepted['relabelled']} photos relabelled"
                  f"{left}. Train on it with {train}.")  # fmt: skip
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    found = resolve_source(args)
    versions, refused = found["store"].versions(), found["store"].refused()
    if args.json:
        print_json({"versions": [v.to_dict() for v in versions],
                    "refused": {f"v{n}": why for n, why in refused.items()}})  # fmt: skip
        return 0
    for version in versions:
        print(printable(version.summary()))
        for override in version.overrides:
            print("   " + printable(override.text()))
    for number, why in sorted(refused.items()):  # edited by hand or damaged: never trained on
        print(printable(f"v{number}: refused: {why}"))
    if len(versions) == 1:
        print(
            "No fixes saved yet: `tlcore doctor DATA` finds suspects, the Doctor page fixes them."
        )
    return 0


def version_manifest_path(data: str, number: int, val_fraction: float, seed: int) -> str:
    """The manifest file of version ``number`` of a dataset folder (for ``train --data-version``)."""
    from tlcore.data.prepare import prepare_trainable
    from tlcore.data.progress import terminal_bar
    from tlcore.data.versions import VersionStore

    prepared = prepare_trainable(data, "train on", val_fraction=val_fraction, seed=seed,
                                 progress=terminal_bar())  # fmt: skip
    store = VersionStore.of(prepared.manifest, prepared.manifest_path)
    version = store.get(number)
    return version.manifest_path or str(prepared.manifest_path)
