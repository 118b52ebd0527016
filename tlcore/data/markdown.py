"""User-given names inside Markdown: shown as typed, never read as formatting.

Streamlit renders ``st.markdown``, ``st.error`` and friends as Markdown (with its own
``:color[...]`` and ``:material/...:`` directives, and LaTeX between ``$``), and a bundle's
model card is a README.md. A folder called ``**[click](http://x)**`` or a class name with a
backtick must show as those characters, not as a link or a broken code span, and a control
character must not reach the page raw.
"""

from __future__ import annotations

import html
import re

from tlcore.data.scan import printable

# what starts formatting anywhere in a line: emphasis, code, links, HTML, tables, maths,
# and a colon before a word (Streamlit's :red[...], :material/icon:, :emoji:)
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>#|~$]|:(?=[\w/]))")
# what starts formatting only at the start of a line: lists, quotes, headings
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])", re.MULTILINE)


def md(text: object) -> str:
    """``text`` escaped for Markdown: control characters spelled out, formatting literal.

    Plain sentences keep their punctuation as typed (``error: ...``, ``'ants'``, ``3.``),
    so messages read the same; only what would format is escaped.
    """
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", printable(str(text)))
    return _LINE_START.sub(lambda m: f"{m[1]}{m[2][:-1]}\\{m[2][-1]}", escaped)


def md_list(names: object, sep: str = ", ") -> str:
    """Several names, each escaped, joined with ``sep``."""
    return sep.join(md(n) for n in names)  # type: ignore[attr-defined]


def plot_text(text: object) -> str:
    """``text`` for a Plotly label (axis tick, legend, hover): Plotly reads its own HTML
    (``<b>``, ``<br>``, ``<a href=...>``) in every label, so a class named ``<b>x</b>``
    would show bold and a name could carry a link. With ``<``, ``>`` and ``&`` as
    entities, which Plotly turns back into the characters, it shows as typed."""
    return html.escape(printable(str(text)), quote=False)
