"""The values of sandbox/kql.py's queries: Kusto's comparisons, functions and sort order over JSON values (pure).

Semantics from the Kusto reference on Microsoft Learn (https://learn.microsoft.com/kusto/query/): `==` is case
sensitive and `=~` is not; `has` matches a whole term, `contains` any substring, both case-insensitive; nulls sort
last; a comparison with null is false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

Row = dict[str, Any]
Expr = Callable[[Mapping[str, Any]], Any]

__all__ = ["FUNCTIONS", "binary", "column", "key", "member", "membership", "ordered", "truthy", "unquote"]


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])


def column(row: Mapping[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    for k, v in row.items():  # Resource Graph's columns answer in any case (`Type`, `type`)
        if k.lower() == name.lower():
            return v
    return None


def member(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        if isinstance(key, str):  # property names in `dynamic` are looked up case-insensitively by ARG # unverified
            return next((v for k, v in value.items() if k.lower() == key.lower()), None)
        return None
    if isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    return None


def truthy(value: Any) -> bool:
    return value is True


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def key(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else _text(value)


def _tobool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int | float):
        return value != 0
    return None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _toint(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, dict | list) else None
    except (TypeError, ValueError):
        return None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "tostring": _text,
    "tobool": _tobool,
    "toboolean": _tobool,
    "tolower": lambda v: _text(v).lower(),
    "toupper": lambda v: _text(v).upper(),
    "toint": _toint,
    "tolong": _toint,
    "isnotempty": lambda v: not _empty(v),
    "isempty": _empty,
    "isnull": lambda v: v is None,
    "isnotnull": lambda v: v is not None,
    "not": lambda v: not truthy(v),
    "strlen": lambda v: len(_text(v)),
}


def _same(a: Any, b: Any, fold: bool) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return _tobool(a) is not None and _tobool(a) == _tobool(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    x, y = _text(a), _text(b)
    return x.lower() == y.lower() if fold else x == y


def _order(a: Any, b: Any) -> int | None:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def binary(op: str, left: Expr, right: Expr) -> Expr:
    def compare(r: Mapping[str, Any]) -> Any:
        a, b = left(r), right(r)
        if op == "==":
            return _same(a, b, False)
        if op == "=~":
            return _same(a, b, True)
        if op == "!=":
            return a is not None and b is not None and not _same(a, b, False)
        if op == "!~":
            return a is not None and b is not None and not _same(a, b, True)
        if op in ("<", "<=", ">", ">="):
            c = _order(a, b)
            return c is not None and {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
        negate = op.startswith("!")
        word = op.lstrip("!")
        x, y = _text(a), _text(b)
        if not word.endswith("_cs"):
            x, y = x.lower(), y.lower()
        if word.startswith("has"):
            found = _has(x, y)
        elif word.startswith("contains"):
            found = y in x
        elif word == "startswith":
            found = x.startswith(y)
        else:
            found = x.endswith(y)
        return found != negate

    return compare


def _has(text: str, term: str) -> bool:
    """Kusto's `has`: the term is a whole run of alphanumerics in the text (or appears as written, when it is itself
    made of several terms)."""
    if not term:
        return True
    if not term.isalnum():
        return term in text
    return any(t == term for t in re.split(r"[^0-9a-z]+", text))


def membership(op: str, left: Expr, values: list[Expr]) -> Expr:
    fold, negate = op.endswith("~"), op.startswith("!")
    constants = [v({}) for v in values]
    if all(isinstance(c, str) for c in constants):  # the usual `type in~ ('a', 'b')`: a set lookup per row
        wanted = {c.lower() if fold else c for c in constants}

        def member_of(r: Mapping[str, Any]) -> bool:
            a = left(r)
            if a is None:
                return False
            text = _text(a)
            return ((text.lower() if fold else text) in wanted) != negate

        return member_of

    def member(r: Mapping[str, Any]) -> bool:
        a = left(r)
        found = any(_same(a, v(r), fold) for v in values)
        return (not found and a is not None) if negate else found

    return member


def ordered(rows: list[Row], keys: list[tuple[Expr, bool]]) -> list[Row]:
    out = list(rows)
    for expr, desc in reversed(keys):  # stable sorts, last key first; nulls last as Kusto sorts them
        present = [r for r in out if expr(r) is not None]
        absent = [r for r in out if expr(r) is None]
        present.sort(key=lambda r, e=expr: _sort_value(e(r)), reverse=desc)
        out = present + absent
    return out


def _sort_value(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, value)
    return (1, _text(value))
