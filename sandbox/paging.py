"""ARM paging, linear in the length of the list: `value` plus a `nextLink` carrying an opaque `$skiptoken`.

A list is built once, on its first page, and kept as a snapshot that the later pages of the same listing (the same
caller, path and query) read from: listing N items costs O(N), not a rebuild of the whole list for every page
(O(N²/page size)). The token names the snapshot, the offset and the last item served, base64-encoded; Azure's tokens
are opaque too: a real vault list's nextLink ends `&$skiptoken=dGVzdF9rZXl2YXVsdHxjY2tleXZhdWx0MXlnaHE2enQ0ZXdnMmU=`,
base64 of the last vault's group and name (tests/conformance/recordings/keyvault/c7n-vaults-list-2019-09-01.json).
A token whose snapshot is gone (evicted, or the sandbox restarted) still works: the list is built again and the
next page starts after the last item served (or at the offset, if that item is gone). Page size: the sandbox's
`page_size` setting (50), or `$top` when smaller.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.arm import ArmError, Call
from sandbox.state import State

KEPT = 64  # snapshots kept per sandbox (least recently used dropped first)
_snapshots: weakref.WeakKeyDictionary[State, OrderedDict[int, tuple[tuple[Any, ...], list[dict[str, Any]]]]] = (
    weakref.WeakKeyDictionary()
)
_numbers = itertools.count(1)


def _listing_key(call: Call) -> tuple[Any, ...]:
    query = tuple(sorted((k, v) for k, v in call.query.items() if k != "$skiptoken"))
    return (getattr(call.principal, "object_id", None), call.url.split("?")[0].lower(), query)


def _token(number: int, offset: int, last_id: str) -> str:
    return base64.urlsafe_b64encode(f"{number}|{offset}|{last_id.lower()}".encode()).decode()


def _read_token(raw: str) -> tuple[int, int, str]:
    try:
        number, offset, last = base64.urlsafe_b64decode(raw.encode()).decode().split("|", 2)
        return int(number), int(offset), last
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ArmError(400, "InvalidSkipToken", "The $skiptoken is not valid.") from exc


def page(call: Call, build: Callable[[], list[dict[str, Any]]]) -> dict[str, Any]:
    """One page of the list `build()` makes, with a nextLink while more remain."""
    size = call.state.settings.page_size
    top = call.query.get("$top")
    if top is not None:
        try:
            size = min(size, int(top))
        except ValueError as exc:
            raise ArmError(400, "InvalidQueryParameterValue", "The value of '$top' is not valid.") from exc
    kept = _snapshots.setdefault(call.state, OrderedDict())
    key = _listing_key(call)
    raw = call.query.get("$skiptoken")
    if raw is None:
        number, start, items = next(_numbers), 0, build()
    else:
        number, start, last = _read_token(raw)
        snap = kept.get(number)
        if snap is not None and snap[0] == key:
            kept.move_to_end(number)
            items = snap[1]
        else:  # rebuilt: go on after the last item served
            items = build()
            if not (0 < start <= len(items) and str(items[start - 1].get("id", "")).lower() == last):
                start = next((i + 1 for i, b in enumerate(items) if str(b.get("id", "")).lower() == last), start)
    chunk = items[start : start + size]
    out: dict[str, Any] = {"value": chunk}
    end = start + len(chunk)
    if end < len(items) and chunk:  # with $top too: it sets the page size, the nextLink carries on
        kept[number] = (key, items)
        while len(kept) > KEPT:
            kept.popitem(last=False)
        query = {k: v for k, v in call.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = _token(number, end, str(chunk[-1].get("id", "")))
        out["nextLink"] = f"{call.url.split('?')[0]}?{urlencode(query, quote_via=quote)}"
    else:
        kept.pop(number, None)
    return out
