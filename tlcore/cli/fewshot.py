"""``tlcore fewshot``: how far do 1, 2, 5, 10 photos per class go, with no training at all.

Each class becomes the mean embedding of a few random training photos (a
prototype); validation photos get the nearest prototype's class. Accuracy is
averaged over seeded random draws, so the numbers are reproducible. Optional
``--predict`` paths are classified with prototypes built from every training photo.
"""

from __future__ import annotations

import argparse

from tlcore.cli import flags, print_json
from tlcore.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fewshot``."""
    p = subparsers.add_parser(
        "fewshot",
        help="accuracy vs photos per class with a prototype classifier (no training)",
        description="Measure nearest-class-mean accuracy on the validation split with 1, 2, 5, "
        "10 random training photos per class, using a pretrained backbone's embeddings.",
    )
    flags.add_data(p)
    p.add_argument("--shots", default="1,2,5,10", metavar="LIST",
                   help="photos per class to try, comma-separated (default 1,2,5,10)")  # fmt: skip
    p.add_argument("--repeats", default="20", metavar="N",
                   help="random draws averaged per point (default 20)")  # fmt: skip
    flags.add_seed(p, "seed of the draws and split")
    flags.add_model(p)
    flags.add_img_size(p)
    flags.add_device(p)
    p.add_argument("--predict", nargs="*", default=[], metavar="PATH",
                   help="image files or folders to classify with all training photos")  # fmt: skip
    flags.add_json(p, "print the result as one JSON object")
    p.set_defaults(func=cmd_fewshot)


def cmd_fewshot(args: argparse.Namespace) -> int:
    from tlcore.data.images import images_in
    from tlcore.lab.fewshot import (
        Embedder,
        classify_images,
        load_manifest,
        parse_shots,
        shots_curve,
    )
    from tlcore.results.predict import read_for_prediction

    shots = parse_shots(args.shots)
    repeats = flags.whole(args, "repeats", 1)
    seed = flags.whole(args, "seed", 0)
    img_size = flags.img_size(args)
    files = images_in(args.predict) if args.predict else []
    if args.predict and not files:
        raise DataError(f"no images found in {', '.join(args.predict)}.")
    manifest = load_manifest(args.data, seed=seed)
    embedder = Embedder(args.model, flags.weights(args), img_size, args.device)
    curve = shots_curve(manifest, shots, repeats, seed, embedder=embedder)
    predictions = []
    if files:
        from tlcore.lab.fewshot import prototypes_for

        classifier = prototypes_for(manifest, embedder)
        for path in files:
            try:
                ranked = classify_images(classifier, embedder, [read_for_prediction(path)])[0]
            except DataError as exc:
                predictions.append({"path": str(path), "error": str(exc)})
                continue
            predictions.append({"path": str(path), "label": ranked[0][0], "score": ranked[0][1]})
    if args.json:
        print_json(curve.to_dict() | {"predictions": predictions})
        return 0
    print(f"Few-shot prototypes on {manifest.root} ({', '.join(manifest.classes)}):")
    print(curve.text())
    for p in predictions:
        if "error" in p:
            print(f"{p['path']}: error: {p['error']}")
        else:
            print(f"{p['path']}: {p['label']} (score {p['score']:.2f})")
    return 0
