"""The one embedding cache: where it lives, what its key holds, how its files are read and written.

The trainer's fast path, few-shot (and zero-shot) and the data doctor all run a frozen
backbone over the same photos. A photo's embedding depends only on the backbone
(model and weights), its preprocessing (the data config: size, crop, normalisation),
the device and the library versions, and on the photo itself (its path, size and
change time; a text's words). So the cache keeps one file per backbone identity with
one row per item (``ItemEmbeddings``): each photo is embedded once per backbone and
size, whichever caller asks first, and a relabelled or re-split dataset reads the
same rows.

Passes that are not a function of the item alone are kept one file per pass
(``pass_file``): the augmented views the fast path draws from a seed, and the hidden
states after a text encoder's frozen layers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tlcore import __version__, settings
from tlcore.data.task import Task

log = logging.getLogger("tlcore.training.embedding_cache")


def folder(runs_dir: Path | None = None) -> Path:
    """Where embeddings live: ``.cache/embeddings`` beside the runs (``settings.runs_dir()``),
    shared by every run, the doctor and few-shot."""
    return (runs_dir if runs_dir is not None else settings.runs_dir()) / ".cache" / "embeddings"


def key(parts: dict[str, Any]) -> str:
    """Name of a cache file: everything that changes the embeddings goes into ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def weights_identity(weights: str) -> str:
    """A weights name as is; a weights file by its full path, size and change time."""
    path = Path(weights)
    if path.is_file():
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return weights


def backbone_identity(
    model: str, weights: str, data_config: dict[str, Any], device: torch.device, seed: int | None
) -> dict[str, Any]:
    """Everything besides the item that changes an embedding. A random backbone
    (``weights="scratch"``) is the same one only for the same seed."""
    identity = {
        "model": model, "weights": weights_identity(weights), "data": data_config,
        "device": device.type, "torch": torch.__version__, "tlcore": __version__,
    }  # fmt: skip
    if weights == "scratch":
        identity["seed"] = seed
    return identity


def photo_stamp(item: Any) -> str:
    """A photo by path, size and change time: one replaced under the same name is new."""
    try:
        stat = Path(item.path).stat()
    except OSError:
        return f"{item.path}\0missing"  # reading it will say what is wrong
    return f"{item.path}\0{stat.st_size}\0{stat.st_mtime_ns}"


def text_stamp(item: Any) -> str:
    """A text by its words: the same sentence in another file has the same embedding."""
    return "text\0" + hashlib.sha256((item.text or "").encode("utf-8")).hexdigest()


# what names one item's row, per task (tlcore.data.task.TASKS)
ITEM_STAMPS: dict[str, Callable[[Any], str]] = {
    "image-label": photo_stamp,
    "text-label": text_stamp,
    "image-columns": photo_stamp,
    "text-columns": text_stamp,
    "image-boxes": photo_stamp,
}


def item_stamps(task: Task, items: Sequence[Any]) -> list[str]:
    """The row name of each item (manifest items: ``.path``, and ``.text`` for a text)."""
    stamp = ITEM_STAMPS[task.key]
    return [stamp(item) for item in items]


def pass_file(directory: Path | None, parts: dict[str, Any]) -> Path | None:
    """The file of one whole pass (augmented views, frozen layers); None without a cache."""
    return None if directory is None else directory / f"{key(parts)}.safetensors"


def read_cache(
    cache_file: Path | None, fits: Callable[[dict[str, torch.Tensor]], bool], what: str
) -> dict[str, torch.Tensor] | None:
    """The tensors kept in ``cache_file`` when they ``fits`` this data; None to recompute
    (no file, or a torn, foreign or stale one: ``write_cache`` then replaces it)."""
    from safetensors.torch import load_file

    if cache_file is None or not cache_file.is_file():
        return None
    try:
        cached = load_file(str(cache_file))
        if fits(cached):
            return cached
    except Exception as exc:  # a torn or foreign file: recompute and overwrite it
        log.warning("ignoring unreadable %s cache %s: %s", what, cache_file, exc)
    return None


def write_cache(
    cache_file: Path | None,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Keep ``tensors`` in ``cache_file`` whole or not at all (a temporary file, then renamed)."""
    from safetensors.torch import save_file

    if cache_file is None:
        return
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    # one name per process and thread: the app's sessions share one Embedder
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    save_file({name: t.cpu().contiguous() for name, t in tensors.items()}, str(tmp), metadata)
    os.replace(tmp, cache_file)


@dataclass
class Lookup:
    """What the cache holds of some items: their rows, and which items are missing."""

    stamps: list[str]
    found: dict[int, torch.Tensor]  # item index -> its row (on the CPU)
    missing: list[int]  # item indices to embed, in order


class ItemEmbeddings:
    """The embeddings of one backbone identity, one row per item, in one file.

    ``embed`` reads the rows it has and asks ``compute`` only for the rest, then adds
    those to the file (merged with what another process may have added meanwhile).
    Without a directory nothing is read or kept.
    """

    def __init__(self, directory: Path | None, identity: dict[str, Any]) -> None:
        self.file = None if directory is None else directory / f"items-{key(identity)}.safetensors"

    def _read(self) -> tuple[list[str], torch.Tensor | None]:
        if self.file is None or not self.file.is_file():
            return [], None
        from safetensors import safe_open

        try:
            with safe_open(str(self.file), "pt") as stored:
                names = json.loads((stored.metadata() or {})["items"])
                rows = stored.get_tensor("features")
            if len(names) == len(rows):
                return names, rows
        except Exception as exc:  # a torn or foreign file: embed again and replace it
            log.warning("ignoring unreadable embedding cache %s: %s", self.file, exc)
        return [], None

    def lookup(self, stamps: Sequence[str]) -> Lookup:
        names, rows = self._read()
        index = {name: i for i, name in enumerate(names)}
        found, missing = {}, []
        for i, stamp in enumerate(stamps):
            if stamp in index and rows is not None:
                found[i] = rows[index[stamp]]
            else:
                missing.append(i)
        return Lookup(list(stamps), found, missing)

    def complete(
        self, lookup: Lookup, computed: torch.Tensor | None, write: bool = True
    ) -> torch.Tensor:
        """Every item's row in order: the found ones and ``computed`` (the missing, in order);
        the computed rows are added to the file unless ``write`` is False."""
        if not lookup.stamps:
            return torch.empty(0, 0)
        if not lookup.found:
            out = computed  # nothing read: the computed rows as they are
        else:
            first = next(iter(lookup.found.values()))
            device = computed.device if computed is not None else first.device
            out = torch.empty(len(lookup.stamps), len(first), device=device)
            for i, row in lookup.found.items():
                out[i] = row
            if computed is not None and lookup.missing:
                out[torch.tensor(lookup.missing, device=device)] = computed.to(device)
        if write and computed is not None and lookup.missing:
            self._add([lookup.stamps[i] for i in lookup.missing], computed)
        return out

    def embed(
        self, stamps: Sequence[str], compute: Callable[[list[int]], torch.Tensor]
    ) -> tuple[torch.Tensor, int]:
        """Every item's row, in order, and how many were embedded now (``compute(indices)``)."""
        lookup = self.lookup(stamps)
        computed = compute(lookup.missing) if lookup.missing else None
        return self.complete(lookup, computed), len(lookup.missing)

    def _add(self, stamps: list[str], rows: torch.Tensor) -> None:
        if self.file is None:
            return
        names, stored = self._read()  # again: another process may have added rows since
        rows = rows.detach().float().cpu()
        if stored is not None and stored.shape[1:] != rows.shape[1:]:
            names, stored = [], None
        known = set(names)
        new = [i for i, stamp in enumerate(stamps) if stamp not in known]
        new = list({stamps[i]: i for i in new}.values())  # an item asked for twice: one row
        if not new:
            return
        names = names + [stamps[i] for i in new]
        added = rows[new]
        merged = added if stored is None else torch.cat([stored, added])
        write_cache(self.file, {"features": merged}, {"items": json.dumps(names)})
