"""Changes waiting for a person's approval or a VM's deallocation, and the decisions taken on them: the ledger's
`<p>pending` table (one open entry per kind, resource and policy; ETag-conditional, so of two concurrent decisions the
first stays). A mixin of remediations/store/ledger.py's `Ledger`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediations.changes import REQUIREMENTS
from remediations.engine.applier import DONE
from remediations.store.records import Pending, pending_of
from remediations.store.storage import storage_errors
from remediations.store.tables import KEY_UNSAFE, fit, key_of, swap

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

APPROVED, DENIED = "approved", "denied"


class PendingChanges:
    """The pending-change methods of `Ledger` (which provides the tables, the clock and the keys)."""

    tables: Any
    _now: Callable[[datetime | None], datetime]
    _table: Callable[[str], TableClient]

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
                    return None, pending_of(current)
                if current.get("Decision") == DENIED and change_id and current.get("ChangeId") == change_id:
                    return None, pending_of(current)  # a person denied this very change: it is not asked about again
            # new, resolved before, or now another change (a new plan needs a new decision): open it (again)
            return entity, pending_of(entity)

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
        return sorted((pending_of(r) for r in rows), key=lambda p: (p.created, p.pending_id))

    def resolve_pending(
        self, kind: str, pending_id: str, resolution: str, now: datetime | None = None
    ) -> Pending | None:
        """Close an open pending change (`resolution`: approved, rejected, done, ...). Returns it as stored, or
        None when there is no such pending change. Resolving twice keeps the first resolution."""
        if KEY_UNSAFE.search(pending_id) or KEY_UNSAFE.search(kind):
            return None

        def change(current: TableEntity | None) -> tuple[dict[str, Any] | None, Pending | None]:
            if current is None or current.get("Status") != "open":
                return None, pending_of(current) if current is not None else None
            entity = dict(current)
            entity.update(Status="resolved", Resolution=fit(resolution)[0], ResolvedAt=self._now(now))
            return entity, pending_of(entity)

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
        found = sorted((pending_of(r) for r in rows), key=lambda p: (p.status != "open", p.created))
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
        if KEY_UNSAFE.search(pending_id) or KEY_UNSAFE.search(kind):
            return None

        def change(current: TableEntity | None) -> tuple[dict[str, Any] | None, Pending | None]:
            claimed = current is not None and current.get("DecisionStatus") == "deciding"
            if current is None or (current.get("Decision") and not (claimed and current["Decision"] == decision)):
                return None, pending_of(current) if current is not None else None
            when = self._now(now)
            entity = dict(current)
            entity.update(Decision=decision, DecisionStatus=status, DecisionDetail=fit(detail)[0], DecidedAt=when)
            if by:
                entity["DecidedBy"] = fit(json.dumps(dict(by), ensure_ascii=True, sort_keys=True))[0]
            if decision == DENIED or status in DONE:
                entity.update(Status="resolved", Resolution=decision, ResolvedAt=when)
            return entity, pending_of(entity)

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
        if KEY_UNSAFE.search(pending_id) or KEY_UNSAFE.search(kind):
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
            rows = [pending_of(r) for r in table.query_entities(query, parameters=params)]
        keep = (lambda p: p.status == "open") if decision == APPROVED else (lambda p: True)
        return [p.change_id for p in rows if p.change_id and keep(p)]


__all__ = ["APPROVED", "DENIED", "PendingChanges"]
