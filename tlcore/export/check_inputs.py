"""The real inputs an ONNX or TorchScript file is checked on: a run's own photos or sentences.

An exported graph is compared with PyTorch on what the run itself was trained on
(validation first), prepared exactly as the ``Predictor`` prepares them, so a file
that computes something else fails before it is handed over. Which reader a run
uses is its task's entry in ``tlcore.export.tasks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tlcore.errors import DataError, TLCoreError

if TYPE_CHECKING:
    import torch

    from tlcore.results.predict import Predictor
    from tlcore.results.text_predict import TextPredictor
    from tlcore.runs.run import Run


def photos_to_check(run: Run, predictor: Predictor, limit: int) -> torch.Tensor:
    """Up to ``limit`` of the run's photos that can still be read, preprocessed for prediction."""
    import torch

    from tlcore.data.manifest import Manifest

    manifest = Manifest.load(run.manifest_path)
    tensors = []
    for item in manifest.items_for("val") + manifest.items_for("train"):
        if len(tensors) >= limit:
            break
        try:
            tensors.append(predictor.preprocess(item.path))
        except TLCoreError:
            continue  # moved or deleted since training: try the next photo
    if not tensors:
        raise DataError(
            f"cannot check the export on real photos: none of run {run.id}'s photos under "
            f"{manifest.root} can be read any more. Put the dataset back where it was, then export."
        )
    return torch.stack(tensors)


def texts_to_check(run: Run, predictor: TextPredictor, limit: int) -> torch.Tensor:
    """Up to ``limit`` of the run's own sentences as token ids, padding trimmed."""
    from tlcore.data.manifest import Manifest

    manifest = Manifest.load(run.manifest_path)
    texts = [item.text or "" for item in manifest.items_for("val") + manifest.items_for("train")]
    return predictor.token_ids(texts[:limit])
