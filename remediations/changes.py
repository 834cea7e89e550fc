"""What planning produces, and what it is given. Pure data: no I/O.

    change = Change(resource_id, summary, Operation("PATCH", vault_id, "2026-05-15", body), before, after)
    plan = Plan(changes=(change,), skipped=(Skip(...),))
    plan.to_dict()                      # JSON for the CLI, the ledger and the change notice

A `Change` is one ARM (or Key Vault data-plane) write the applier executes as given, then re-reads (a GET of
`operation.read_path`, by default the path it wrote) to check `verify`. `before`, `after` and `verify` use dotted
paths into the body of that resource (`properties.enablePurgeProtection`); `[name=value]` picks the member of a list
whose `name` equals `value` (`properties.accessPolicies[objectId=...].permissions.keys`), and a list in `verify`
holds when each of its items is present.

`PlanContext` carries everything a fix may consult that is not the finding's own resource: related resources read
by the engine, the caller that triggered the event, the operator's settings, and the time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# "Role assignments latency: at current expected performance, it will take up to 10 minutes (600 seconds) after role
# assignments is changed for role to be applied" (Microsoft Learn, "Provide access to Key Vault keys, certificates,
# and secrets with Azure role-based access control", https://learn.microsoft.com/azure/key-vault/general/rbac-guide;
# wording as quoted by third parties, the page itself was not read here). The one window everything waiting for a
# new role assignment uses.
ROLE_PROPAGATION = timedelta(minutes=10)

APPROVAL = "approval"
DEALLOCATED = "deallocated"
REQUIREMENTS = (APPROVAL, DEALLOCATED)
MODIFY_FIX = "azure-policy-modify"  # the fix name of changes that run an Azure Policy Modify effect's operations


class SkipReason(StrEnum):
    """Why a finding produced no change. `Skip.reason` is one of these; `Skip.detail` says it in a sentence."""

    EXEMPT = "exempt"  # the resource's exemption tag exempts it from the policy
    AUDIT_ONLY = "audit-only"  # the policy has no fix, or runs in audit mode
    IMMUTABLE = "immutable"  # the property cannot be changed after creation
    ADE_HISTORY = "ade-history"  # the disk or VM is, or was, encrypted with Azure Disk Encryption
    UNSUPPORTED = "unsupported"  # the VM series (or similar) does not support the fix
    NOT_CONFIGURED = "not-configured"  # a setting the fix needs (workspace, disk encryption set) is not configured
    NO_CALLER = "no-caller"  # the triggering caller is unknown, so no owner can be named
    CANNOT_READ = "cannot-read"  # the resource, or something the fix needs to read, could not be read
    BLOCKED = "blocked"  # the change needs another change that this plan does not make
    WEAKENING = "weakening"  # a Modify operation would weaken a setting, or Cryptward cannot show it would not
    CONFLICT = "conflict"  # a Modify operation cannot be applied (its conflictEffect: reported, not run)


SKIP_REASONS = tuple(SkipReason)


@dataclass(frozen=True, slots=True)
class Operation:
    """One write. `path` is relative to ARM (`/subscriptions/...`) or, for `plane="keyvault"`, a data-plane URL."""

    method: str  # PUT | PATCH | POST
    path: str
    api_version: str
    body: Mapping[str, Any]
    plane: str = "arm"  # arm | keyvault
    read_path: str | None = None  # what to GET to verify, when the written path cannot be read back

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "apiVersion": self.api_version,
            "plane": self.plane,
            "body": self.body,
            "readPath": self.read_path or self.path,
        }


@dataclass(frozen=True, slots=True)
class Ref:
    """'The change fix `fix` makes on `resource_id`': a dependency the planner resolves to a change id.

    `required`: without that change this one cannot succeed, so it is blocked when the plan does not make it.
    Otherwise the reference only orders the two when both are planned."""

    resource_id: str
    fix: str
    required: bool = True


def change_id(resource_id: str, policy_ids: tuple[str, ...], operation: Operation) -> str:
    """Stable id: the same resource, policies and operation target give the same id in every run."""
    text = "|".join([resource_id.lower(), ",".join(policy_ids), operation.method, operation.path.lower()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Change:
    """One planned write, with what it changes and what must hold afterwards."""

    resource_id: str  # the resource the finding is about (the operation may target a sub-resource of it)
    summary: str  # one sentence for a person
    operation: Operation
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    verify: Mapping[str, Any] = field(default_factory=dict)  # empty: the same as `after`
    irreversible: bool = False
    disruptive: bool = False
    requires: tuple[str, ...] = ()  # of REQUIREMENTS, in that order
    depends_on: tuple[str, ...] = ()  # ids of changes that must be applied first
    needs: tuple[Ref, ...] = ()  # set by fixes; the planner turns them into depends_on
    policy_ids: tuple[str, ...] = ()  # set by the planner
    fixes: tuple[str, ...] = ()  # set by the planner
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", change_id(self.resource_id, self.policy_ids, self.operation))
        if not self.verify:  # the same as `after`: shared, not copied (neither is ever written to)
            object.__setattr__(self, "verify", self.after)

    @property
    def policy_id(self) -> str:
        return self.policy_ids[0] if self.policy_ids else ""

    @property
    def fix(self) -> str:
        return self.fixes[0] if self.fixes else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resourceId": self.resource_id,
            "policyIds": list(self.policy_ids),
            "fixes": list(self.fixes),
            "summary": self.summary,
            "operation": self.operation.to_dict(),
            "before": dict(self.before),
            "after": dict(self.after),
            "verify": dict(self.verify),
            "irreversible": self.irreversible,
            "disruptive": self.disruptive,
            "requires": list(self.requires),
            "dependsOn": list(self.depends_on),
        }


@dataclass(frozen=True, slots=True)
class Skip:
    """A finding that produced no change, and why (`reason` is a SkipReason)."""

    resource_id: str
    policy_id: str
    reason: str
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "policyId": self.policy_id,
            "reason": self.reason,
            "detail": self.detail,
        }


Rows = Callable[[Sequence[Any], Callable[[Any], dict[str, Any]]], list[dict[str, Any]]]


def _now(items: Sequence[Any], to_dict: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    return [to_dict(i) for i in items]


@dataclass(frozen=True)
class Plan:
    """Changes in the order to apply them, the findings left alone, and notes (e.g. unusable exemption tags)."""

    changes: tuple[Change, ...] = ()
    skipped: Sequence[Skip] = ()  # a tuple, or a scan's spooled list (engine/spool.py): iterate it, do not index it
    notes: tuple[str, ...] = ()

    def to_dict(self, rows: Rows | None = None) -> dict[str, Any]:
        """`rows(items, to_dict)` makes each list (default: a list made now; the CLI's JSON writer passes one that
        makes each row as it is written, so a large plan is not held twice)."""
        each = rows or _now
        return {
            "changes": each(self.changes, Change.to_dict),
            "skipped": each(self.skipped, Skip.to_dict),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Caller:
    """Who made a change: from an event's token claims (Event Grid, activity-log alert), or ARM's `systemData` in a
    sweep. Only these four identifiers are kept, nothing else of the claims."""

    upn: str | None = None
    name: str | None = None
    appid: str | None = None
    oid: str | None = None

    @property
    def owner(self) -> str | None:
        """The best name to record as an owner: a user principal name, else a display name, else an app id."""
        return self.upn or self.name or self.appid


@dataclass(frozen=True)
class PlanSettings:
    """The operator's choices. `disk_encryption_sets` maps a subscription, a region, then an encryption type, to a DES
    id (or, for one subscription, a region then a type: remediations/desmap.py)."""

    workspace_id: str | None = None  # Log Analytics workspace for key vault diagnostic settings
    alert_action_group: str | None = None  # action group the key vault activity-log alerts Cryptward adds notify
    disk_encryption_sets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    lock_name: str = "cryptward-cannot-delete"
    diagnostic_setting_name: str = "cryptward"
    exemption_tag: str = "cryptward-exempt"
    # Which disk encryption sets may be given access to which key vaults' keys without their owners: vault scope (a
    # vault, its resource group or subscription) -> scopes of the sets that may use its keys. A set and a vault in
    # the same resource group need no entry.
    key_access_allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # How long Azure may take to honour a new role assignment (CRYPTWARD_ROLE_PROPAGATION_SECONDS): "up to 10
    # minutes (600 seconds)" for Key Vault (Microsoft Learn, Key Vault rbac-guide, "Known limits and performance").
    # A change needing a role this young waits (applier's waiting-for-role) instead of failing; the one window every
    # fix and the worker use.
    role_propagation_seconds: float = ROLE_PROPAGATION.total_seconds()

    @property
    def role_propagation(self) -> timedelta:
        """`role_propagation_seconds` as a duration."""
        return timedelta(seconds=self.role_propagation_seconds)

    def key_access_allowed(self, des_id: str, vault_id: str) -> bool:
        """Whether the operator lets the set `des_id` be granted use of keys in `vault_id`."""
        des, vault = des_id.lower(), vault_id.lower()

        def within(rid: str, scope: str) -> bool:
            scope = scope.lower().rstrip("/")
            return rid == scope or rid.startswith(scope + "/")

        return any(
            within(vault, vaults) and any(within(des, sets) for sets in users)
            for vaults, users in self.key_access_allow.items()
        )

    def disk_encryption_set(self, region: str, encryption_type: str, subscription: str = "") -> str | None:
        """The set for a disk of `subscription` in `region` (remediations/desmap.py), or None."""
        from remediations import desmap

        return desmap.lookup(self.disk_encryption_sets, subscription, region, encryption_type)


def _lowered(ctx: Any, name: str) -> Mapping[str, Any]:
    """`ctx.<name>` keyed by lower-cased id (the first of ids differing only in case), made once per context and
    again if the mapping grew: a miss costs one dict lookup, not a scan of every resource read (which made
    planning grow faster than the estate)."""
    source: Mapping[str, Any] = getattr(ctx, name)
    cache: dict[str, tuple[int, dict[str, Any]]] = ctx.__dict__.setdefault("_lowered", {})
    size, index = cache.get(name, (-1, {}))
    if size != len(source):
        index = {}
        for k, v in source.items():
            index.setdefault(k.lower(), v)
        cache[name] = (len(source), index)
    return index


@dataclass(frozen=True)
class PlanContext:
    """What was read besides the finding's resource, and when. `resources` holds ARM GET bodies by id."""

    now: datetime
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    caller: Caller | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    policy_ids: tuple[str, ...] = ()  # every loaded policy, to report exemption tags naming unknown ones
    # A sweep has no triggering event: the engine names, per resource, who last changed it (ARM systemData).
    callers: Mapping[str, Caller] = field(default_factory=dict)
    # Prices read for the notices that quote one (remediations/engine/prices.py): (fix name, lower-case region) -> the
    # Retail Prices API's row (remediations.azure.Quote.as_dict()) or why there is none.
    prices: Mapping[tuple[str, str], Mapping[str, Any] | str] = field(default_factory=dict)

    def caller_for(self, resource_id: str) -> Caller | None:
        """Who changed this resource: the event's caller, else the one the engine found for it, else None."""
        if self.caller is not None:
            return self.caller
        found = self.callers.get(resource_id)
        if found is not None:
            return found
        return _lowered(self, "callers").get(resource_id.lower())

    def related(self, resource_id: str | None) -> Mapping[str, Any] | None:
        """The related resource with this id (ids compare case-insensitively, as in ARM)."""
        if not resource_id:
            return None
        found = self.resources.get(resource_id)
        if found is None:
            found = self.resources.get(resource_id.lower())  # the reader keys them by lower-cased id
        if found is None:
            found = _lowered(self, "resources").get(resource_id.lower())
        return found

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PlanContext:
        """Build from JSON: `{now, caller: {upn, name, appid}, settings: {...}, resources: [ARM bodies]}`."""
        caller = doc.get("caller")
        settings = doc.get("settings") or {}
        return cls(
            now=datetime.fromisoformat(str(doc["now"]).replace("Z", "+00:00")),
            resources={r["id"]: r for r in doc.get("resources") or []},
            caller=Caller(caller.get("upn"), caller.get("name"), caller.get("appid")) if caller else None,
            settings=PlanSettings(
                workspace_id=settings.get("workspaceId"),
                alert_action_group=settings.get("alertActionGroup"),
                disk_encryption_sets=settings.get("diskEncryptionSets") or {},
                key_access_allow={k: tuple(v) for k, v in (settings.get("keyAccessAllow") or {}).items()},
                **{k: settings[c] for k, c in _NAMES.items() if c in settings},
            ),
        )


_NAMES = {"lock_name": "lockName", "diagnostic_setting_name": "diagnosticSettingName", "exemption_tag": "exemptionTag"}
