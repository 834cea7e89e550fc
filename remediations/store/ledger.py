"""The bot's only state, in Table Storage (the function app's own account; Azurite locally).

    ledger = Ledger.from_env(settings.storage.values)   # AzureWebJobsStorage; creates its tables (idempotent)
    ledger.claim(item.key, window_seconds=60)           # True once per resource per window: dedupe/debounce
    ledger.release(item.key, claimed_at)                # give a claim back early (a work lock once the work is done)
    ledger.record_change(resource_id, policy=..., before=..., after=..., caller=..., correlation_id=..., result=...)
    ledger.audit_for(resource_id)                       # its audit records, oldest first
    ledger.add_pending("approval", resource_id, policy, detail); ledger.list_pending(); ledger.resolve_pending(...)
    ledger.note_fix(item.key); ledger.is_fighting(item.key, threshold=3, window_seconds=3600)
    ledger.keep_signin(state, doc); ledger.take_signin(state, max_age_seconds=600)  # a sign-in in progress, once

Tables (names from a prefix, `cw` by default): `<p>dedupe` (one claim per resource), `<p>audit` (one record per
change, partitioned by resource), `<p>pending` (changes waiting for an approval or a deallocation), `<p>fights` (fix
times per resource). A sign-in in progress (the approval page's MSAL flow and the link it is for) is kept in the dedupe
table under its `state`, and taken once. Resource ids never become keys as they are (`/` is not allowed in a key):
the key of a resource is the SHA-256 of its lower-case id. Concurrent workers are safe: a claim is an insert-if-absent
or an ETag-conditional replace, so of two workers claiming at once exactly one wins; counters retry on a 409/412. Time
comes from `now` arguments, else the injected clock.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from remediations.changes import Caller
from remediations.errors import SettingsError
from remediations.store.pending import APPROVED, DENIED, PendingChanges
from remediations.store.records import AuditRecord, Pending, audit_record, json_or_text
from remediations.store.storage import StorageTarget, as_target, storage_errors, target
from remediations.store.tables import KEY_UNSAFE, delete_unchanged, fit, get_entity, key_of, swap, write_entity

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

PREFIX_SETTING = "CRYPTWARD_TABLE_PREFIX"
MAX_FIGHT_TIMES = 500
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Tables:
    """The four table names. `Tables.with_prefix("cwtest1")` gives `cwtest1dedupe`, ..."""

    dedupe: str = "cwdedupe"
    audit: str = "cwaudit"
    pending: str = "cwpending"
    fights: str = "cwfights"

    @classmethod
    def with_prefix(cls, prefix: str) -> Tables:
        tables = cls(*(f"{prefix}{name}" for name in ("dedupe", "audit", "pending", "fights")))
        for name in vars(tables).values():
            if not _TABLE_NAME.match(name):
                raise SettingsError(
                    f"{PREFIX_SETTING}: table name {name!r} is invalid; expected a letter then letters or digits, "
                    "3 to 63 characters in all"
                )
        return tables


@dataclass
class Ledger(PendingChanges):
    """The ledger over one storage account. Call `create_tables()` once at start (`from_env` does)."""

    connection: str | StorageTarget = field(repr=False)  # a connection string (holds the account key) or a target
    tables: Tables = field(default_factory=Tables)
    clock: Callable[[], datetime] = _utcnow
    _clients: dict[str, TableClient] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], clock: Callable[[], datetime] = _utcnow) -> Ledger:
        prefix = (env.get(PREFIX_SETTING) or "").strip()
        ledger = cls(target(env), Tables.with_prefix(prefix) if prefix else Tables(), clock)
        ledger.create_tables()
        return ledger

    @property
    def storage(self) -> StorageTarget:
        return as_target(self.connection)

    def create_tables(self) -> None:
        """Create the four tables if they do not exist (idempotent)."""
        with storage_errors("creating the ledger tables"):
            service = self.storage.table_service()
            with service:
                for name in vars(self.tables).values():
                    service.create_table_if_not_exists(name)

    # -- dedupe ---------------------------------------------------------------------------------------------------

    def claim(self, resource_key: str, window_seconds: float, now: datetime | None = None) -> bool:
        """True when this caller may queue work for the resource: no claim in the last `window_seconds`. Of
        concurrent callers exactly one gets True (insert-if-absent, else replace only if the ETag is unchanged)."""
        from azure.core.exceptions import HttpResponseError

        at = self._now(now).timestamp()
        pk = key_of(resource_key)
        table = self._table(self.tables.dedupe)
        with storage_errors("claiming a resource"):
            current = get_entity(table, pk, "claim")
            if current is not None and at - float(current.get("At", 0.0)) < window_seconds:
                return False
            entity = {"PartitionKey": pk, "RowKey": "claim", "ResourceKey": fit(resource_key.lower())[0], "At": at}
            try:
                write_entity(table, entity, current)
                return True
            except HttpResponseError as e:
                if e.status_code in (409, 412):  # another worker inserted or renewed it first
                    return False
                raise

    def is_claimed(self, resource_key: str, window_seconds: float, now: datetime | None = None) -> bool:
        """True when a claim made within the last `window_seconds` stands (a read: claims nothing)."""
        at = self._now(now).timestamp()
        with storage_errors("reading a claim"):
            current = get_entity(self._table(self.tables.dedupe), key_of(resource_key), "claim")
        return current is not None and at - float(current.get("At", 0.0)) < window_seconds

    def release(self, resource_key: str, claimed_at: datetime) -> bool:
        """Give back the claim made at `claimed_at` (the `now` passed to `claim`) before its window ends: a work lock
        held while working, or a claim whose work could not be queued. A claim renewed since is left alone."""

        at = self._now(claimed_at).timestamp()
        pk = key_of(resource_key)
        table = self._table(self.tables.dedupe)
        with storage_errors("releasing a claim"):
            current = get_entity(table, pk, "claim")
            if current is None or float(current.get("At", 0.0)) != at:
                return False
            return delete_unchanged(table, current)

    # -- audit ----------------------------------------------------------------------------------------------------

    def record_change(
        self,
        resource_id: str,
        *,
        policy: str,
        before: Any,
        after: Any,
        caller: Caller | None,
        correlation_id: str | None,
        result: str,
        change_id: str | None = None,
        now: datetime | None = None,
    ) -> AuditRecord:
        """Write one audit record (a change made, refused or failed) and return it as stored."""
        when = self._now(now)
        change_id = change_id or uuid.uuid4().hex
        safe_id = change_id if not KEY_UNSAFE.search(change_id) and len(change_id) <= 200 else key_of(change_id)
        actor = caller or Caller()
        entity: dict[str, Any] = {
            "PartitionKey": key_of(resource_id),
            "RowKey": f"{when:%Y%m%dT%H%M%S%fZ}-{safe_id}",
            "Time": when,
            "ChangeId": change_id,
        }
        truncated = []
        texts = {
            "ResourceId": resource_id,
            "Policy": policy,
            "Result": result,
            "CorrelationId": correlation_id or "",
            "Caller": json.dumps({k: v for k, v in vars(actor).items() if v}, ensure_ascii=True),
            "Before": json.dumps(before, ensure_ascii=True, sort_keys=True, default=str),
            "After": json.dumps(after, ensure_ascii=True, sort_keys=True, default=str),
            "ChangeId": change_id,
        }
        for name, text in texts.items():
            entity[name], cut = fit(text)
            if cut:
                truncated.append(name)
        entity["Truncated"] = ",".join(truncated)
        table = self._table(self.tables.audit)
        with storage_errors("recording a change"):
            table.create_entity(entity)
        return audit_record(entity)

    def audit_for(self, resource_id: str) -> list[AuditRecord]:
        """Every audit record of the resource (any case of its id), oldest first."""
        table = self._table(self.tables.audit)
        with storage_errors("reading the audit records"):
            rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": key_of(resource_id)}))
        return [audit_record(row) for row in sorted(rows, key=lambda r: r["RowKey"])]

    # -- sign-ins in progress --------------------------------------------------------------------------------------

    def keep_signin(self, state: str, doc: Mapping[str, Any], now: datetime | None = None) -> None:
        """Keep a sign-in in progress under its `state` (random, made by MSAL) until `take_signin`."""
        text, cut = fit(json.dumps(dict(doc), ensure_ascii=True))
        if cut:
            raise ValueError("a sign-in in progress is too big to keep")
        entity = {"PartitionKey": key_of(f"signin:{state}"), "RowKey": "signin", "At": self._now(now).timestamp()}
        with storage_errors("keeping a sign-in"):
            self._table(self.tables.dedupe).create_entity({**entity, "Doc": text})

    def take_signin(self, state: str, max_age_seconds: float, now: datetime | None = None) -> dict[str, Any] | None:
        """The sign-in kept under `state`, removed as it is read (ETag-conditional: of two callers with the same
        state one gets it); None when there is none, it was taken, or it is older than `max_age_seconds`."""

        if not state or len(state) > 200:
            return None
        pk = key_of(f"signin:{state}")
        table = self._table(self.tables.dedupe)
        with storage_errors("taking a sign-in"):
            current = get_entity(table, pk, "signin")
            if current is None or not delete_unchanged(table, current):
                return None
        if self._now(now).timestamp() - float(current.get("At", 0.0)) > max_age_seconds:
            return None
        doc = json_or_text(str(current.get("Doc") or "{}"), False)
        return doc if isinstance(doc, dict) else None

    # -- fights ---------------------------------------------------------------------------------------------------

    def note_fix(self, resource_key: str, now: datetime | None = None, window_seconds: float = 3600) -> int:
        """Count one more fix of the resource; returns how many fixes fall in the last `window_seconds`."""
        at = self._now(now).timestamp()
        pk = key_of(resource_key)

        def change(current: TableEntity | None) -> tuple[dict[str, Any], int]:
            times = ([t for t in _times(current) if at - t < window_seconds] + [at])[-MAX_FIGHT_TIMES:]
            return {"PartitionKey": pk, "RowKey": "fights", "Times": json.dumps(times)}, len(times)

        return swap(self._table(self.tables.fights), pk, "fights", change, "counting a fix")

    def is_fighting(
        self, resource_key: str, threshold: int, window_seconds: float, now: datetime | None = None
    ) -> bool:
        """True when the resource was fixed `threshold` times or more in the last `window_seconds`: someone keeps
        undoing the fix, so the bot should stop and tell a person."""
        at = self._now(now).timestamp()
        table = self._table(self.tables.fights)
        with storage_errors("reading the fix count"):
            current = get_entity(table, key_of(resource_key), "fights")
        return sum(1 for t in _times(current) if 0 <= at - t < window_seconds) >= threshold

    # -- plumbing -------------------------------------------------------------------------------------------------

    def _now(self, now: datetime | None) -> datetime:
        when = now if now is not None else self.clock()
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def _table(self, name: str) -> TableClient:
        # SDK clients are thread-safe and keep their connections: one per table for the ledger's life.
        if name not in self._clients:
            self._clients[name] = self.storage.table_client(name)
        return self._clients[name]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _times(entity: Mapping[str, Any] | None) -> list[float]:
    if entity is None:
        return []
    try:
        values = json.loads(entity.get("Times") or "[]")
    except ValueError:
        return []
    return [float(v) for v in values if isinstance(v, int | float)]


__all__ = [
    "APPROVED",
    "DENIED",
    "PREFIX_SETTING",
    "AuditRecord",
    "Ledger",
    "Pending",
    "Tables",
    "key_of",
]
