"""The unit of work: one resource to look at again, and why. Triggers make work items (from events, alerts and the
timers), the work queue carries them as JSON, the worker takes them one by one.

    item = WorkItem("eventgrid", vault_id, resource_type="microsoft.keyvault/vaults", caller=Caller(upn="..."))
    WorkItem.from_json(item.to_json()) == item
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remediations.changes import Caller
from remediations.errors import EventRejected
from remediations.payload import get_str, get_time, kind_of, load_json, to_iso

SOURCES = ("eventgrid", "alert", "sweep", "rotation")


@dataclass(frozen=True)
class WorkItem:
    """One resource to re-evaluate, and why. `reason` is set when the input is acknowledged but not acted on.

    `resource_id` is as Azure wrote it (for display); `key` is its lower-case form (ARM ids are case-insensitive)
    for dedupe and the ledger. `resource_type` is lower-case. `deallocated` marks a VM deallocation.
    """

    source: str  # eventgrid | alert | sweep | rotation
    resource_id: str
    resource_type: str = ""
    operation: str = ""
    event_type: str = ""
    event_id: str = ""
    event_time: datetime | None = None
    correlation_id: str | None = None
    caller: Caller = field(default_factory=Caller)
    deallocated: bool = False
    key_version: str | None = None
    key_expires: datetime | None = None
    reason: str | None = None

    @property
    def key(self) -> str:
        return self.resource_id.lower()

    def to_json(self) -> str:
        """The queue message form (compact JSON); `from_json` reads it back."""
        data: dict[str, Any] = {
            "source": self.source,
            "resourceId": self.resource_id,
            "resourceType": self.resource_type,
            "operation": self.operation,
            "eventType": self.event_type,
            "eventId": self.event_id,
            "eventTime": to_iso(self.event_time),
            "correlationId": self.correlation_id,
            "caller": {k: v for k, v in vars(self.caller).items() if v is not None},
            "deallocated": self.deallocated,
            "keyVersion": self.key_version,
            "keyExpires": to_iso(self.key_expires),
            "reason": self.reason,
        }
        return json.dumps({k: v for k, v in data.items() if v not in (None, "", {}, False)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkItem:
        """A work item from `to_json`'s output. Raises EventRejected when the message is not one."""
        return cls.from_data(load_json(text, "message"))

    @classmethod
    def from_data(cls, data: Any, where: str = "message") -> WorkItem:
        """A work item from `to_json`'s output already parsed; `where` names it in errors."""
        if not isinstance(data, dict):
            raise EventRejected(where, f"expected a JSON object, got {kind_of(data)}")
        source = get_str(data, "source", where)
        if source not in SOURCES:
            raise EventRejected(f"{where}.source", f"expected one of {', '.join(SOURCES)}")
        caller = data.get("caller", {})
        if not isinstance(caller, dict) or not all(isinstance(v, str) for v in caller.values()):
            raise EventRejected(f"{where}.caller", "expected an object of strings")
        deallocated = data.get("deallocated", False)
        if not isinstance(deallocated, bool):
            raise EventRejected(f"{where}.deallocated", f"expected true or false, got {kind_of(deallocated)}")
        return cls(
            source=source,
            resource_id=get_str(data, "resourceId", where),
            resource_type=get_str(data, "resourceType", where, required=False) or "",
            operation=get_str(data, "operation", where, required=False) or "",
            event_type=get_str(data, "eventType", where, required=False) or "",
            event_id=get_str(data, "eventId", where, required=False) or "",
            event_time=get_time(data, "eventTime", where, required=False),
            correlation_id=get_str(data, "correlationId", where, required=False),
            caller=Caller(**{k: caller.get(k) for k in ("upn", "name", "appid", "oid")}),
            deallocated=deallocated,
            key_version=get_str(data, "keyVersion", where, required=False),
            key_expires=get_time(data, "keyExpires", where, required=False),
            reason=get_str(data, "reason", where, required=False),
        )


__all__ = ["SOURCES", "WorkItem"]
