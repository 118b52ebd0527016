"""``tlcore zeroshot``: classify photos from class names alone, with no photo of the classes.

The pretrained model's ImageNet head says what a photo looks like among 1,000
known things; a sentence encoder places those things' names and the user's
class names in one text space; the photo gets the nearest class name (ConSE).
Nothing is trained and nothing is downloaded. With ``--data`` it measures
accuracy on the validation photos; with ``--photos`` it names the photos given.
"""

from __future__ import annotations

import argparse
import time

from tlcore.cli import flags, print_json
from tlcore.cli.embedding import print_predictions
from tlcore.data.scan import printable
from tlcore.errors import ConfigError, DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``zeroshot``."""
    p = subparsers.add_parser(
        "zeroshot",
        help="classify photos from class names alone (no training, no photos of the classes)",
        description="Zero-shot: match each photo's ImageNet guesses to your class names in a "
        "sentence-embedding space (ConSE). With --data, measure accuracy on its validation "
        "photos; with --photos, name those photos.",
    )
    p.add_argument("--data", default=None, metavar="DIR|ZIP",
                   help="class folders (or train/ val/), or a .zip: its class names are used")  # fmt: skip
    p.add_argument("--classes", default=None, metavar="A,B,C",
                   help="class names, comma-separated; with --data, one per class folder in "
                   "folder order (default: the folder names)")  # fmt: skip
    p.add_argument("--photos", nargs="+", default=None, metavar="PATH",
                   help="image files or folders to classify instead of measuring accuracy")  # fmt: skip
    p.add_argument("--split", default="val", choices=("val", "train"),
                   help="which photos of --data to measure on (default val)")  # fmt: skip
    p.add_argument("--method", default="label-match", choices=("label-match", "conse"),
                   help="label-match (default, measured best): each name picks its nearest "
                   "ImageNet classes; conse: each photo becomes a mix of its top ImageNet "
                   "names (Norouzi et al., 2014)")  # fmt: skip
    p.add_argument("--top", default=None, metavar="T",
                   help="conse only: ImageNet guesses mixed per photo (default 10)")  # fmt: skip
    flags.add_seed(p, "seed of the split when --data has no val/ folder")
    flags.add_model(p)
    flags.add_img_size(p)
    flags.add_device(p)
    flags.add_json(p, "print the result as one JSON object")
    p.set_defaults(func=cmd_zeroshot)


def cmd_zeroshot(args: argparse.Namespace) -> int:
    from tlcore.cli.embedding import load_embedder, read_photos
    from tlcore.data.progress import terminal_bar
    from tlcore.lab.zeroshot import (
        TOP_T,
        ZeroShotClassifier,
        check_imagenet_head,
        names_for,
        parse_class_names,
        zero_shot_accuracy,
    )

    started = time.perf_counter()
    if args.data is None and args.classes is None:
        raise ConfigError("give --data (its class names are used) or --classes A,B,C.")
    if args.data is None and not args.photos:
        raise ConfigError("give --photos to classify, or --data to measure accuracy on.")
    top_t = TOP_T if args.top is None else flags.whole(args, "top", 1)
    seed = flags.seed(args)
    files = _photo_files(args.photos) if args.photos else []
    bar = terminal_bar()  # stderr: reading and embedding the photos, k of N and time left
    # Names and data are checked before any model loads: a typo costs no waiting.
    manifest = read_photos(args, bar) if args.data is not None else None
    names = names_for(manifest, args.classes) if manifest else parse_class_names(args.classes)
    embedder = load_embedder(args)
    check_imagenet_head(embedder)
    if not args.photos:
        result = zero_shot_accuracy(manifest, names, embedder, args.split, seed, args.method,
                                    top_t, progress=bar)  # fmt: skip
        out = result.to_dict() | {"seconds": time.perf_counter() - started}
        if args.json:
            print_json(out | {"measure_seconds": result.seconds})
        else:
            _print_accuracy(out)
        return 0
    classifier = ZeroShotClassifier.from_names(names, args.method, top_t)
    predictions = _classify(classifier, embedder, files)
    if args.json:
        print_json({"classes": names, "predictions": predictions, "model": embedder.model_name,
                    "method": args.method, "top_t": top_t, "seconds": time.perf_counter() - started})  # fmt: skip
        return 0
    print_predictions(predictions)
    return 0


def _photo_files(paths: list[str]) -> list:
    from tlcore.data.images import images_in

    files = images_in(paths)
    if not files:
        raise DataError(f"no images found in {', '.join(repr(p) for p in paths)}.")
    return files


def _classify(classifier: object, embedder: object, files: list) -> list[dict]:
    from tlcore.lab.zeroshot import classify_images
    from tlcore.results.predict import read_for_prediction

    predictions = []
    for path in files:
        try:
            ranked = classify_images(classifier, embedder, [read_for_prediction(path)])[0]
        except DataError as exc:
            predictions.append({"path": str(path), "error": str(exc)})
            continue
        predictions.append({"path": str(path), "label": ranked[0][0], "score": ranked[0][1],
                            "scores": dict(ranked)})  # fmt: skip
    return predictions


def _print_accuracy(out: dict) -> None:
    pairs = ", ".join(
        f"{printable(c)} as '{printable(n)}'"
        for c, n in zip(out["classes"], out["names"], strict=True)
    )
    print(f"Zero-shot ({out['method']}) with {out['model']} + {out['text_model']}, no training: "
          f"{pairs}")  # fmt: skip
    print(
        f"accuracy {out['accuracy']:.3f} on {out['n_images']} {out['split']} photos "
        f"(chance {out['chance']:.3f}); {out['seconds']:.1f} seconds"
    )
    for name, acc in out["per_class"].items():
        print(f"  {printable(name)}: {acc:.3f}")
    print(f"What each name stands for among ImageNet's classes ({out['method']}):")
    for name, near in out["meanings"].items():
        print(f"  '{printable(name)}': " + ", ".join(f"{n} {w:.0%}" for n, w in near))
