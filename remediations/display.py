"""Text that came from a resource (names, tags, details Azure answered) shown to people: bidi and other control
characters removed, then escaped for where it is shown (Markdown, Rich markup, HTML, an Adaptive Card).

Anyone with tag rights writes such text: it must not forge a link, an image, HTML, terminal markup or a
right-to-left override in a report, a terminal or a Teams card.

    markdown("[click](https://evil)")   -> "\\[click\\](https://evil)"
    rich_text("[link=https://evil]x")   -> a rich Text shown as typed, never parsed as markup
"""

from __future__ import annotations

import html as _html
import re
from typing import Any

# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the marks (U+200E, U+200F, U+061C), and C0/C1
# control characters but tab and newline: Unicode TR 9 and the "Trojan Source" class of spoofing (CVE-2021-42574).
_CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What makes Markdown more than text: emphasis and code (* _ ~ `), links and images ([ ]), raw HTML and autolinks
# (< >), table cells (|), and the backslash that would undo an escape. CommonMark lets any of them be backslash-escaped.
_MARKDOWN = re.compile(r"([\\`*_~\[\]<>|])")


def plain(text: Any) -> str:
    """`text` as a string without bidi or control characters (tab and newline stay)."""
    return _CONTROLS.sub("", str(text))


def markdown(text: Any) -> str:
    """`text` shown as itself in Markdown (GitHub, a wiki, a Teams TextBlock)."""
    return _MARKDOWN.sub(r"\\\1", plain(text))


def html(text: Any) -> str:
    """`text` shown as itself in HTML (element content or a quoted attribute)."""
    return _html.escape(plain(text), quote=True)


def rich_text(text: Any) -> Any:
    """A `rich.text.Text` of `text`: printed as typed, never parsed as console markup."""
    from rich.text import Text

    return Text(plain(text))


__all__ = ["html", "markdown", "plain", "rich_text"]
