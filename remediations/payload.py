"""Reading untrusted JSON (Event Grid deliveries, alert bodies, queue messages): each helper names where a bad value
is (`data.claims.appid`) and what was expected there, and never quotes the value (it may carry a token).

    data = load_json(body, "body")                # at most 1 MB; EventRejected("body", "not valid JSON (...)")
    get_str(data, "subject", "[0]")               # a string, or EventRejected("[0].subject", "missing; ...")
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from remediations.errors import EventRejected

MAX_BODY_BYTES = 1024 * 1024


def load_json(body: bytes | bytearray | memoryview | str, where: str) -> Any:
    """JSON from a payload of at most 1 MB; EventRejected (at `where`) when it is not JSON or too big."""
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if size > MAX_BODY_BYTES:
        raise EventRejected(where, f"{size} bytes; at most {MAX_BODY_BYTES} (1 MB) are accepted")
    try:
        return json.loads(bytes(body) if not isinstance(body, str) else body)
    except json.JSONDecodeError as e:
        raise EventRejected(where, f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except UnicodeDecodeError:
        raise EventRejected(where, "not valid JSON (not UTF-8, UTF-16 or UTF-32 text)") from None
    except RecursionError:
        raise EventRejected(where, "not valid JSON (nested too deeply)") from None
    except ValueError as e:  # integers over Python's digit limit
        raise EventRejected(where, f"not valid JSON ({type(e).__name__})") from None


_KINDS = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}


def kind_of(value: Any) -> str:
    return "an object" if isinstance(value, dict) else _KINDS.get(type(value), type(value).__name__)


def get_object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    path = f"{where}.{key}" if where else key
    if not isinstance(value, dict):
        raise EventRejected(path, f"expected an object, got {'nothing' if key not in parent else kind_of(value)}")
    return value


def get_str(parent: dict[str, Any], key: str, where: str, *, required: bool = True, label: str | None = None) -> Any:
    value = parent.get(key)
    path = f"{where}.{label or key}"
    if value is None:
        if required:
            raise EventRejected(path, "missing; expected a string")
        return None
    if not isinstance(value, str):
        raise EventRejected(path, f"expected a string, got {kind_of(value)}")
    return value


def get_time(parent: dict[str, Any], key: str, where: str, *, required: bool = True) -> datetime | None:
    text = get_str(parent, key, where, required=required)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise EventRejected(f"{where}.{key}", "expected an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def from_epoch(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise EventRejected(where, f"expected seconds since 1970, got {kind_of(value)}")
    try:
        return datetime.fromtimestamp(int(value) if isinstance(value, str) else value, UTC)
    except (ValueError, OverflowError, OSError):
        raise EventRejected(where, "expected seconds since 1970 (a whole number in range)") from None


def to_iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
