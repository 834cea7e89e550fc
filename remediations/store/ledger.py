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

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from remediations.changes import REQUIREMENTS, Caller
from remediations.engine.applier import DONE
from remediations.errors import SettingsError
from remediations.store.storage import StorageTarget, as_target, storage_errors, target
from remediations.store.tables import delete_unchanged, fit, get_entity, swap, write_entity

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

PREFIX_SETTING = "CRYPTWARD_TABLE_PREFIX"
MAX_FIGHT_TIMES = 500
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
APPROVED, DENIED = "approved", "denied"
_KEY_UNSAFE = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def key_of(resource_id: str) -> str:
    """The Table Storage key of a resource: SHA-256 of its lower-case id (ARM ids are case-insensitive)."""
    return hashlib.sha256(resource_id.lower().encode("utf-8", "surrogatepass")).hexdigest()


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


@dataclass(frozen=True)
class AuditRecord:
    """One change the bot made (or tried): `result` is what happened (applied, failed, skipped, pending, ...).

    `before`/`after` are the JSON given; a value too big for a table property comes back as its truncated JSON text,
    ending with a marker, and its name is listed in `truncated`."""

    resource_id: str
    policy: str
    before: Any
    after: Any
    caller: Caller
    correlation_id: str | None
    result: str
    time: datetime
    change_id: str
    truncated: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pending:
    """A change waiting for something: `kind` is `approval` (a person approves it) or `deallocated` (its VM must be
    deallocated first). One open pending per kind, resource and policy."""

    kind: str
    pending_id: str
    resource_id: str
    policy: str
    detail: Any
    created: datetime
    status: str = "open"  # open | resolved
    resolution: str | None = None
    resolved_at: datetime | None = None
    change_id: str | None = None  # the planned change's stable id (changes.change_id), when given
    decision: str | None = None  # approved | denied: a person decided (approval links)
    decision_status: str | None = None  # what the decision did: applied, pending-deallocation, denied, ...
    decided_by: dict[str, str] | None = None  # the signed-in approver (oid, tid, name, upn, via) and the notice's run


@dataclass
class Ledger:
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
        safe_id = change_id if not _KEY_UNSAFE.search(change_id) and len(change_id) <= 200 else key_of(change_id)
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
        return _audit_record(entity)

    def audit_for(self, resource_id: str) -> list[AuditRecord]:
        """Every audit record of the resource (any case of its id), oldest first."""
        table = self._table(self.tables.audit)
        with storage_errors("reading the audit records"):
            rows = list(table.query_entities("PartitionKey eq @pk", parameters={"pk": key_of(resource_id)}))
        return [_audit_record(row) for row in sorted(rows, key=lambda r: r["RowKey"])]

    # -- pending --------------------------------------------------------------------------------------------------

    def add_pending(
        self, kind: str, resource_id: str, policy: str, detail: Any = None, now: datetime | None = None
    ) -> Pending:
        """Record a change waiting for `kind`; adding one that is already open returns the open one unchanged."""
        if kind not in REQUIREMENTS:
            raise ValueError(f"unknown pending kind {kind!r}; valid: {', '.join(REQUIREMENTS)}")
        row = key_of(f"{resource_id}\n{policy}")
        change_id = str(detail.get("changeId") or "") if isinstance(detail, Mapping) else ""
        entity: dict[str, Any] = {
            "PartitionKey": kind,
            "RowKey": row,
            "ResourceKey": key_of(resource_id),
            "ChangeId": fit(change_id)[0],
            "ResourceId": fit(resource_id)[0],
            "Policy": fit(policy)[0],
            "Detail": fit(json.dumps(detail, ensure_ascii=True, sort_keys=True, default=str))[0],
            "Created": self._now(now),
            "Status": "open",
        }

        def change(current: TableEntity | None) -> tuple[dict[str, Any] | None, Pending]:
            if current is not None:
                same = not change_id or current.get("ChangeId") == change_id
                if current.get("Status") == "open" and same:
                    return None, _pending(current)
                if current.get("Decision") == DENIED and change_id and current.get("ChangeId") == change_id:
                    return None, _pending(current)  # a person denied this very change: it is not asked about again
            # new, resolved before, or now another change (a new plan needs a new decision): open it (again)
            return entity, _pending(entity)

        return swap(self._table(self.tables.pending), kind, row, change, "adding a pending change")

    def list_pending(
        self, kind: str | None = None, *, open_only: bool = True, resource_id: str | None = None
    ) -> list[Pending]:
        """Pending changes, oldest first; by default only the open ones; only `resource_id`'s when given."""
        clauses, params = [], {}
        if kind is not None:
            clauses.append("PartitionKey eq @kind")
            params["kind"] = kind
        if resource_id is not None:
            clauses.append("ResourceKey eq @rk")
            params["rk"] = key_of(resource_id)
        if open_only:
            clauses.append("Status eq 'open'")
        table = self._table(self.tables.pending)
        with storage_errors("listing pending changes"):
            if clauses:
                rows = list(table.query_entities(" and ".join(clauses), parameters=params))
            else:
                rows = list(table.list_entities())
        return sorted((_pending(r) for r in rows), key=lambda p: (p.created, p.pending_id))

    def resolve_pending(
        self, kind: str, pending_id: str, resolution: str, now: datetime | None = None
    ) -> Pending | None:
        """Close an open pending change (`resolution`: approved, rejected, done, ...). Returns it as stored, or
        None when there is no such pending change. Resolving twice keeps the first resolution."""
        if _KEY_UNSAFE.search(pending_id) or _KEY_UNSAFE.search(kind):
            return None

        def change(current: TableEntity | None) -> tuple[dict[str, Any] | None, Pending | None]:
            if current is None or current.get("Status") != "open":
                return None, _pending(current) if current is not None else None
            entity = dict(current)
            entity.update(Status="resolved", Resolution=fit(resolution)[0], ResolvedAt=self._now(now))
            return entity, _pending(entity)

        return swap(self._table(self.tables.pending), kind, pending_id, change, "resolving a pending change")

    def find_pending(self, change_id: str, kind: str = "approval") -> Pending | None:
        """The pending entry (open or not) of the change `change_id`, or None."""
        table = self._table(self.tables.pending)
        with storage_errors("finding a pending change"):
            rows = list(
                table.query_entities(
                    "PartitionKey eq @kind and ChangeId eq @c", parameters={"kind": kind, "c": change_id}
                )
            )
        found = sorted((_pending(r) for r in rows), key=lambda p: (p.status != "open", p.created))
        return found[0] if found else None

    def decide_pending(
        self,
        kind: str,
        pending_id: str,
        *,
        decision: str,
        status: str,
        detail: str,
        now: datetime | None = None,
        by: Mapping[str, str] | None = None,
    ) -> Pending | None:
        """Record a person's decision on a pending change (ETag-safe: of two concurrent decisions the first stays),
        or what a decision taken with `claim_decision` came to. A denial, or an approval whose change is done, closes
        it; an approved change still waiting (for its VM's deallocation, a busy worker, a failed write) stays open,
        and `approved_for` hands it to the next run."""
        if _KEY_UNSAFE.search(pending_id) or _KEY_UNSAFE.search(kind):
            return None

        def change(current: TableEntity | None) -> tuple[dict[str, Any] | None, Pending | None]:
            claimed = current is not None and current.get("DecisionStatus") == "deciding"
            if current is None or (current.get("Decision") and not (claimed and current["Decision"] == decision)):
                return None, _pending(current) if current is not None else None
            when = self._now(now)
            entity = dict(current)
            entity.update(Decision=decision, DecisionStatus=status, DecisionDetail=fit(detail)[0], DecidedAt=when)
            if by:
                entity["DecidedBy"] = fit(json.dumps(dict(by), ensure_ascii=True, sort_keys=True))[0]
            if decision == DENIED or status in DONE:
                entity.update(Status="resolved", Resolution=decision, ResolvedAt=when)
            return entity, _pending(entity)

        return swap(self._table(self.tables.pending), kind, pending_id, change, "recording a decision")

    def claim_decision(
        self,
        kind: str,
        pending_id: str,
        *,
        decision: str,
        now: datetime | None = None,
        by: Mapping[str, str] | None = None,
    ) -> bool:
        """Take a person's decision before anything is done about it: True when this call recorded it, False when
        someone decided first (ETag-conditional, so of an Approve and a Deny sent together exactly one wins)."""
        if _KEY_UNSAFE.search(pending_id) or _KEY_UNSAFE.search(kind):
            return False

        def change(current: TableEntity | None) -> tuple[dict[str, Any] | None, bool]:
            if current is None or current.get("Decision"):
                return None, False
            entity = {**current, "Decision": decision, "DecisionStatus": "deciding", "DecidedAt": self._now(now)}
            if by:
                entity["DecidedBy"] = fit(json.dumps(dict(by), ensure_ascii=True, sort_keys=True))[0]
            return entity, True

        return swap(self._table(self.tables.pending), kind, pending_id, change, "taking a decision")

    def decided_for(self, resource_id: str, decision: str, kind: str = "approval") -> list[str]:
        """Change ids of the resource a person decided `decision` (approved: still open, so the next run applies
        them; denied: so that nobody is asked again)."""
        query = "PartitionKey eq @kind and ResourceKey eq @rk and Decision eq @d"
        params = {"kind": kind, "rk": key_of(resource_id), "d": decision}
        table = self._table(self.tables.pending)
        with storage_errors("reading decisions"):
            rows = [_pending(r) for r in table.query_entities(query, parameters=params)]
        keep = (lambda p: p.status == "open") if decision == APPROVED else (lambda p: True)
        return [p.change_id for p in rows if p.change_id and keep(p)]

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
        doc = _json_or_text(str(current.get("Doc") or "{}"), False)
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


def _json_or_text(text: str, cut: bool) -> Any:
    if cut:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _audit_record(row: Mapping[str, Any]) -> AuditRecord:
    truncated = tuple(n for n in str(row.get("Truncated") or "").split(",") if n)
    caller = _json_or_text(str(row.get("Caller") or "{}"), "Caller" in truncated)
    return AuditRecord(
        resource_id=row["ResourceId"],
        policy=row["Policy"],
        before=_json_or_text(row["Before"], "Before" in truncated),
        after=_json_or_text(row["After"], "After" in truncated),
        caller=Caller(**{k: caller.get(k) for k in ("upn", "name", "appid", "oid")})
        if isinstance(caller, dict)
        else Caller(),
        correlation_id=row.get("CorrelationId") or None,
        result=row["Result"],
        time=_aware(row["Time"]),
        change_id=row["ChangeId"],
        truncated=truncated,
    )


def _pending(row: Mapping[str, Any]) -> Pending:
    return Pending(
        kind=row["PartitionKey"],
        pending_id=row["RowKey"],
        resource_id=row["ResourceId"],
        policy=row["Policy"],
        detail=_json_or_text(row.get("Detail") or "null", False),
        created=_aware(row["Created"]),
        status=row.get("Status") or "open",
        resolution=row.get("Resolution"),
        resolved_at=_aware(row["ResolvedAt"]) if row.get("ResolvedAt") else None,
        change_id=row.get("ChangeId") or None,
        decision=row.get("Decision") or None,
        decision_status=row.get("DecisionStatus") or None,
        decided_by=_by(row.get("DecidedBy")),
    )


def _by(text: Any) -> dict[str, str] | None:
    doc = _json_or_text(str(text), False) if text else None
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
