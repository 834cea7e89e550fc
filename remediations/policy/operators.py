"""The Azure Policy condition operators: how a selected value is tested against the operand.

Each operator has `prepare(operand)` (shape check and pre-work such as compiling a `like` pattern, run once when
the operand is constant) and `test(value, prepared)`. An absent value is `None`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class Mismatch(Exception):
    """The operand has the wrong shape, or two values cannot be ordered."""


@dataclass(frozen=True)
class Operator:
    prepare: Callable[[Any], Any]
    test: Callable[[Any, Any], bool]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def equal(a: Any, b: Any) -> bool:
    """Azure's `equals`: strings ignore case; booleans, numbers and their string forms compare across types."""
    if type(a) is str and type(b) is str:
        return a == b or a.casefold() == b.casefold()
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, bool) and isinstance(b, bool):
            return a == b
        flag, other = (a, b) if isinstance(a, bool) else (b, a)
        return isinstance(other, str) and other.casefold() == ("true" if flag else "false")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, str):
        return _number(b) == a
    if isinstance(a, str) and isinstance(b, (int, float)):
        return _number(a) == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        lowered = {str(k).lower(): v for k, v in b.items()}
        return len(a) == len(b) and all(equal(v, lowered.get(str(k).lower())) for k, v in a.items())
    return False


def _scalar(op: str) -> Callable[[Any], Any]:
    def prepare(operand: Any) -> Any:
        if operand is None or isinstance(operand, (list, dict)):
            hint = " (use in/notIn for a list)" if isinstance(operand, list) and op in ("equals", "notEquals") else ""
            raise Mismatch(f"{op} needs a single value, got {type(operand).__name__} {operand!r}{hint}")
        return operand

    return prepare


def _equals_operand(operand: Any) -> Any:
    if isinstance(operand, (list, dict)):
        raise Mismatch(f"equals needs a single value, got {operand!r} (use in/notIn for a list)")
    return operand


def _list(op: str) -> Callable[[Any], list[Any]]:
    def prepare(operand: Any) -> list[Any]:
        if not isinstance(operand, list):
            raise Mismatch(f"{op} needs a list, got {type(operand).__name__} {operand!r}")
        return operand

    return prepare


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def _contains(value: Any, item: Any) -> bool:
    if isinstance(value, str):
        text = _text(item)
        return text is not None and text.casefold() in value.casefold()
    if isinstance(value, list):
        return any(equal(member, item) for member in value)
    return False


def _contains_key(value: Any, key: str) -> bool:
    return isinstance(value, dict) and any(str(k).casefold() == key for k in value)


def _like(operand: Any) -> re.Pattern[str]:
    # Azure's docs advise one wildcard at most; more still match as expected, so they are accepted.
    text = _text(_scalar("like")(operand)) or ""
    return re.compile(".*".join(re.escape(p) for p in text.split("*")), re.IGNORECASE | re.DOTALL)


_MATCH = {"#": "[0-9]", "?": "[^\\W\\d_]", ".": "."}


def _match(flags: int) -> Callable[[Any], re.Pattern[str]]:
    def prepare(operand: Any) -> re.Pattern[str]:
        text = _text(_scalar("match")(operand)) or ""
        return re.compile("".join(_MATCH.get(c) or re.escape(c) for c in text), flags | re.DOTALL)

    return prepare


def _matches(value: Any, pattern: re.Pattern[str]) -> bool:
    text = _text(value)
    return text is not None and pattern.fullmatch(text) is not None


def _exists_operand(operand: Any) -> bool:
    if isinstance(operand, bool):
        return operand
    if isinstance(operand, str) and operand.lower() in ("true", "false"):
        return operand.lower() == "true"
    raise Mismatch(f"exists needs true or false, got {operand!r}")


def _ordered_operand(operand: Any) -> Any:
    if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
        raise Mismatch(f"greater/less operators need a number, string or date, got {operand!r}")
    return operand


def _moment(text: str) -> datetime | None:
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def order(a: Any, b: Any) -> int | None:
    """-1/0/1 comparing `a` with `b` as Azure does; None when `a` is absent; `Mismatch` for incomparable values."""
    if a is None:
        return None
    x: Any = a
    y: Any = b
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float, str)):
        raise Mismatch(f"cannot order {a!r} against {b!r}")
    if isinstance(a, str) and isinstance(b, str):
        ma, mb = _moment(a), _moment(b)
        x, y = (ma, mb) if ma and mb else (a.casefold(), b.casefold())
    elif isinstance(a, str) or isinstance(b, str):
        x = _number(a) if isinstance(a, str) else a
        y = _number(b) if isinstance(b, str) else b
        if x is None or y is None:
            raise Mismatch(f"cannot order {a!r} against {b!r}: one is a number, the other is not")
    return (x > y) - (x < y)


def _ordering(accept: Callable[[int], bool]) -> Operator:
    def test(value: Any, operand: Any) -> bool:
        result = order(value, operand)
        return result is not None and accept(result)

    return Operator(_ordered_operand, test)


def _negated(op: Operator) -> Operator:
    test = op.test
    return Operator(op.prepare, lambda value, operand: not test(value, operand))


_EQUALS = Operator(_equals_operand, equal)
_IN = Operator(_list("in"), lambda value, options: any(equal(value, o) for o in options))
_CONTAINS = Operator(_scalar("contains"), _contains)
_CONTAINS_KEY = Operator(lambda k: str(_scalar("containsKey")(k)).casefold(), _contains_key)
_LIKE = Operator(_like, _matches)
_MATCH_CS = Operator(_match(0), _matches)
_MATCH_CI = Operator(_match(re.IGNORECASE), _matches)

OPERATORS: dict[str, Operator] = {
    "equals": _EQUALS,
    "notEquals": _negated(_EQUALS),
    "in": _IN,
    "notIn": Operator(_list("notIn"), _negated(_IN).test),
    "contains": _CONTAINS,
    "notContains": _negated(_CONTAINS),
    "containsKey": _CONTAINS_KEY,
    "notContainsKey": _negated(_CONTAINS_KEY),
    "like": _LIKE,
    "notLike": _negated(_LIKE),
    "match": _MATCH_CS,
    "matchInsensitively": _MATCH_CI,
    "notMatch": _negated(_MATCH_CS),
    "notMatchInsensitively": _negated(_MATCH_CI),
    "exists": Operator(_exists_operand, lambda value, wanted: (value is not None) is wanted),
    "greater": _ordering(lambda r: r > 0),
    "greaterOrEquals": _ordering(lambda r: r >= 0),
    "less": _ordering(lambda r: r < 0),
    "lessOrEquals": _ordering(lambda r: r <= 0),
}
