"""Render the README's example card: docs/card-example.json, and a screenshot docs/card-example.png.

    .venv/bin/python docs/render_card.py              # writes both (the PNG needs `chromium` on PATH)
    .venv/bin/python docs/render_card.py --json-only

The Adaptive Cards JS renderer is not available offline, so this is a small renderer of its own for the elements
Cryptward's cards use (TextBlock, FactSet, ColumnSet/Column, Container, ActionSet, Action.OpenUrl), styled like the
Teams light theme, with the markdown subset cards allow (**bold**, _italic_, [links](url), backslash escapes).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.notices import cards  # noqa: E402
from tests.notice_samples import example  # noqa: E402

DOCS = ROOT / "docs"
COLOURS = {"Good": "#237b4b", "Warning": "#835c00", "Attention": "#c4314b", "Accent": "#5b5fc7", "Default": "#242424"}
SIZES = {"Small": "12px", "Default": "14px", "Medium": "17px", "Large": "21px", "ExtraLarge": "26px"}
SPACING = {"None": "0", "Small": "4px", "Default": "8px", "Medium": "14px", "Large": "22px"}
CSS = """
body{margin:0;padding:24px;background:#f5f5f5;font-family:'Segoe UI','DejaVu Sans',system-ui,sans-serif}
.card{width:640px;background:#fff;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.18);padding:16px 20px;
  color:#242424;font-size:14px;line-height:1.4}
.tb{margin:0;white-space:normal;overflow-wrap:anywhere}
.sep{border-top:1px solid #e0e0e0}
table.facts{border-collapse:collapse;margin:0}
table.facts td{padding:1px 12px 1px 0;vertical-align:top;overflow-wrap:anywhere}
table.facts td.t{font-weight:600;white-space:nowrap}
.actions{display:flex;gap:8px;flex-wrap:wrap}
.btn{display:inline-block;padding:5px 14px;border:1px solid #d1d1d1;border-radius:4px;color:#242424;
  text-decoration:none;font-weight:600;font-size:14px;background:#fff}
.btn.positive{background:#5b5fc7;border-color:#5b5fc7;color:#fff}
.btn.destructive{color:#c4314b;border-color:#c4314b}
.cols{display:flex;gap:8px}
"""


def markdown(text: str) -> str:
    """The subset Adaptive Cards support, over escaped text; backslash escapes kept literal."""
    escaped: list[str] = []

    def hold(m: re.Match[str]) -> str:
        escaped.append(html.escape(m.group(1)))
        return f"\x00{len(escaped) - 1}\x00"

    text = html.escape(re.sub(r"\\(.)", hold, text), quote=False)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w\x00])_(.+?)_(?!\w)", r"<i>\1</i>", text)
    text = text.replace("\n", "<br>")
    return re.sub(r"\x00(\d+)\x00", lambda m: escaped[int(m.group(1))], text)


def _spacing(el: dict[str, Any], first: bool) -> str:
    if first:
        return ""
    gap = SPACING.get(el.get("spacing", "Default"), "8px")
    if el.get("separator"):
        return f"margin-top:{gap};padding-top:{gap};" + "border-top:1px solid #e0e0e0;"
    return f"margin-top:{gap};"


def element(el: dict[str, Any], first: bool = False) -> str:
    kind, style = el.get("type"), _spacing(el, first)
    if kind == "TextBlock":
        css = [style, f"font-size:{SIZES.get(el.get('size', 'Default'))}"]
        css.append(f"color:{COLOURS.get(el.get('color', 'Default'), '#242424')}")
        if el.get("weight") == "Bolder":
            css.append("font-weight:600")
        if el.get("isSubtle"):
            css.append("opacity:.72")
        return f'<p class="tb" style="{";".join(css)}">{markdown(el["text"])}</p>'
    if kind == "FactSet":
        rows = "".join(
            f'<tr><td class="t">{markdown(f["title"])}</td><td>{markdown(f["value"])}</td></tr>' for f in el["facts"]
        )
        return f'<table class="facts" style="{style}">{rows}</table>'
    if kind in ("Container", "Column"):
        inner = "".join(element(item, i == 0) for i, item in enumerate(el.get("items", [])))
        flex = "flex:1;" if kind == "Column" and el.get("width", "stretch") == "stretch" else ""
        return f'<div style="{style}{flex}">{inner}</div>'
    if kind == "ColumnSet":
        return f'<div class="cols" style="{style}">{"".join(element(c, True) for c in el.get("columns", []))}</div>'
    if kind == "ActionSet":
        return f'<div class="actions" style="{style}">{actions(el["actions"])}</div>'
    raise ValueError(f"the renderer does not know {kind!r}")


def actions(items: list[dict[str, Any]]) -> str:
    out = []
    for a in items:
        if a["type"] != "Action.OpenUrl":
            raise ValueError(f"the renderer does not know {a['type']!r}")
        cls = f"btn {a.get('style', '')}".strip()
        out.append(f'<a class="{cls}" href="{html.escape(a["url"])}">{html.escape(a["title"])}</a>')
    return "".join(out)


def page(card: dict[str, Any]) -> str:
    body = "".join(element(el, i == 0) for i, el in enumerate(card["body"]))
    if card.get("actions"):
        body += f'<div class="actions" style="margin-top:14px">{actions(card["actions"])}</div>'
    return f'<!doctype html><html><head><meta charset="utf-8"><style>{CSS}</style></head><body><div class="card">{body}</div></body></html>'  # noqa: E501


def main(argv: list[str]) -> int:
    card = cards.card(example())
    (DOCS / "card-example.json").write_text(
        json.dumps(cards.message(card), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote docs/card-example.json ({len(cards.fit(example()))} bytes on the wire)")
    if "--json-only" in argv:
        return 0
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("no chromium on PATH: docs/card-example.png not made", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "card.html"
        source.write_text(page(card), encoding="utf-8")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        flags += ["--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}/u"]
        flags += [f"--screenshot={DOCS / 'card-example.png'}", "--window-size=720,870", source.as_uri()]
        subprocess.run([browser, *flags], check=True, capture_output=True, timeout=120)
    print("wrote docs/card-example.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
