"""One object for many equal ones: what thousands of resources hold alike, held once.

    share = Shared()
    a = share({"properties": {"enablePurgeProtection": True}})
    b = share({"properties": {"enablePurgeProtection": True}})    # b is a

The planner shares equal `before`, `after`, `verify` and operation bodies across a plan's changes (thousands of
vaults' purge-protection changes write the same body, and each fix made its own); the vault extras share equal
access review entries (an assignment at the subscription gives every vault under it the same entry). Only for values
nothing writes to: every reader of them copies (`dict(change.before)`, `dict(op.body)`) or only reads.
"""

from __future__ import annotations

from typing import Any


class Unshared(Exception):
    """A value `shape` does not compare (not JSON data): kept as it is."""


def shape(value: Any) -> Any:
    """A hashable key equal for values equal in type, order and content (JSON data only): `True` and `1`, a list
    and a tuple, `{"a": 1, "b": 2}` and `{"b": 2, "a": 1}` all differ, so a value shared in their place is written
    exactly as each was."""
    if isinstance(value, dict):
        return (dict, tuple((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value), tuple(shape(v) for v in value))
    if value is None or isinstance(value, str | int | float | bool):
        return (type(value), value)
    raise Unshared


class Shared:
    """`share(value)`: the first value equal to it (by `shape`) given so far, else `value` itself, now the one
    given for its equals. For values nothing writes to."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        try:
            return self._seen.setdefault(shape(value), value)
        except Unshared:
            return value


__all__ = ["Shared", "shape"]
