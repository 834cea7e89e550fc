"""The compliance report's history: what the ledger holds for the resources in scope. Read-only, and never fatal.

history = read_history(resource_ids)     # AzureWebJobsStorage, CRYPTWARD_TABLE_PREFIX from the environment
history.problem                          # None, or why the ledger was not read (the report says so)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediations.engine import applier
from remediations.errors import AzureAccessError, SettingsError

if TYPE_CHECKING:
    from remediations.store.ledger import AuditRecord, Pending


@dataclass(frozen=True)
class Done:
    """Something the bot did earlier, from the ledger's audit records."""

    resource_id: str
    policy: str  # a policy id, several joined by ",", or the bot's own (rotation:..., cryptward-worker)
    result: str
    before: Any
    after: Any
    time: datetime
    caller: str

    @property
    def policy_ids(self) -> tuple[str, ...]:
        return tuple(p for p in self.policy.split(",") if p)


@dataclass(frozen=True)
class History:
    """What the ledger holds for the resources in scope. `problem` says why it was not read (None when it was)."""

    records: Mapping[str, tuple[Done, ...]] = field(default_factory=dict)  # by lower-cased resource id
    pending: tuple[Pending, ...] = ()
    problem: str | None = None

    def for_resource(self, resource_id: str) -> tuple[Done, ...]:
        return self.records.get(resource_id.lower(), ())


# Ledger results that say something happened (pending and no-op records are shown by the current state instead).
QUIET = {applier.ALREADY, applier.PENDING_APPROVAL, applier.PENDING_DEALLOCATION, applier.BLOCKED}
NO_LEDGER = (
    "The ledger is not configured (AzureWebJobsStorage is not set), so this report shows the current state only: "
    "changes Cryptward made earlier, and pending changes, are not included."
)


def read_history(resource_ids: Iterable[str], env: Mapping[str, str] | None = None) -> History:
    """The ledger's audit records of these resources and its open pending changes. Never raises: a ledger that is
    not configured or cannot be read gives a `History` whose `problem` says so. Read-only: creates no table."""
    from remediations.store.ledger import PREFIX_SETTING, Ledger, Tables
    from remediations.store.storage import target

    env = os.environ if env is None else env
    try:
        storage = target(env)
        prefix = (env.get(PREFIX_SETTING) or "").strip()
        ledger = Ledger(storage, Tables.with_prefix(prefix) if prefix else Tables())
    except SettingsError as e:
        return History(problem=NO_LEDGER if "is not set" in str(e) else f"The ledger settings are not valid: {e}")
    records: dict[str, tuple[Done, ...]] = {}
    try:
        with ledger:
            pending = tuple(_missing_table_is_empty(ledger.list_pending))
            for rid in resource_ids:
                found = _missing_table_is_empty(ledger.audit_for, rid)
                done = tuple(_done(r) for r in found if r.result not in QUIET)
                if done:
                    records[rid.lower()] = done
    except AzureAccessError as e:
        return History(problem=f"The ledger could not be read ({e.code}): {e.message}. The current state is shown.")
    return History(records=records, pending=pending)


def _missing_table_is_empty(read: Callable[..., Iterable[Any]], *args: Any) -> list[Any]:
    """A ledger table that does not exist yet (the bot never ran) holds nothing."""
    try:
        return list(read(*args))
    except AzureAccessError as e:
        if e.status == 404:
            return []
        raise


def _done(record: AuditRecord) -> Done:
    caller = record.caller
    who = caller.upn or caller.name or caller.appid or ""
    return Done(record.resource_id, record.policy, record.result, record.before, record.after, record.time, who)


__all__ = ["NO_LEDGER", "Done", "History", "read_history"]
