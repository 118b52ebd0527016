"""``tlcore label``: which photos to label next, and does choosing them beat picking at random.

``tlcore label --data DIR --classes a,b,c`` prints the next batch of a folder of
unlabelled photos as JSON (``--answer PATH=CLASS`` records answers first; the session
keeps them, so the next call goes on). ``tlcore label --simulate --data LABELLED_DIR
--budget 12,24,48,96 --json`` replays the loop on a labelled folder with its labels
hidden and ends with ``{"budgets", "active", "random"}``.
"""

from __future__ import annotations

import argparse
import time

from tlcore.cli import flags, print_json
from tlcore.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``label``."""
    p = subparsers.add_parser(
        "label",
        help="suggest the next photos to label (active learning), or replay it on labelled data",
        description="Start from a folder of unlabelled photos and class names: the model says "
        "which photos to label next (those it is least sure of, spread over the collection). "
        "With --simulate, replay that on a labelled folder against photos picked at random.",
    )
    flags.add_data(p, "folder of photos (with --simulate: labelled class folders or train/ val/)")
    p.add_argument("--classes", default=None, metavar="A,B,C",
                   help="the class names, comma-separated (not with --simulate)")  # fmt: skip
    p.add_argument("--answer", action="append", default=[], metavar="PATH=CLASS",
                   help="record an answer before suggesting (CLASS may be skip or none); "
                   "repeat the flag for several")  # fmt: skip
    p.add_argument("--undo", action="store_true", help="take back the last answer first")
    p.add_argument("--size", default="12", metavar="N", help="photos per batch (default 12)")
    p.add_argument("--save", action="store_true",
                   help="save the labels as a new dataset version (a manifest to train on)")  # fmt: skip
    p.add_argument("--simulate", action="store_true",
                   help="replay labelling on a labelled folder: active vs random accuracy")  # fmt: skip
    p.add_argument("--budget", default="12,24,48,96", metavar="LIST",
                   help="--simulate: label counts to measure at (default 12,24,48,96)")  # fmt: skip
    p.add_argument("--seeds", default="5", metavar="N",
                   help="--simulate: seeds averaged, 1 to 50 (default 5)")  # fmt: skip
    flags.add_seed(p, "seed of the first pick, the CV and (--simulate) the split")
    flags.add_model(p)
    flags.add_img_size(p)
    flags.add_device(p)
    flags.add_json(p, "--simulate: print the result as one JSON object (the batch is always JSON)")
    p.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    if args.simulate:
        return _simulate(args)
    if not args.classes:
        raise ConfigError("give the class names with --classes A,B,C (or --simulate on "
                          "labelled photos).")  # fmt: skip
    return _suggest(args)


def _suggest(args: argparse.Namespace) -> int:
    from tlcore.data.progress import terminal_bar
    from tlcore.lab.label_session import LabelSession, embed_photos, guesses_from_names

    started = time.perf_counter()
    size = flags.whole(args, "size", 1, 100)
    seed = flags.seed(args)
    session = LabelSession.start(args.data, args.classes, args.model, flags.weights(args),
                                 flags.img_size(args))  # fmt: skip
    if args.undo:
        session.undo()
    for given in args.answer:
        path, answer = _split_answer(given, session.classes)
        session.answer(_photo_path(path), answer)
    embedder = session.embedder(args.device)
    x, paths, unreadable = embed_photos(session.photos(), embedder, terminal_bar())
    prior = guesses_from_names(x, session.classes, embedder) if session.needs_names() else None
    batch, model = session.next_batch(x, paths, size, prior, seed)
    session.record_progress(model)
    answers = session.answers()
    out = {
        "session": str(session.dir), "classes": session.classes, "photos": len(paths),
        "unreadable": [{"path": p, "why": why} for p, why in unreadable.items()],
        "labelled": len(answers.labels), "skipped": len(answers.skipped),
        "unknown": len(answers.unknown), "model": model.summary(),
        "guesses_from": "labels" if model.head is not None else ("names" if prior is not None else "none"),
        "batch": [{"path": paths[s.index]} | {k: v for k, v in s.to_dict().items() if k != "index"}
                  for s in batch],
    }  # fmt: skip
    if args.save:
        out["version"] = str(session.save_version(seed))
    print_json(out | {"seconds": round(time.perf_counter() - started, 2)})
    return 0


def _split_answer(given: str, classes: list[str]) -> tuple[str, str]:
    """'PATH=CLASS' -> (PATH, CLASS), at the '=' whose right side is an answer (a class name
    or a photo's name may hold '=' too)."""
    from tlcore.lab.label_session import NONE, SKIP

    answers = {*classes, SKIP, NONE}
    for at in (i for i, ch in enumerate(given) if ch == "="):
        if at and given[at + 1 :].strip() in answers:
            return given[:at], given[at + 1 :].strip()
    path, sep, answer = given.rpartition("=")
    if not sep or not path:
        raise ConfigError(f"--answer {given[:80]!r} is not PATH=CLASS.")
    return path, answer.strip()  # not an answer: the session says so in words


def _photo_path(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


def _simulate(args: argparse.Namespace) -> int:
    from tlcore.cli.embedding import load_embedder
    from tlcore.data.progress import terminal_bar
    from tlcore.lab.label_simulation import MAX_SEEDS, parse_budgets, simulate

    if args.classes:
        raise ConfigError("--simulate reads the classes from the labelled folders: leave out "
                          "--classes.")  # fmt: skip
    budgets = parse_budgets(args.budget)
    seeds = flags.whole(args, "seeds", 1, MAX_SEEDS)
    size = flags.whole(args, "size", 1, 100)
    flags.img_size(args)
    bar = terminal_bar()
    result = simulate(args.data, budgets, seeds, size, flags.seed(args), load_embedder(args), bar)
    if args.json:
        print_json(result.to_dict() | {"budgets": result.budgets, "active": result.active,
                                       "random": result.random})  # fmt: skip
        return 0
    print(f"Labelling replayed on {result.n_train} training photos, measured on {result.n_val} "
          f"validation photos, mean of {result.seeds} seeds (chance {result.chance:.3f}):")  # fmt: skip
    print(f"{'labels':>8}  {'chosen':>7}  {'random':>7}")
    for b, a, r in zip(result.budgets, result.active, result.random, strict=True):
        print(f"{b:>8}  {a:>7.3f}  {r:>7.3f}")
    return 0
