"""``tlcore fewshot``: how far do 1, 2, 5, 10 photos per class go, with no training at all.

Each class becomes the mean embedding of a few random training photos (a
prototype); validation photos get the nearest prototype's class. Accuracy is
averaged over seeded random draws, so the numbers are reproducible. Optional
``--predict`` paths are classified with prototypes built from every training photo.
"""

from __future__ import annotations

import argparse
from typing import Any

from tlcore.cli import flags, print_json
from tlcore.cli.embedding import print_predictions
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
                   help="random draws averaged per point, 1 to 1000 (default 20)")  # fmt: skip
    flags.add_seed(p, "seed of the draws and split")
    flags.add_model(p)
    flags.add_img_size(p)
    flags.add_device(p)
    p.add_argument("--predict", nargs="*", default=[], metavar="PATH",
                   help="image files or folders to classify with all training photos")  # fmt: skip
    p.add_argument("--ladder", action="store_true",
                   help="also measure zero-shot (class names only) and the best finished "
                   "training run on these photos: the whole ladder")  # fmt: skip
    flags.add_json(p, "print the result as one JSON object")
    p.set_defaults(func=cmd_fewshot)


def cmd_fewshot(args: argparse.Namespace) -> int:
    from tlcore.cli.embedding import load_embedder, read_photos
    from tlcore.data.images import images_in
    from tlcore.data.progress import terminal_bar
    from tlcore.lab.fewshot import MAX_REPEATS, classify_images, parse_shots, shots_curve
    from tlcore.results.predict import read_for_prediction

    shots = parse_shots(args.shots)
    repeats = flags.whole(args, "repeats", 1, MAX_REPEATS)  # a count flag has a bound
    seed = flags.seed(args)
    from tlcore.data.text_source import is_text_source

    if is_text_source(args.data):  # labelled texts: the text ladder (tlcore.lab.text_ladder)
        return _text_ladder(args, shots, repeats, seed)
    flags.img_size(args)  # a bad --img-size fails before the photos are read
    files = images_in(args.predict) if args.predict else []
    if args.predict and not files:
        raise DataError(f"no images found in {', '.join(args.predict)}.")
    bar = terminal_bar()  # stderr: reading and embedding the photos, k of N and time left
    manifest = read_photos(args, bar)
    embedder = load_embedder(args)
    curve = shots_curve(manifest, shots, repeats, seed, embedder=embedder, progress=bar)
    predictions = []
    if files:
        from tlcore.lab.fewshot import prototypes_for

        classifier = prototypes_for(manifest, embedder, progress=bar)
        for path in files:
            try:
                ranked = classify_images(classifier, embedder, [read_for_prediction(path)])[0]
            except DataError as exc:
                predictions.append({"path": str(path), "error": str(exc)})
                continue
            predictions.append({"path": str(path), "label": ranked[0][0], "score": ranked[0][1]})
    from tlcore.data.scan import printable

    ladder = _ladder(curve, manifest, embedder, seed, bar) if args.ladder else None
    if args.json:
        extra = {"ladder": ladder.to_dict()} if ladder is not None else {}
        print_json(curve.to_dict() | {"predictions": predictions} | extra)
        return 0
    print(f"Few-shot prototypes on {manifest.root} ({', '.join(manifest.classes)}):")
    print(curve.text())
    if ladder is not None:
        print("The ladder (validation accuracy):")
        for rung in ladder.rungs:
            print(f"  {rung.label:>24}  {rung.accuracy:.3f}  {printable(rung.detail)}")
        for kind, why in ladder.missing.items():
            print(f"  {kind}: not measured ({printable(why)})")
    print_predictions(predictions)
    return 0


def _text_ladder(args: argparse.Namespace, shots: tuple[int, ...], repeats: int, seed: int) -> int:
    """Zero-shot (label names), 1-10 examples per label and all of them, with the encoder."""
    from tlcore.lab.task_ladders import measure_ladder

    ladder = measure_ladder(args.data, shots, repeats, seed)  # the texts' ladder (lab.ladder)
    if args.json:
        print_json(ladder.to_dict())
        return 0
    print(f"Texts: {', '.join(ladder.classes)} ({ladder.n_val} validation texts, "
          f"chance {ladder.chance:.2f})")  # fmt: skip
    for rung in ladder.rungs:
        spread = f" ± {rung.spread:.3f}" if rung.spread is not None else ""
        print(f"  {rung.label:<24} {rung.accuracy:.3f}{spread}  {rung.detail}")
    return 0


def _ladder(curve: Any, manifest: Any, embedder: Any, seed: int, bar: Any = None) -> Any:
    """Zero-shot and the trained rung added to a measured curve."""
    from tlcore.errors import TLCoreError
    from tlcore.lab.ladder import build_ladder, trained_rung
    from tlcore.lab.zeroshot import zero_shot_accuracy

    missing = {}
    try:
        zero = zero_shot_accuracy(manifest, None, embedder, seed=seed, progress=bar)
    except TLCoreError as exc:
        zero, missing["zero-shot"] = None, str(exc)
    trained = trained_rung(manifest)
    if trained is None:
        missing["trained"] = "no finished training run on exactly these photos yet"
    return build_ladder(curve, zero, trained, missing)
