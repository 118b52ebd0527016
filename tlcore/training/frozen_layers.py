"""The partial fast path: a text encoder's frozen bottom layers run once per sentence.

Fine-tuning the last layers of a text encoder leaves the embeddings and the first
transformer layers frozen in every epoch. Frozen layers run as at inference (no
dropout: ``TextClassifier.train``) and text has no augmentation, so their output
for a sentence never changes: it is computed once (and kept on disk beside the
fast path's sentence embeddings), and every epoch runs only the layers that learn.

Attention never looks at padding, so a real token's hidden state does not depend on
how much padding its batch had. Each sentence's states are therefore stored alone,
without padding, and padded again per batch to the batch's longest sentence: the
same shapes as the full model's trimmed batches, so the layers that learn see the
same numbers and draw the same dropout masks from the same random state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tlcore.training.devices import autocast

log = logging.getLogger("tlcore.training.frozen_layers")


def cache_depth(model: nn.Module, trainable_per_epoch: list[set[str]]) -> int:
    """Transformer layers frozen in every epoch whose output can be cached (0: none).

    Only models that can resume their forward pass after a layer (``forward_prefix``,
    ``forward_from`` and ``frozen_depth``, as ``tlcore.models.text_models`` has) qualify."""
    needed = ("forward_prefix", "forward_from", "frozen_depth")
    if not all(hasattr(model, name) for name in needed) or not trainable_per_epoch:
        return 0
    trainable = set().union(*trainable_per_epoch)
    if not trainable:
        return 0
    return max(0, int(model.frozen_depth(trainable)))


def draw_like_a_loader() -> None:
    """Take the one number a ``DataLoader`` draws from torch's generator when it starts an
    epoch (its workers' base seed), so the dropout masks after it match the full model's."""
    torch.empty((), dtype=torch.int64).random_()


class FrozenStates:
    """Every sentence's hidden states after the frozen layers, padding left out.

    ``states`` is ``[all real tokens, width]``, sentence after sentence; ``lengths`` says
    how many rows each sentence owns."""

    def __init__(self, states: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> None:
        self.states, self.lengths, self.labels = states, lengths.long(), labels
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden ``[B, longest, width]``, token mask ``[B, longest]``) for these sentences."""
        lengths = self.lengths[index]
        width = int(lengths.max()) if len(lengths) else 1
        hidden = self.states.new_zeros(len(lengths), width, self.states.shape[1])
        mask = torch.zeros(len(lengths), width, dtype=torch.bool, device=self.states.device)
        for row, (start, n) in enumerate(
            zip(self.offsets[index].tolist(), lengths.tolist(), strict=True)
        ):
            hidden[row, :n] = self.states[start : start + n]
            mask[row, :n] = True
        return hidden, mask

    def batches(self, batch_size: int):
        """The sentences in order, ``batch_size`` at a time: ((hidden, mask), labels)."""
        for index in torch.arange(len(self)).split(batch_size):
            yield self.batch(index), self.labels[index.to(self.labels.device)]


@torch.no_grad()
def run_frozen(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    depth: int,
    device: torch.device,
    progress: Callable[[int], None] | None = None,
) -> FrozenStates:
    """The embeddings and the first ``depth`` layers over every sentence, in loader order."""
    was_training = model.training
    model.eval()
    states, lengths, labels = [], [], []
    for ids, targets in loader:
        with autocast(device):
            hidden, mask = model.forward_prefix(ids.to(device), depth)
        states.append(hidden[mask].float())
        lengths.append(mask.sum(1).cpu())
        labels.append(targets.to(device))
        if progress is not None:
            progress(len(targets))
    model.train(was_training)
    if not lengths:
        width = int(getattr(model, "num_features", 1))
        return FrozenStates(torch.zeros(0, width, device=device), torch.zeros(0, dtype=torch.long),
                            torch.zeros(0, dtype=torch.long, device=device))  # fmt: skip
    return FrozenStates(torch.cat(states), torch.cat(lengths), torch.cat(labels))


def run_frozen_cached(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    depth: int,
    device: torch.device,
    cache_file: Path | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[FrozenStates, bool]:
    """``run_frozen`` with an on-disk cache, so re-runs and resumes skip the frozen layers."""
    from tlcore.training.embedding_cache import read_cache, write_cache

    def fits(cached: dict[str, torch.Tensor]) -> bool:
        lengths = cached["lengths"]
        return len(lengths) == len(loader.dataset) and int(lengths.sum()) == len(cached["states"])

    cached = read_cache(cache_file, fits, "frozen-layer")
    if cached is not None:
        return FrozenStates(cached["states"].to(device), cached["lengths"],
                            cached["labels"].to(device)), True  # fmt: skip
    frozen = run_frozen(model, loader, depth, device, progress)
    write_cache(cache_file, {"states": frozen.states, "lengths": frozen.lengths,
                             "labels": frozen.labels})  # fmt: skip
    return frozen, False
