"""The template functions a policy rule may call, pure: no I/O, no resource (those are in `expressions._special`).

Azure Policy allows every Resource Manager template function in a policy rule except those in `EXCLUDED`
("Azure Policy definition structure policy rule", Policy functions:
https://learn.microsoft.com/azure/governance/policy/concepts/definition-structure-policy-rule#policy-functions),
plus its own `addDays`, `field`, `current`, `requestContext`, `policy`, `ipRangeContains` and `utcNow`. Behaviour per
function follows the ARM template function reference
(https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions). Template functions that
Cryptward does not implement are in `MISSING`: a definition calling one is refused naming it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote


class EvalError(Exception):
    """A function failed on its arguments; the caller turns it into a `ConditionError` naming the path."""


# Excluded from policy rules by the Learn page above.
EXCLUDED = frozenset(
    n.lower()
    for n in (
        "copyIndex",
        "dateTimeAdd",
        "dateTimeFromEpoch",
        "dateTimeToEpoch",
        "deployment",
        "environment",
        "extensionResourceId",
        "lambda",
        "filter",
        "map",
        "reduce",
        "sort",
        "toObject",
        "groupBy",
        "mapValues",
        "listAccountSas",
        "listKeys",
        "listSecrets",
        "managementGroup",
        "newGuid",
        "pickZones",
        "providers",
        "reference",
        "resourceId",
        "subscriptionResourceId",
        "tenantResourceId",
        "tenant",
        "variables",
    )
)
# ARM template functions allowed in policy rules that Cryptward does not implement (their hashes or formats are not
# documented precisely enough to reproduce): refused by name rather than guessed.
MISSING = ("uniqueString", "guid", "parseCidr", "cidrSubnet", "cidrHost", "format", "references", "loadTextContent")


def need(value: Any, kinds: type | tuple[type, ...], fn: str) -> Any:
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise EvalError(f"{fn}() got {type(value).__name__} {value!r}")
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _number(value: Any, fn: str) -> int:
    return int(need(value, int, fn))


def _concat(*args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [x for a in args for x in a]
    return "".join(_string(a) if a is not None else "" for a in args)


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def _int(value: Any) -> int:
    try:
        return int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        raise EvalError(f"int() cannot convert {value!r}") from None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EvalError(f"float() cannot convert {value!r}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int):
        return value != 0
    raise EvalError(f"bool() cannot convert {value!r}")


def _length(value: Any) -> int:
    return len(need(value, (str, list, dict), "length"))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return _string(item) in container
    if isinstance(container, list):
        return item in container
    if isinstance(container, dict):
        return isinstance(item, str) and item.lower() in (k.lower() for k in container)
    raise EvalError(f"contains() cannot search {type(container).__name__}")


def _split(text: Any, delimiter: Any) -> list[str]:
    need(text, str, "split")
    delimiters = delimiter if isinstance(delimiter, list) else [delimiter]
    pattern = "|".join(re.escape(need(d, str, "split")) for d in delimiters)
    return re.split(pattern, text) if pattern else [text]


def _first(value: Any) -> Any:
    need(value, (str, list), "first")
    return value[0] if value else (None if isinstance(value, list) else "")


def _last(value: Any) -> Any:
    need(value, (str, list), "last")
    return value[-1] if value else (None if isinstance(value, list) else "")


def _compare(a: Any, b: Any) -> int:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    raise EvalError(f"cannot compare {a!r} with {b!r}")


def _add_days(when: Any, days: Any) -> str:
    start = datetime.fromisoformat(need(when, str, "addDays").replace("Z", "+00:00"))
    return (start + timedelta(days=need(days, int, "addDays"))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lower(value: Any, fn: str) -> str:
    return str(need(value, str, fn)).lower()


def _coalesce(*args: Any) -> Any:
    return next((a for a in args if a is not None), None)


def _try_get(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict) and isinstance(key, str):
            value = next((v for k, v in value.items() if k.lower() == key.lower()), None)
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def _take(value: Any, count: Any) -> Any:
    need(value, (str, list), "take")
    return value[: max(0, _number(count, "take"))]


def _skip(value: Any, count: Any) -> Any:
    need(value, (str, list), "skip")
    return value[max(0, _number(count, "skip")) :]


def _index_of(value: Any, item: Any) -> int:
    """ARM: case-insensitive for strings; -1 when absent."""
    if isinstance(value, str):
        return value.lower().find(need(item, str, "indexOf").lower())
    need(value, list, "indexOf")
    return next((i for i, v in enumerate(value) if type(v) is type(item) and v == item), -1)


def _last_index_of(value: Any, item: Any) -> int:
    if isinstance(value, str):
        return value.lower().rfind(need(item, str, "lastIndexOf").lower())
    need(value, list, "lastIndexOf")
    return next((i for i in range(len(value) - 1, -1, -1) if type(value[i]) is type(item) and value[i] == item), -1)


def _union(*args: Any) -> Any:
    if all(isinstance(a, list) for a in args):
        out: list[Any] = []
        for a in args:
            out.extend(x for x in a if x not in out)
        return out
    if all(isinstance(a, dict) for a in args):
        merged: dict[str, Any] = {}
        for a in args:
            for k, v in a.items():
                old = merged.get(k)
                merged[k] = _union(old, v) if isinstance(old, dict) and isinstance(v, dict) else v
        return merged
    raise EvalError("union() needs all arrays or all objects")


def _intersection(*args: Any) -> Any:
    if all(isinstance(a, list) for a in args):
        out: list[Any] = []
        for x in args[0]:
            if x not in out and all(x in a for a in args[1:]):
                out.append(x)
        return out
    if all(isinstance(a, dict) for a in args):
        return {k: v for k, v in args[0].items() if all(k in a and a[k] == v for a in args[1:])}
    raise EvalError("intersection() needs all arrays or all objects")


def _pad_left(value: Any, total: Any, padding: Any = " ") -> str:
    text = _string(need(value, (str, int), "padLeft"))
    char = need(padding, str, "padLeft")
    if len(char) != 1:
        raise EvalError(f"padLeft() padding must be one character, got {padding!r}")
    return text.rjust(_number(total, "padLeft"), char)


def _join(values: Any, delimiter: Any) -> str:
    return need(delimiter, str, "join").join(_string(v) for v in need(values, list, "join"))


def _min_max(pick: Callable[..., Any], fn: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        if not values:
            raise EvalError(f"{fn}() of nothing")
        return pick(need(v, int, fn) for v in values)

    return call


def _range(start: Any, count: Any) -> list[int]:
    first, n = _number(start, "range"), _number(count, "range")
    if n < 0 or n > 10000:
        raise EvalError(f"range() count must be 0 to 10000, got {n}")
    return list(range(first, first + n))


def _div(a: Any, b: Any) -> int:
    x, y = _number(a, "div"), _number(b, "div")
    if y == 0:
        raise EvalError("div() by zero")
    return int(x / y)  # ARM truncates towards zero


def _mod(a: Any, b: Any) -> int:
    x, y = _number(a, "mod"), _number(b, "mod")
    if y == 0:
        raise EvalError("mod() by zero")
    return x - y * int(x / y)


def _json(text: Any) -> Any:
    try:
        return json.loads(need(text, str, "json"))
    except json.JSONDecodeError as e:
        raise EvalError(f"json() cannot parse {text!r}: {e}") from None


def _create_object(*args: Any) -> dict[str, Any]:
    if len(args) % 2:
        raise EvalError("createObject() needs key/value pairs")
    return {need(args[i], str, "createObject"): args[i + 1] for i in range(0, len(args), 2)}


def _items(value: Any) -> list[dict[str, Any]]:
    obj = need(value, dict, "items")
    return [{"key": k, "value": obj[k]} for k in sorted(obj, key=str.lower)]


def _b64(text: Any) -> str:
    return base64.b64encode(need(text, str, "base64").encode()).decode()


def _b64_to_string(text: Any) -> str:
    try:
        return base64.b64decode(need(text, str, "base64ToString")).decode()
    except ValueError as e:
        raise EvalError(f"base64ToString() cannot decode {text!r}: {e}") from None


def _network(text: Any) -> tuple[Any, Any]:
    """An address, a CIDR block, or `first-last`: (first, last) addresses."""
    value = need(text, str, "ipRangeContains").strip()
    if not value:
        raise EvalError("ipRangeContains() of an empty range")
    try:
        if "-" in value:
            low, high = (ipaddress.ip_address(p.strip()) for p in value.split("-", 1))
            if low.version != high.version or int(low) > int(high):
                raise EvalError(f"ipRangeContains() range {value!r} is not first-last of one family")
            return low, high
        net = ipaddress.ip_network(value, strict=False)
        return net[0], net[-1]
    except ValueError as e:
        raise EvalError(f"ipRangeContains() cannot read {value!r}: {e}") from None


def _ip_range_contains(outer: Any, inner: Any) -> bool:
    """Policy-only: does `outer` hold all of `inner`? Mixing IPv4 and IPv6 fails, as in Azure."""
    (a_low, a_high), (b_low, b_high) = _network(outer), _network(inner)
    if a_low.version != b_low.version:
        raise EvalError(f"ipRangeContains() mixes IP families: {outer!r}, {inner!r}")
    return bool(int(a_low) <= int(b_low) and int(b_high) <= int(a_high))


# name -> (implementation, min args, max args or None). All pure: constant arguments fold at compile time.
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "concat": (_concat, 1, None),
    "toLower": (lambda s: need(s, str, "toLower").lower(), 1, 1),
    "toUpper": (lambda s: need(s, str, "toUpper").upper(), 1, 1),
    "equals": (lambda a, b: type(a) is type(b) and a == b, 2, 2),
    "not": (lambda a: not need(a, bool, "not"), 1, 1),
    "and": (lambda *a: all(need(x, bool, "and") for x in a), 2, None),
    "or": (lambda *a: any(need(x, bool, "or") for x in a), 2, None),
    "less": (lambda a, b: _compare(a, b) < 0, 2, 2),
    "lessOrEquals": (lambda a, b: _compare(a, b) <= 0, 2, 2),
    "greater": (lambda a, b: _compare(a, b) > 0, 2, 2),
    "greaterOrEquals": (lambda a, b: _compare(a, b) >= 0, 2, 2),
    "length": (_length, 1, 1),
    "empty": (_empty, 1, 1),
    "contains": (_contains, 2, 2),
    "split": (_split, 2, 2),
    "first": (_first, 1, 1),
    "last": (_last, 1, 1),
    "string": (_string, 1, 1),
    "int": (_int, 1, 1),
    "float": (_float, 1, 1),
    "bool": (_bool, 1, 1),
    "array": (lambda v: v if isinstance(v, list) else [v], 1, 1),
    "startsWith": (lambda s, p: _lower(s, "startsWith").startswith(_lower(p, "startsWith")), 2, 2),
    "endsWith": (lambda s, p: _lower(s, "endsWith").endswith(_lower(p, "endsWith")), 2, 2),
    "substring": (lambda s, i, n=None: need(s, str, "substring")[i : None if n is None else i + n], 2, 3),
    "replace": (lambda s, a, b: need(s, str, "replace").replace(a, b), 3, 3),
    "trim": (lambda s: need(s, str, "trim").strip(), 1, 1),
    "padLeft": (_pad_left, 2, 3),
    "indexOf": (_index_of, 2, 2),
    "lastIndexOf": (_last_index_of, 2, 2),
    "take": (_take, 2, 2),
    "skip": (_skip, 2, 2),
    "union": (_union, 1, None),
    "intersection": (_intersection, 1, None),
    "join": (_join, 2, 2),
    "min": (_min_max(min, "min"), 1, None),
    "max": (_min_max(max, "max"), 1, None),
    "range": (_range, 2, 2),
    "add": (lambda a, b: _number(a, "add") + _number(b, "add"), 2, 2),
    "sub": (lambda a, b: _number(a, "sub") - _number(b, "sub"), 2, 2),
    "mul": (lambda a, b: _number(a, "mul") * _number(b, "mul"), 2, 2),
    "div": (_div, 2, 2),
    "mod": (_mod, 2, 2),
    "json": (_json, 1, 1),
    "createObject": (_create_object, 0, None),
    "items": (_items, 1, 1),
    "base64": (_b64, 1, 1),
    "base64ToString": (_b64_to_string, 1, 1),
    "base64ToJson": (lambda t: _json(_b64_to_string(t)), 1, 1),
    "uriComponent": (lambda t: quote(need(t, str, "uriComponent"), safe=""), 1, 1),
    "uriComponentToString": (lambda t: unquote(need(t, str, "uriComponentToString")), 1, 1),
    "coalesce": (_coalesce, 1, None),
    "tryGet": (_try_get, 2, None),
    "addDays": (_add_days, 2, 2),
    "ipRangeContains": (_ip_range_contains, 2, 2),
    "createArray": (lambda *a: list(a), 0, None),
    "true": (lambda: True, 0, 0),
    "false": (lambda: False, 0, 0),
    "null": (lambda: None, 0, 0),
}
