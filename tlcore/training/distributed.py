"""Training on several processes with PyTorch's own engine (torchrun + DistributedDataParallel).

``torchrun --nproc_per_node N`` starts N copies of a program and tells each one
its place through ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``. Everything here is a
no-op when those are absent, so the trainer has one code path: a single process
is simply a world of size one. Under torchrun each rank trains on its own shard
of every epoch (``DistributedSampler``), DDP averages the gradients, the
metrics are summed over ranks, and only rank 0 writes the run directory.

``batch_size`` is per process (the PyTorch convention): N processes with batch
8 take the same optimizer steps, on the same images, as one process with 16.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from tlcore.training import embedding_cache, features

# ``trainer`` arguments are a tlcore.training.trainer.Trainer, which imports this module:
# named in words, not imported, so there is no import circle (not even for type hints).

log = logging.getLogger("tlcore.training.distributed")
QUEUE_WAIT = datetime.timedelta(days=30)  # ranks > 0 wait this long for rank 0's turn
_CONTROL: dict[str, Any] = {}  # the gloo group used for queue/stop decisions


def launched_by_torchrun() -> bool:
    """True in a process torchrun started as part of a world of more than one."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0) if active() else 0


def is_main() -> bool:
    """Only rank 0 writes files, prints and decides; true in a single process."""
    return rank() == 0


def init(device_preference: str = "auto") -> bool:
    """Join the torchrun world (gloo on CPU, nccl on CUDA); False when not under torchrun."""
    if active():
        return True
    if not launched_by_torchrun():
        return False
    use_cuda = device_preference in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0") or 0))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    _CONTROL["group"] = dist.new_group(backend="gloo", timeout=QUEUE_WAIT)
    log.info("rank %d of %d (%s)", rank(), world_size(), dist.get_backend())
    return True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _CONTROL.clear()


def local_device(device: torch.device) -> torch.device:
    """This rank's GPU (``cuda:LOCAL_RANK``) under torchrun; ``device`` unchanged otherwise."""
    if active() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


# -- sharding (DistributedSampler) -----------------------------------------------------------
def shard_size(n: int) -> int:
    """Samples each rank gets per epoch; equal on every rank, so DDP's steps line up."""
    return len(DistributedSampler(range(n), world_size(), rank(), shuffle=False)) if active() else n


def shard(order: torch.Tensor) -> torch.Tensor:
    """This rank's share of an epoch's sample order (padded like DistributedSampler)."""
    if not active():
        return order
    positions = list(DistributedSampler(range(len(order)), world_size(), rank(), shuffle=False))
    return order[positions]


def eval_indices(n: int) -> list[int] | None:
    """This rank's validation images, without the padding (each image counted once)."""
    if not active():
        return None
    indices = list(DistributedSampler(range(n), world_size(), rank(), shuffle=False))
    return [i for k, i in enumerate(indices) if rank() + k * world_size() < n]


def gather_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Undo ``eval_indices``: every rank's rows back in dataset order, on every rank."""
    if not active():
        return tensors
    size, device = world_size(), tensors[0].device
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(size)]
    dist.all_gather(counts, torch.tensor([len(tensors[0])], device=device))
    counts_list = [int(c.item()) for c in counts]
    most, total = max(counts_list), sum(counts_list)
    out = []
    for t in tensors:
        padded = torch.zeros((most, *t.shape[1:]), dtype=t.dtype, device=device)
        padded[: len(t)] = t
        parts = [torch.empty_like(padded) for _ in range(size)]
        dist.all_gather(parts, padded.contiguous())
        merged = torch.empty((total, *t.shape[1:]), dtype=t.dtype, device=device)
        for r, (part, count) in enumerate(zip(parts, counts_list, strict=True)):
            merged[r::size] = part[:count]
        out.append(merged)
    return tuple(out)


def reduce_partial(partial: dict[str, float]) -> dict[str, float]:
    """Epoch totals over all ranks: loss sum, correct and seen are summed, seconds the max."""
    if not active():
        return partial
    keys = ("loss_sum", "correct", "seen")
    sums = torch.tensor([float(partial[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(sums, group=_CONTROL["group"])
    seconds = torch.tensor([float(partial["seconds"])], dtype=torch.float64)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX, group=_CONTROL["group"])
    total = dict(zip(keys, sums.tolist(), strict=True))
    return {**partial, **total, "correct": int(total["correct"]), "seen": int(total["seen"]),
            "seconds": float(seconds.item())}  # fmt: skip


def mean_over_ranks(value: float) -> float:
    """A step's loss averaged over ranks: the loss of the whole global batch, as one process logs it."""
    if not active():
        return value
    total = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(total, group=_CONTROL["group"])
    return float(total.item()) / world_size()


def means_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Several numbers each averaged over ranks in one all-reduce (a step's loss parts)."""
    if not active():
        return values
    total = torch.tensor([float(v) for v in values.values()], dtype=torch.float64)
    dist.all_reduce(total, group=_CONTROL["group"])
    return {k: v / world_size() for k, v in zip(values, total.tolist(), strict=True)}


def launched_world_size() -> int:
    """How many processes torchrun started for this run on this machine (1 outside torchrun).

    Recorded as the run's ``nproc`` so its settings say what trained it (batch size is per
    process) and resuming it from the app starts as many. Multi-node worlds record this
    node's share: the app only ever launches on one machine.
    """
    if not launched_by_torchrun():
        return 1
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return int(os.environ.get("LOCAL_WORLD_SIZE", world) or world)


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on one (stop requests, early stopping)."""
    if not active():
        return flag
    value = torch.tensor([1 if flag else 0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_CONTROL["group"])
    return bool(value.item())


def from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a run directory, "my turn in the queue")."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=_CONTROL["group"])
    return box[0]


# -- the model -------------------------------------------------------------------------------
class HeadForward(nn.Module):
    """The fast path's forward (classifier on cached embeddings) as a module DDP can wrap."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return features.head_forward(self.model, embeddings)


def wrap(model: nn.Module, fast_path: bool, device: torch.device) -> nn.Module:
    """DistributedDataParallel over the parameters that train now (the head only on the fast path)."""
    from torch.nn.parallel import DistributedDataParallel

    module = HeadForward(model) if fast_path else model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


class StepForward(nn.Module):
    """A training step's forward that is not ``model.forward`` (a detector's fast path runs
    its pyramid and heads on cached feature maps) as a module DDP can wrap: ``model`` holds
    the parameters whose gradients DDP averages, ``step`` computes the losses."""

    def __init__(self, model: nn.Module, step: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, *args: Any) -> Any:
        return self.step(*args)


def wrap_step(model: nn.Module, step: Callable[..., Any]) -> nn.Module:
    """DistributedDataParallel over ``model``'s trainable parameters, forward by ``step``."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(StepForward(model, step))


def trainable_names(model: nn.Module) -> frozenset[str]:
    return frozenset(n for n, p in model.named_parameters() if p.requires_grad)


class DistributedSync:
    """Trainer callback under torchrun: (re)wrap DDP when the trainable layers change, share stops.

    Placed after the freeze schedule (so it sees this epoch's trainable layers) and after
    the run recorder (so a stop request rank 0 read from disk reaches every rank).
    """

    def __init__(self) -> None:
        self.wrapped_for: frozenset[str] | None = None

    def on_fit_start(self, trainer: Any) -> None: ...

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        names = trainable_names(trainer.model)
        if names != self.wrapped_for:  # DDP registers its gradient buckets once, at wrap time
            trainer.ddp = wrap(trainer.model, trainer.fast_path, trainer.device)
            self.wrapped_for = names

    def on_step_end(self, trainer: Any, event: dict[str, Any]) -> None:
        self.share_stop(trainer)

    def on_epoch_end(self, trainer: Any, event: dict[str, Any]) -> None:
        self.share_stop(trainer)

    @staticmethod
    def share_stop(trainer: Any) -> None:
        """Every rank leaves the loop at the same step; the checkpoint holds the epoch's totals."""
        if not any_rank(bool(trainer.stop_state)):
            return
        if not trainer.stop_state:
            trainer.request_stop("Stopped on rank 0's request.")
        trainer.partial = reduce_partial(trainer.partial)


def callbacks() -> list[Any]:
    """The callbacks a Trainer adds last; none in a single process."""
    return [DistributedSync()] if active() else []


# -- the fast path's embeddings --------------------------------------------------------------
def embed_cached(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    cache_file: Path | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``features.embed_cached`` with the work split over ranks; every rank gets all rows.

    Each rank embeds its shard, the shards are all-gathered, rank 0 writes the cache.
    """
    if not active():
        return features.embed_cached(model, loader, device, cache_file, progress)
    if not any_rank(cache_file is None or not cache_file.is_file()):
        return features.embed_cached(model, loader, device, cache_file)  # every rank can read it
    indices = eval_indices(len(loader.dataset))
    shard_loader = torch.utils.data.DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=indices,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
    )
    x, y = gather_rows(*features.embed(model, shard_loader, device))
    if is_main():
        embedding_cache.write_cache(cache_file, {"features": x, "labels": y})
    return x, y, False


def embed_items(
    rows: embedding_cache.ItemEmbeddings,
    stamps: list[str],
    embed_order: Callable[[list[int]], torch.Tensor],
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """``rows.embed`` with the work split over ranks: rank 0 reads the cache and says which
    items are missing, each rank embeds its share of them (``embed_order(indices)``), rank 0
    adds them to the cache, and every rank gets rank 0's rows. (rows, how many embedded)"""
    if not active():
        x, embedded = rows.embed(stamps, embed_order)
        return x.to(device), embedded  # rows read from the cache come on the CPU
    lookup = rows.lookup(stamps) if is_main() else None
    missing: list[int] = from_main(lookup.missing if lookup is not None else None)
    computed = None
    if missing:
        share = [missing[i] for i in (eval_indices(len(missing)) or [])]
        (computed,) = gather_rows(embed_order(share))
    x = rows.complete(lookup, computed).to(device) if lookup is not None else None
    shape = from_main(tuple(x.shape) if x is not None else None)
    if x is None:
        x = torch.empty(shape, device=device)
    x = x.contiguous()
    dist.broadcast(x, src=0)
    return x, len(missing)


def gpu_count() -> int:
    """CUDA devices here (0 without CUDA): the Train page offers several only when there are."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
