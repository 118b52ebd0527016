"""What ``tlcore zeroshot`` and ``tlcore fewshot`` share: the photos read and split, the
pretrained backbone that embeds them (each wait with its bar on stderr), and how a
prediction per photo is printed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tlcore.cli import flags
from tlcore.data.progress import ProgressCallback

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest
    from tlcore.lab.fewshot import Embedder


def read_photos(args: argparse.Namespace, progress: ProgressCallback | None) -> Manifest:
    """``--data`` scanned, checked and split by ``--seed`` (DataError in words when unusable)."""
    from tlcore.lab.fewshot import load_manifest

    return load_manifest(args.data, seed=flags.seed(args), progress=progress)


def load_embedder(args: argparse.Namespace) -> Embedder:
    """The backbone of ``--model`` / ``--weights`` / ``--img-size`` / ``--device``, head unused."""
    from tlcore.lab.fewshot import Embedder

    return Embedder(args.model, flags.weights(args), flags.img_size(args), args.device)


def print_predictions(predictions: list[dict]) -> None:
    """One line per photo: its label and score, or its error. Names are the user's: control
    characters are spelled out (``printable``), never sent to the terminal."""
    from tlcore.data.scan import printable

    for p in predictions:
        if "error" in p:
            print(f"{printable(p['path'])}: error: {printable(p['error'])}")
        else:
            print(f"{printable(p['path'])}: {printable(p['label'])} (score {p['score']:.2f})")
