"""Field references: what `"field": "..."`, `field('...')` and `current('...')` select from a resource.

Shared by the condition compiler and the expression compiler. A reference is resolved once, at compile time, into a
small closure; `Context` carries the resource (and the members a surrounding `count` is enumerating) at run time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remediations.errors import ConditionError
from remediations.policy import aliases
from remediations.policy.aliases import STAR

BUILTIN_FIELDS = ("name", "fullName", "kind", "type", "location", "id", "identity.type", "tags", "tags['<name>']")


class Many(list[Any]):
    """The values an `[*]` alias selects: a condition on them must hold for every one."""


class Context:
    """One evaluation: the resource, its lower-cased type, and the members enumerated by enclosing `count`s."""

    __slots__ = ("api_version", "bindings", "now", "primary", "resource", "rtype")

    def __init__(
        self, resource: Mapping[str, Any], now: datetime | None = None, primary: Context | None = None
    ) -> None:
        self.resource = resource
        self.primary = primary  # in an existence condition: the resource the `if` matched (what `[field()]` reads)
        rtype = resource.get("type")
        self.rtype = rtype.lower() if isinstance(rtype, str) else ""
        self.bindings: list[Any] = []
        self.now = now  # None: the time utcNow() is first called
        self.api_version = _API_VERSIONS.get(self.rtype, "")


_API_VERSIONS = {t.lower(): v for t, v in aliases.API_VERSIONS.items()}


@dataclass(frozen=True)
class Frame:
    """A `count` around the expression being compiled: a value count's index name, or a field count's array."""

    name: str  # lower-cased index name (value count) or alias name (field count)
    prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field count: rtype -> lower-cased path


@dataclass
class Scope:
    """What the compiler knows about the surroundings of the expression it compiles."""

    parameters: Mapping[str, tuple[str, Any]]  # lower-cased name -> (declared name, value)
    resource_type: str | None = None
    frames: tuple[Frame, ...] = ()
    fields: set[str] = field(default_factory=set)
    policy: Mapping[str, Any] = field(default_factory=dict)  # what `policy()` returns: assignment and definition ids
    related: bool = False  # an existence condition: `field` reads the related resource, `[field()]` the primary one

    def inside(self, frame: Frame) -> Scope:
        return Scope(self.parameters, self.resource_type, (*self.frames, frame), self.fields, self.policy, self.related)


Selector = Callable[[Context], Any]


@dataclass(frozen=True)
class FieldRef:
    """A compiled field: `select` returns one value, `None` when absent, or `Many` for `[*]` aliases."""

    name: str
    is_array: bool
    select: Selector
    bound: bool = False  # reads the member an enclosing field count is enumerating

    def template_value(self, ctx: Context) -> Any:
        """The value `field()` returns: arrays for `[*]` aliases, `""` for an absent property (as in Azure)."""
        value = self.select(ctx)
        if self.is_array:
            return list(value) if isinstance(value, Many) else [value]
        return "" if value is None else value


def child(value: Any, key: str) -> Any:
    """`value[key]` for a JSON object, matching the key case-insensitively as ARM does; `None` when absent."""
    if not isinstance(value, dict):
        return None
    found = value.get(key)
    if found is None and key not in value:
        lowered = key.lower()
        for k, v in value.items():
            if k.lower() == lowered:
                return v
    return found


def _get(value: Any, parts: tuple[str, ...]) -> Any:
    for key in parts:
        value = child(value, key)
        if value is None:
            return None
    return value


def _walk(value: Any, parts: tuple[str, ...], i: int, out: Many, inside: bool) -> None:
    """Collect what `parts` selects. An absent array (or a path to one) selects nothing; an absent property of an
    array member selects None, so that `exists: false` holds for that member."""
    for j in range(i, len(parts)):
        key = parts[j]
        if key is STAR:
            if isinstance(value, list):
                for item in value:
                    _walk(item, parts, j + 1, out, True)
            return
        value = child(value, key)
        if value is None:
            if inside and STAR not in parts[j:]:
                out.append(None)
            return
    out.append(value)


def _location(ctx: Context) -> Any:
    value = ctx.resource.get("location")
    return value.replace(" ", "").lower() if isinstance(value, str) else value


def _full_name(ctx: Context) -> Any:
    rid = ctx.resource.get("id")
    if isinstance(rid, str) and "/providers/" in rid.lower():
        tail = rid[rid.lower().rindex("/providers/") + len("/providers/") :].strip("/").split("/")
        return "/".join(tail[2::2])
    return ctx.resource.get("name")


def _top(key: str) -> Selector:
    return lambda ctx: child(ctx.resource, key)


_STATIC: dict[str, Selector] = {
    "name": _top("name"),
    "kind": _top("kind"),
    "type": _top("type"),
    "id": _top("id"),
    "location": _location,
    "fullname": _full_name,
    "identity.type": lambda ctx: _get(ctx.resource, ("identity", "type")),
    "tags": _top("tags"),
}

_TAG = re.compile(r"^tags(?:\[\s*'((?:[^']|'')*)'\s*\]|\[([^\]]*)\]|\.(.+))$", re.IGNORECASE)


def tag_name(name: str) -> str | None:
    """`tags['a.b']`, `tags[a.b]` or `tags.a` -> the tag name; None when `name` is not a tag field."""
    m = _TAG.match(name)
    if not m:
        return None
    quoted, bare, dotted = m.groups()
    return quoted.replace("''", "'") if quoted is not None else (bare if bare is not None else dotted)


def compile_field(name: str, scope: Scope, path: str) -> FieldRef:
    """Resolve a field name (built-in field, tag, or alias) into a `FieldRef`; raise `ConditionError` if unknown."""
    scope.fields.add(name)
    static = _STATIC.get(name.lower())
    if static is not None:
        return FieldRef(name, False, static)
    tag = tag_name(name)
    if tag is not None:
        return FieldRef(name, False, lambda ctx: child(child(ctx.resource, "tags"), tag))
    per_type = aliases.lookup(name)
    if scope.resource_type is not None:
        per_type = {t: a for t, a in per_type.items() if t == scope.resource_type.lower()}
    if not per_type:
        if scope.resource_type is None and not aliases.lookup(name) and _of_unread_type(name, path):
            # As in Azure, where an alias of another type selects nothing on the resource being evaluated.
            return FieldRef(name, STAR in name, _absent_many if STAR in name else _absent)
        where = f"for {scope.resource_type}" if scope.resource_type else "to Cryptward"
        raise ConditionError(
            path, f"unknown field {name!r}: not a built-in field nor an alias known {where}", _options(scope, name)
        )
    table: dict[str, tuple[int, tuple[str, ...], bool]] = {}
    for rtype, alias in per_type.items():
        frame_idx, rest = _bind(alias.path, rtype, scope.frames)
        table[rtype] = (frame_idx, rest, STAR in rest)
    is_array = any(a.is_array for a in per_type.values())
    bound = any(idx >= 0 for idx, _, _ in table.values())
    return FieldRef(name, is_array, _alias_selector(table, is_array), bound)


def _options(scope: Scope, name: str) -> tuple[str, ...]:
    """The nearest known names to `name` (not every alias of every type): the fields a typo most likely meant."""
    owner = scope.resource_type or aliases.owner_type(name)
    by_tail: dict[str, str] = {}
    for known in (*BUILTIN_FIELDS, *aliases.names(owner)):
        by_tail.setdefault(_tail(known), known)  # a built-in field first: `type` before `.../extensions/type`
    tail = _tail(name)
    near = [t for t in by_tail if tail and tail in t]
    near += [t for t in difflib.get_close_matches(tail, list(by_tail), n=5, cutoff=0.6) if t not in near]
    return tuple(by_tail[t] for t in near[:5]) or BUILTIN_FIELDS


def _tail(name: str) -> str:
    """The property part of an alias name, lower-cased: what a typo is compared on (all share the type part)."""
    return name.rsplit("/", 1)[-1].lower()


def _of_unread_type(name: str, path: str) -> bool:
    """True for an alias of a type Cryptward does not read; a typo of a type it reads is an error, not that."""
    if aliases.owner_type(name) is not None:
        return False
    near = aliases.near_types(name)
    if near:
        raise ConditionError(path, f"unknown field {name!r}: its type is not one Cryptward reads; did you mean", near)
    return "/" in name


def _absent(_ctx: Context) -> Any:
    return None


def _absent_many(_ctx: Context) -> Any:
    return Many()


def _bind(path: tuple[str, ...], rtype: str, frames: tuple[Frame, ...]) -> tuple[int, tuple[str, ...]]:
    """Which enclosing field count (innermost first) enumerates a prefix of `path`, and the rest of the path."""
    lowered = tuple(p.lower() for p in path)
    for idx in range(len(frames) - 1, -1, -1):
        prefix = frames[idx].prefixes.get(rtype)
        if prefix is not None and lowered[: len(prefix)] == prefix:
            return idx, path[len(prefix) :]
    return -1, path


def _alias_selector(table: dict[str, tuple[int, tuple[str, ...], bool]], is_array: bool) -> Selector:
    def select(ctx: Context) -> Any:
        entry = table.get(ctx.rtype)
        if entry is None:
            return Many() if is_array else None
        idx, parts, many = entry
        root = ctx.resource if idx < 0 else ctx.bindings[idx]
        if not many:
            return _get(root, parts)
        out = Many()
        _walk(root, parts, 0, out, idx >= 0)
        return out

    return select


def array_prefixes(name: str, scope: Scope, path: str) -> dict[str, tuple[str, ...]]:
    """For `count.field`: the lower-cased path per resource type that the count enumerates (must hold `[*]`)."""
    per_type = aliases.lookup(name)
    if scope.resource_type is not None:
        per_type = {t: a for t, a in per_type.items() if t == scope.resource_type.lower()}
    arrays = {t: tuple(p.lower() for p in a.path) for t, a in per_type.items() if a.is_array}
    if arrays:
        return arrays
    if not per_type:
        compile_field(name, scope, path)  # unknown: its own error; of a type Cryptward does not read: counts nothing
        return {}
    if STAR not in name:
        options = [n for n in aliases.names(scope.resource_type) if STAR in n]
        raise ConditionError(path, f"count.field must be an array alias (with [*]), got {name!r}", options)
    raise ConditionError(path, f"count.field {name!r} is an alias Cryptward knows, but not as an array here")
