"""Shape of a JSON body, and the differences between a recorded Azure answer's shape and the sandbox's.

Shape = the keys present (recursively), each value's JSON type, null vs absent, and the casing of keys and of
enum-like string values. Values themselves are data and are not compared (ids, names, dates, GUIDs differ).

Arrays are compared by the merged shape of their elements (the union of keys and of types over all elements), so a
list of 74 role assignments and a list of 3 compare. Objects whose keys are data (tags, userAssignedIdentities, an
extension's settings) are compared as maps: only their values' types.

A difference is one stable line, `<path>: <recorded> -> <sandbox>` (no GUIDs; no values but enum casing), e.g.
    `$.properties.enableRbacAuthorization: absent -> boolean` (the recording omits it; the sandbox writes a boolean)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Objects whose keys are data, not schema (compared as maps: value types only). Paths as produced by `_walk`.
MAP_KEYS = ("tags", "userAssignedIdentities", "settings", "protectedSettings")

# String values that are enums: their casing is part of the wire contract (clients and policies compare them).
ENUM_KEYS = frozenset(
    {
        "type",
        "name",  # sku.name only (see _enum_like)
        "family",
        "provisioningState",
        "principalType",
        "createdByType",
        "lastModifiedByType",
        "encryptionType",
        "bypass",
        "defaultAction",
        "publicNetworkAccess",
        "networkAccessPolicy",
        "diskState",
        "osType",
        "createOption",
        "caching",
        "storageAccountType",
        "hyperVGeneration",
        "tier",
        "category",
        "securityType",
        "status",
    }
)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


@dataclass
class Node:
    """The merged shape at one path: the JSON types seen, enum values seen, and (for objects) the children."""

    types: set[str] = field(default_factory=set)
    enums: set[str] = field(default_factory=set)
    children: dict[str, Node] = field(default_factory=dict)
    item: Node | None = None
    # for objects: how many times the object was seen, and per key in how many of them it was present
    seen: int = 0
    present: dict[str, int] = field(default_factory=dict)


def _enum_like(path: tuple[str, ...], key: str) -> bool:
    if key == "name":
        return len(path) >= 2 and path[-2] == "sku"
    if key == "type":
        # a resource's own type, an identity's type; not an extension handler's `properties.type` (publisher data)
        return len(path) < 2 or path[-2] != "properties" or "extensions" not in path
    return key in ENUM_KEYS


def shape(value: Any, path: tuple[str, ...] = (), node: Node | None = None) -> Node:
    node = node or Node()
    t = json_type(value)
    node.types.add(t)
    key = path[-1] if path else ""
    if t == "string" and key and _enum_like(path, key):
        node.enums.add(value)
    if t == "object":
        node.seen += 1
        is_map = key in MAP_KEYS
        for k, v in value.items():
            name = "*" if is_map else k
            node.present[name] = node.present.get(name, 0) + 1
            shape(v, (*path, name), node.children.setdefault(name, Node()))
    elif t == "array":
        node.item = node.item or Node()
        for v in value:
            shape(v, (*path, "[*]"), node.item)
    return node


def _p(path: tuple[str, ...]) -> str:
    return "$" + "".join(p if p == "[*]" else f".{p}" for p in path)


def differences(recorded: Any, actual: Any, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """The shape differences between a recorded body and the sandbox's body, as stable lines (sorted)."""
    out: list[str] = []
    _diff(shape(recorded), shape(actual), (), out)
    return sorted(d for d in out if not any(d.startswith(i + ":") or d.startswith(i + ".") for i in ignore))


def _diff(rec: Node, act: Node, path: tuple[str, ...], out: list[str]) -> None:
    where = _p(path)
    if rec.types != act.types:
        out.append(f"{where}: {'|'.join(sorted(rec.types))} -> {'|'.join(sorted(act.types))}")
    for value in sorted(rec.enums):
        for other in sorted(act.enums):
            if value != other and value.lower() == other.lower():
                out.append(f"{where}: casing {value!r} -> {other!r}")
    if rec.item is not None and act.item is not None:
        _diff(rec.item, act.item, (*path, "[*]"), out)
    if "object" in rec.types and "object" in act.types:
        act_lower = {k.lower(): k for k in act.children}
        for k, child in rec.children.items():
            sub = (*path, k)
            if k in act.children:
                _diff(child, act.children[k], sub, out)
                if rec.present[k] == rec.seen and act.present[k] < act.seen:
                    out.append(f"{_p(sub)}: always -> sometimes absent")
            elif k.lower() in act_lower:
                out.append(f"{_p(sub)}: key casing {k!r} -> {act_lower[k.lower()]!r}")
            else:
                out.append(f"{_p(sub)}: {'|'.join(sorted(child.types))} -> absent")
        rec_lower = {k.lower() for k in rec.children}
        for k, child in act.children.items():
            if k not in rec.children and k.lower() not in rec_lower:
                out.append(f"{_p((*path, k))}: absent -> {'|'.join(sorted(child.types))}")
