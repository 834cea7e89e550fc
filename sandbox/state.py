"""The sandbox's state: resources by id, the clock, settings, and the hooks other modules listen on.

Everything lives in memory (one asyncio event loop serves all requests, so no locking is needed); `save`/`load`
persist it to the state dir as JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_SUBSCRIPTION = "00000000-0000-4000-8000-00000000c0de"
SECOND_SUBSCRIPTION = "00000000-0000-4000-8000-0000000000b2"


class Clock:
    """Wall time plus an offset the tests control. Tickers run after every advance (auto-rotation, expiry...)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._tickers: list[Callable[[], None]] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def timestamp(self) -> float:
        return self.now().timestamp()

    def iso(self) -> str:
        return iso(self.now())

    def on_tick(self, fn: Callable[[], None]) -> None:
        self._tickers.append(fn)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset += timedelta(seconds=seconds)
        self.tick()

    def tick(self) -> None:
        for fn in self._tickers:
            fn()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Settings:
    """Knobs the admin API can change at run time."""

    page_size: int = 50
    lro_delay_ms: int = 20  # sent as retry-after-ms on LRO answers; Azure's wait, compressed
    lro_in_progress_polls: int = 0  # status polls answering InProgress before Succeeded
    # ARM's token buckets per subscription (or tenant), principal and operation type; see sandbox/throttling.py.
    throttle: bool = True  # answer 429 when over budget (off: buckets and headers still count, nothing is refused)
    read_budget: int = 250  # bucket size
    read_refill: float = 25.0  # tokens per second
    write_budget: int = 200
    write_refill: float = 10.0
    delete_budget: int = 200
    delete_refill: float = 10.0
    global_factor: float = 15.0  # the subscription's bucket shared by all principals: this many times one's
    retry_after: int | None = None  # fixed Retry-After seconds on ARM 429s (None: until a token is back; min 1)
    kv_budget: float = 4000.0  # Key Vault units (RSA-2048 software GETs) per vault per window
    kv_window_seconds: float = 10.0
    kv_subscription_factor: float = 5.0  # all of a subscription's vaults together: this many times one vault's
    # Event delivery (sandbox/delivery.py): Event Grid's waits divided by the scale; at-least-once knobs, seeded.
    delivery_time_scale: float = 1000.0
    delivery_timeout_s: float = 30.0  # real seconds Event Grid waits for a webhook's answer
    duplicate_rate: float = 0.0  # probability that a delivered batch is delivered again
    reorder: bool = False  # shuffle events waiting for the same subscription
    delivery_seed: int = 0
    # Microsoft.Features: how long a feature stays Registering (Microsoft Learn: registration "may take a few minutes")
    feature_registration_seconds: float = 300.0
    # Seconds (sandbox clock) before data planes honour a new role assignment; ARM lists it at once. Microsoft: "up
    # to 10 minutes (600 seconds)" (Learn, Key Vault rbac-guide, "Known limits and performance"; see rbac.PROPAGATING).
    role_propagation_seconds: float = 600.0
    # Resource Graph (sandbox/providers/resourcegraph.py): queries per user per window (Learn, "Guidance for
    # throttled requests in Azure Resource Graph": 15 per 5 s), and how long a write takes to show there.
    resource_graph_quota: int = 15
    resource_graph_window_seconds: float = 5.0
    resource_graph_lag_seconds: float = 0.0


@dataclass
class Operation:
    """One write, delete or action that ARM carried out: what events and the activity log are made from."""

    operation_name: str  # e.g. Microsoft.KeyVault/vaults/write
    resource_id: str
    status: str  # Succeeded | Failed
    http_method: str
    url: str
    principal: dict[str, Any]
    claims: dict[str, Any]
    correlation_id: str
    time: str
    status_code: int
    authorization: dict[str, Any] = field(default_factory=dict)


class State:
    """Resources by lower-cased id, plus extra tables the providers keep (deleted vaults, key versions...)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.settings = Settings()
        self.tenant_id = DEFAULT_TENANT
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.writes = 0  # puts and removes so far: what caches of derived views compare
        self._by_type: dict[str, dict[str, dict[str, Any]]] = {}  # lower type -> lower id -> body
        # (lower type, lower scope: the id before its last /providers/) -> lower id -> body; and (type, name)
        self._by_scope: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._by_name: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.meta: dict[str, dict[str, Any]] = {}  # sandbox-only facts about a resource (never served)
        self.tables: dict[str, dict[str, Any]] = {}  # provider-owned tables: name -> {key: value}
        self.operations: list[Operation] = []  # the operations log, consumed by events and the activity log
        self.lros: dict[str, dict[str, Any]] = {}
        self.lro_busy: dict[str, str] = {}  # lower-cased resource id -> the PUT/PATCH operation still running on it
        self.calls: list[dict[str, Any]] = []
        self._listeners: list[Callable[[Operation], None]] = []
        self._on_reset: list[Callable[[], None]] = []

    # -- resources -------------------------------------------------------------------------------------------
    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower())

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        key = body["id"].lower()
        self.writes += 1
        old = self.resources.get(key)
        if old is not None:
            self._unindex(key, old)
        self.resources[key] = body
        kind = body.get("type", "").lower()
        self._by_type.setdefault(kind, {})[key] = body
        self._by_scope.setdefault((kind, _scope(key)), {})[key] = body
        self._by_name.setdefault((kind, str(body.get("name", "")).lower()), {})[key] = body
        return body

    def remove(self, resource_id: str) -> dict[str, Any] | None:
        key = resource_id.lower()
        self.writes += 1
        self.meta.pop(key, None)
        body = self.resources.pop(key, None)
        if body is not None:
            self._unindex(key, body)
        return body

    def _unindex(self, key: str, body: dict[str, Any]) -> None:
        kind = body.get("type", "").lower()
        self._by_type.get(kind, {}).pop(key, None)
        self._by_scope.get((kind, _scope(key)), {}).pop(key, None)
        self._by_name.get((kind, str(body.get("name", "")).lower()), {}).pop(key, None)

    def at_scope(self, resource_type: str, scope: str) -> list[dict[str, Any]]:
        """Resources of one type whose id is `{scope}/providers/...` (extension resources such as locks at a scope,
        or the tracked resources of a group), in the order they were stored. O(1) to find."""
        return list(self._by_scope.get((resource_type.lower(), scope.lower().rstrip("/")), {}).values())

    def named(self, resource_type: str, name: str) -> list[dict[str, Any]]:
        """Resources of one type with this name (any scope)."""
        return list(self._by_name.get((resource_type.lower(), name.lower()), {}).values())

    def meta_of(self, resource_id: str) -> dict[str, Any]:
        return self.meta.setdefault(resource_id.lower(), {})

    def of_type(self, resource_type: str, under: str | None = None) -> Iterator[dict[str, Any]]:
        """Resources of one type, optionally only those whose id starts with `under` (a scope)."""
        prefix = under.lower().rstrip("/") + "/" if under else ""
        for key, body in list(self._by_type.get(resource_type.lower(), {}).items()):
            if key.startswith(prefix):
                yield body

    def under(self, scope: str) -> Iterator[dict[str, Any]]:
        prefix = scope.lower().rstrip("/") + "/"
        for key, body in list(self.resources.items()):
            if key.startswith(prefix):
                yield body

    def table(self, name: str) -> dict[str, Any]:
        return self.tables.setdefault(name, {})

    # -- hooks -----------------------------------------------------------------------------------------------
    def on_operation(self, fn: Callable[[Operation], None]) -> None:
        self._listeners.append(fn)

    def record(self, op: Operation) -> None:
        self.operations.append(op)
        for fn in self._listeners:
            fn(op)

    def on_reset(self, fn: Callable[[], None]) -> None:
        self._on_reset.append(fn)

    def reset(self) -> None:
        self.clock.offset = timedelta(0)
        self.settings = Settings()
        self.subscriptions.clear()
        self.resources.clear()
        self._by_type.clear()
        self._by_scope.clear()
        self._by_name.clear()
        self.meta.clear()
        self.tables.clear()
        self.operations.clear()
        self.lros.clear()
        self.lro_busy.clear()
        self.calls.clear()
        for fn in self._on_reset:
            fn()

    # -- persistence -----------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "clockOffsetSeconds": self.clock.offset.total_seconds(),
            "settings": asdict(self.settings),
            "subscriptions": self.subscriptions,
            "resources": self.resources,
            "meta": self.meta,
            "tables": self.tables,
        }

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.dump()))
        tmp.replace(path)

    def load(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.clock.offset = timedelta(seconds=data["clockOffsetSeconds"])
        self.settings = Settings(**data["settings"])
        self.subscriptions = data["subscriptions"]
        self.resources = {}
        self._by_type = {}
        self._by_scope = {}
        self._by_name = {}
        for body in data["resources"].values():
            self.put(body)
        self.meta = data["meta"]
        self.tables = data["tables"]


def _scope(resource_id: str) -> str:
    return resource_id.rsplit("/providers/", 1)[0] if "/providers/" in resource_id else ""


def new_id() -> str:
    return str(uuid.uuid4())
