"""What the ledger's rows read back as: audit records and pending changes (remediations/store/ledger.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remediations.changes import Caller


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


def json_or_text(text: str, cut: bool) -> Any:
    if cut:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def audit_record(row: Mapping[str, Any]) -> AuditRecord:
    truncated = tuple(n for n in str(row.get("Truncated") or "").split(",") if n)
    caller = json_or_text(str(row.get("Caller") or "{}"), "Caller" in truncated)
    return AuditRecord(
        resource_id=row["ResourceId"],
        policy=row["Policy"],
        before=json_or_text(row["Before"], "Before" in truncated),
        after=json_or_text(row["After"], "After" in truncated),
        caller=Caller(**{k: caller.get(k) for k in ("upn", "name", "appid", "oid")})
        if isinstance(caller, dict)
        else Caller(),
        correlation_id=row.get("CorrelationId") or None,
        result=row["Result"],
        time=aware(row["Time"]),
        change_id=row["ChangeId"],
        truncated=truncated,
    )


def pending_of(row: Mapping[str, Any]) -> Pending:
    return Pending(
        kind=row["PartitionKey"],
        pending_id=row["RowKey"],
        resource_id=row["ResourceId"],
        policy=row["Policy"],
        detail=json_or_text(row.get("Detail") or "null", False),
        created=aware(row["Created"]),
        status=row.get("Status") or "open",
        resolution=row.get("Resolution"),
        resolved_at=aware(row["ResolvedAt"]) if row.get("ResolvedAt") else None,
        change_id=row.get("ChangeId") or None,
        decision=row.get("Decision") or None,
        decision_status=row.get("DecisionStatus") or None,
        decided_by=_by(row.get("DecidedBy")),
    )


def _by(text: Any) -> dict[str, str] | None:
    doc = json_or_text(str(text), False) if text else None
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else None


def aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


__all__ = ["AuditRecord", "Pending", "audit_record", "aware", "json_or_text", "pending_of"]
