"""User-given names inside Markdown and Plotly labels for the pages (``tlcore.data.markdown``
does the escaping)."""

from __future__ import annotations

from tlcore.data.markdown import md, md_list, plot_text

__all__ = ["md", "md_list", "plot_text"]
