"""The transfer-learning ladder for texts: 0, 1, 2, 5, 10 examples per label, then training.

Zero- and few-shot fall out of the sentence encoder itself: all-MiniLM-L6-v2
was trained to put sentences that mean the same close together, so a label's
name (zero-shot) or the mean of a few of its sentences (few-shot prototypes) is
already a classifier. Every rung is measured on the same validation texts as
the photo ladder measures photos (``tlcore.lab.ladder.build_ladder`` draws both).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from tlcore.data.manifest import Manifest
from tlcore.data.task import TEXT_LABEL, task_of
from tlcore.errors import DataError
from tlcore.lab.fewshot import DEFAULT_REPEATS, DEFAULT_SHOTS, curve_from_embeddings, load_manifest
from tlcore.lab.ladder import Ladder, build_ladder, trained_rung
from tlcore.lab.zeroshot import ZeroShotResult, names_for
from tlcore.models.minilm import MODEL_NAME, load_sentence_encoder
from tlcore.training.metrics import confusion_matrix

BATCH = 32


def embed_texts(texts: Sequence[str], encoder: object | None = None) -> torch.Tensor:
    """Unit-length sentence embeddings (N, 384) from the bundled encoder."""
    encoder = encoder or load_sentence_encoder()
    vectors = encoder.encode(list(texts), batch_size=BATCH, convert_to_tensor=True)
    return F.normalize(vectors.float().cpu(), dim=-1)


def split_embeddings(
    manifest: Manifest, split: str, encoder: object
) -> tuple[torch.Tensor, torch.Tensor]:
    items = manifest.items_for(split)
    labels = torch.tensor([it.label for it in items], dtype=torch.long)
    return embed_texts([it.text or "" for it in items], encoder), labels


def text_zero_shot(manifest: Manifest, val: tuple[torch.Tensor, torch.Tensor],
                   classes: str | Sequence[str] | None = None,
                   encoder: object | None = None) -> ZeroShotResult:  # fmt: skip
    """Each validation text gets the label whose name (as a sentence vector) is nearest."""
    started = time.perf_counter()
    names = names_for(manifest, classes)
    x_val, y_val = val
    predicted = (x_val @ embed_texts(names, encoder).T).argmax(1)
    matrix = confusion_matrix(predicted, y_val, len(manifest.classes))
    per_class = {c: (matrix[i][i] / sum(matrix[i]) if sum(matrix[i]) else 0.0)
                 for i, c in enumerate(manifest.classes)}  # fmt: skip
    return ZeroShotResult(
        accuracy=float((predicted == y_val).float().mean()) if len(y_val) else 0.0,
        chance=1 / len(manifest.classes), classes=list(manifest.classes), names=names,
        n_images=len(y_val), per_class=per_class, split="val",
        seconds=time.perf_counter() - started, model=MODEL_NAME, top_t=0, prompt="{}",
        text_model=MODEL_NAME, confusion=matrix,
    )  # fmt: skip


def text_ladder(data: str | Path | Manifest, shots: Sequence[int] = DEFAULT_SHOTS,
                repeats: int = DEFAULT_REPEATS, seed: int = 0,
                classes: str | Sequence[str] | None = None, owner: str | None = None) -> Ladder:  # fmt: skip
    """Every rung on ``data``'s validation texts (each text embedded once)."""
    manifest = load_manifest(data, seed=seed)
    if task_of(manifest) != TEXT_LABEL:
        raise DataError("The text ladder needs labelled texts (a text,label CSV).")
    encoder = load_sentence_encoder()
    train = split_embeddings(manifest, "train", encoder)
    val = split_embeddings(manifest, "val", encoder)
    curve = curve_from_embeddings(train, val, manifest.classes, shots, repeats, seed)
    zero = text_zero_shot(manifest, val, classes, encoder)
    trained = trained_rung(manifest, owner)
    missing = {} if trained else {"trained": "no finished training run on exactly these texts yet"}
    return build_ladder(curve, zero, trained, missing)
