"""Search every timm architecture by name, for experts who know what they want.

The curated catalog covers newcomers; this lets the Model page offer the other
thousand-odd names without the page importing timm (and with it torch).
"""

from __future__ import annotations


def search_model_names(query: str, limit: int = 50) -> list[str]:
    """Architecture names containing every word of ``query`` (case-insensitive), sorted."""
    import timm

    words = [w for w in (query or "").lower().split() if w]
    if not words:
        return []
    names = [n for n in timm.list_models() if all(w in n.lower() for w in words)]
    return sorted(names, key=lambda n: (len(n), n))[:limit]


def has_pretrained_weights(name: str) -> bool:
    """True when timm knows published weights for ``name`` (download may still be needed)."""
    import timm

    return bool(timm.list_models(name.split(".", 1)[0], pretrained=True))
