"""Apply a plan: each change through the Azure access module, checked before and verified after; independent changes
written several at once (`engine/dispatch.py`), dependent ones and those on one target in plan order.

    results = apply(plan, azure, scope=scope)

For each change: a change whose dependency was not applied is `blocked`; one needing approval (not in `approved`)
is `pending-approval`; one needing its VM deallocated while the VM runs is `pending-deallocation`; a DELETE, or a
write outside the scope, is `refused`. Otherwise its target is read again and, when `verify` already holds, the
change is `already-compliant` (so a second run writes nothing); else it is written, the result is checked against
`verify` (from the write's final body, or a GET of `operation.read_path`) and it is `applied`, or `failed` with
Azure's error code and message. A change whose `after` would weaken its `before` (turn a protection off, remove a
value) is a bug in a fix, and stops the run: nothing more starts, what is being written finishes (and is logged), and
AssertionError is raised. A change starts only once the changes it depends on have finished, never while another
change on its target runs, and up to `workers` (CRYPTWARD_WRITE_CONCURRENCY) at once; the results come in plan order.

`fresh=True` says the plan was made from reads of this same run: the state it was planned from is then the "read
again" (a key's rotation policy included: the management plane shows it), so nothing is re-read before writing.
Every write is logged on the `cryptward.apply` logger with the resource, policies, before and after; never a token.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from remediations import keyaccess
from remediations.azure import Azure
from remediations.changes import APPROVAL, DEALLOCATED, MODIFY_FIX, Change, Plan
from remediations.engine.dispatch import Stopped, dispatch
from remediations.engine.reader import Scope
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import ROLE_ASSIGNMENTS_API, get, name_of, power_state

log = logging.getLogger("cryptward.apply")


class Status(StrEnum):
    """What happened to one change. A `StrEnum`: its members are their values in JSON, f-strings and the ledger."""

    APPLIED = "applied"
    ALREADY = "already-compliant"
    PENDING_APPROVAL = "pending-approval"
    PENDING_DEALLOCATION = "pending-deallocation"
    BLOCKED = "blocked"
    REFUSED = "refused"
    FAILED = "failed"
    WAITING = "waiting-for-role"  # refused for want of a role granted too lately to be in effect yet: try again


APPLIED = Status.APPLIED
ALREADY = Status.ALREADY
PENDING_APPROVAL = Status.PENDING_APPROVAL
PENDING_DEALLOCATION = Status.PENDING_DEALLOCATION
BLOCKED = Status.BLOCKED
REFUSED = Status.REFUSED
FAILED = Status.FAILED
WAITING = Status.WAITING
STATUSES = tuple(Status)
WRITES = ("PUT", "PATCH", "POST")
# What DiskRP answers when a disk encryption set's identity cannot use its key (compute's KeyVaultAccessForbidden):
# what a role granted within the propagation window still causes (Key Vault's rbac-guide: "up to 10 minutes").
KEY_ACCESS_CODES = ("KeyVaultAccessForbidden",)
_ROLE_ASSIGNMENTS = "/providers/microsoft.authorization/roleassignments/"
DONE = (APPLIED, ALREADY)  # a change that holds: what depends on it may go on


@dataclass(frozen=True)
class Result:
    """What happened to one change. `code` is Azure's error code when it failed."""

    change: Change
    status: Status
    detail: str = ""
    code: str | None = None
    retry_after: float | None = None  # WAITING: seconds left of the role's propagation window

    def to_dict(self) -> dict[str, Any]:
        return {"changeId": self.change.id, "status": self.status, "detail": self.detail, "code": self.code}


def apply(
    plan: Plan,
    azure: Azure,
    *,
    scope: Scope,
    approved: Collection[str] = (),
    fresh: bool = False,
    known: Mapping[str, Mapping[str, Any]] | None = None,
    role_propagation_seconds: float = 0.0,
    workers: int | None = None,
) -> tuple[Result, ...]:
    """Apply `plan`; the results in plan order. `approved`: ids of changes a person approved. `known`: bodies read in
    this run, by id (lower-cased), consulted for a VM's power state when `fresh`. `role_propagation_seconds`: how long
    Azure may take to honour a new role; a write refused for want of key access while its disk encryption set's role
    is younger than that is `waiting-for-role`, not `failed`. `workers`: changes written at once (default
    `azure.write_workers`, CRYPTWARD_WRITE_CONCURRENCY); independent ones only (engine/dispatch.py), each ARM write
    paced by the write budget. Raises AssertionError (a fix's bug: a weakening change) once what was running ends."""
    allowed = set(approved)
    related = known or {}

    def decide(change: Change, done: Mapping[str, Result]) -> Result | None:
        stopped = gate(change, done, scope, allowed)
        if stopped is None:
            _assert_not_weakening(change)
        return stopped

    def write(change: Change, done: Mapping[str, Result]) -> Result:
        result = _one(change, azure, fresh, related)
        if result.code in KEY_ACCESS_CODES and result.status == FAILED:
            result = waiting_for_role(result, done, azure, role_propagation_seconds) or result
        return result

    count = workers if workers is not None else getattr(azure, "write_workers", 1)
    try:
        results = dispatch(plan.changes, decide, write, count)
    except Stopped as e:
        ran = [e.results[c.id] for c in plan.changes if c.id in e.results]
        log.error(
            "cryptward apply stopped: %s; %d change(s) had finished: %s",
            e.cause,
            len(ran),
            ", ".join(f"{r.change.id} {r.status}" for r in ran) or "none",
        )
        if isinstance(e.cause, AssertionError):
            raise AssertionError(f"{e.cause} (the run stopped; {len(ran)} change(s) had finished)") from e.cause
        raise e.cause from None
    return tuple(results[i] for i in dict.fromkeys(c.id for c in plan.changes))


def gate(change: Change, done: Mapping[str, Result], scope: Scope, approved: Collection[str]) -> Result | None:
    """The result a change gets before Azure is asked anything: `blocked` by a dependency not applied,
    `pending-approval`, or `refused` (not a write, or a target outside the scope); None when it may go on."""
    op = change.operation
    waiting = [done[d] for d in change.depends_on if d in done and done[d].status not in DONE]
    if waiting or any(d not in done for d in change.depends_on):
        why = ", ".join(f"{r.change.summary.split(';')[0]} ({r.status})" for r in waiting) or "not in this run"
        return Result(change, BLOCKED, f"waits for: {why}")
    if APPROVAL in change.requires and change.id not in approved:
        return Result(change, PENDING_APPROVAL, "a person must approve this change first")
    if op.method.upper() not in WRITES:
        return Result(change, REFUSED, f"Cryptward never sends {op.method} requests")
    targets = [change.resource_id] + ([op.path] if op.plane == "arm" else [])
    outside = [t for t in targets if not scope.contains(t)]
    if outside:
        return Result(change, REFUSED, f"{outside[0]} is outside the scope {', '.join(scope.prefixes())}")
    return None


def waiting_for_role(
    failed: Result, done: Mapping[str, Result], azure: Azure, window: float, now: datetime | None = None
) -> Result | None:
    """`failed` (refused for want of key access) as `waiting-for-role` when the disk encryption set it relies on got
    its role less than `window` seconds ago: in this run (a dependency that granted one), or as Azure's role
    assignment list says (`createdOn` of the set identity's newest assignment at or above its key). None otherwise,
    or when that cannot be read: then it failed."""
    if window <= 0:
        return None
    change = failed.change
    granted = [done[d] for d in change.depends_on if d in done and done[d].status == APPLIED]
    age: float | None = 0.0
    if not any(_ROLE_ASSIGNMENTS in r.change.operation.path.lower() for r in granted):
        try:
            age = _youngest_role_age(change, azure, now or datetime.now(UTC))
        except (AzureAccessError, KeyError, TypeError, ValueError):
            return None
    if age is None or age >= window:
        return None
    left = window - age
    detail = (
        f"{failed.code}: {failed.detail.rstrip('.')}. The disk encryption set's role was granted {age:.0f} s ago and "
        f"Azure takes up to {window / 60:g} minutes to apply it: tried again within {left:.0f} s."
    )
    return Result(change, WAITING, detail, failed.code, retry_after=left)


def _youngest_role_age(change: Change, azure: Azure, now: datetime) -> float | None:
    """Seconds since the newest role assignment of the key user's identity at or above its key; None: none."""
    des_id = _key_user(change)
    if not des_id:
        return None
    des = azure.get(des_id, aliases.API_VERSIONS[aliases.DES])
    principal = str(get(des, "identity.principalId") or "").lower()
    vault_id = str(get(des, "properties.activeKey.sourceVault.id") or "")
    key_url = str(get(des, "properties.activeKey.keyUrl") or "")
    if not principal or not vault_id or "/keys/" not in key_url:
        return None
    key_scope = f"{vault_id}/keys/{key_url.split('/keys/', 1)[1].split('/')[0]}"
    path = f"{key_scope}/providers/Microsoft.Authorization/roleAssignments"
    created = [
        datetime.fromisoformat(str(get(ra, "properties.createdOn")).replace("Z", "+00:00"))
        for ra in azure.list(path, ROLE_ASSIGNMENTS_API, {"$filter": "atScope()"})
        if str(get(ra, "properties.principalId") or "").lower() == principal and get(ra, "properties.createdOn")
    ]
    return (now - max(created)).total_seconds() if created else None


def _key_user(change: Change) -> str | None:
    """The disk encryption set whose key access a write relies on: the set itself, or the one a disk is given."""
    if "/microsoft.compute/diskencryptionsets/" in change.resource_id.lower():
        return change.resource_id
    des_id = get(change.operation.body, "properties.encryption.diskEncryptionSetId")
    return str(des_id) if des_id else None


def verified(change: Change, body: Any) -> Result:
    """A written change's result from the target's body afterwards: `applied` when `verify` holds, else `failed`."""
    missing = unmet(body, change.verify)
    if missing:
        return Result(change, FAILED, f"written, but {missing} does not hold afterwards", "VerificationFailed")
    return Result(change, APPLIED, "written and verified")


def _one(change: Change, azure: Azure, fresh: bool, known: Mapping[str, Mapping[str, Any]]) -> Result:
    """A change `gate` let through: read again (unless `fresh`), written, verified."""
    op = change.operation
    try:
        if DEALLOCATED in change.requires:
            running = _running_vm(change, azure, fresh, known)
            if running:
                return Result(change, PENDING_DEALLOCATION, f"VM {name_of(running)} is running; deallocate it first")
        if not fresh:
            current = _read(azure, change, op.read_path or op.path)
            if current is not None and holds(current, change.verify):
                return Result(change, ALREADY, "already holds: nothing written")
        body = _write(azure, change)
    except AzureAccessError as e:
        log.warning("cryptward write failed %s %s: %s", op.method, change.resource_id, e.code)
        return Result(change, FAILED, e.message, e.code)
    return verified(change, body)


def _write(azure: Azure, change: Change) -> Any:
    """Send the change's write, logged; the target's body afterwards (read again when the write returns none)."""
    op = change.operation
    log.info(
        "cryptward write %s %s",
        op.method,
        change.resource_id,
        extra={
            "cryptward": {
                "resource": change.resource_id,
                "policies": list(change.policy_ids),
                "method": op.method,
                "target": op.path,
                "before": dict(change.before),
                "after": dict(change.after),
            }
        },
    )
    if op.plane == "keyvault":
        body = azure.keyvault_request(op.method, op.path, op.api_version, dict(op.body))
    else:
        body = azure.write(op.method, op.path, op.api_version, dict(op.body))
    if body is None or (op.read_path and op.read_path.lower() != op.path.lower()):
        body = _read(azure, change, op.read_path or op.path)
    return body


def _read(azure: Azure, change: Change, path: str) -> Any:
    """The target's current body; None when it does not exist (404)."""
    op = change.operation
    try:
        if op.plane == "keyvault":
            return azure.keyvault_request("GET", path, op.api_version)
        return azure.get(path, op.api_version)
    except AzureAccessError as e:
        if e.absent:
            return None
        raise


def _running_vm(change: Change, azure: Azure, fresh: bool, known: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The id of the VM this change waits for when it is not deallocated; None when it is (or there is none)."""
    rid = change.resource_id
    if rid.lower().split("/providers/")[-1].startswith("microsoft.compute/disks/"):
        disk = known.get(rid.lower()) if fresh else None
        if disk is None:
            disk = azure.get(rid, aliases.API_VERSIONS[aliases.DISK])
        vm_id = str(disk.get("managedBy") or "")
    else:
        vm_id = rid
    if not vm_id:
        return None
    vm = known.get(vm_id.lower()) if fresh else None
    state = power_state(vm) if vm else None
    if state is None:
        view = azure.get(f"{vm_id}/instanceView", aliases.API_VERSIONS[aliases.VM])
        state = power_state({"properties": {"instanceView": view}})
    return None if state == "deallocated" else vm_id


# --- verify ----------------------------------------------------------------------------------------------------------


def _select(body: Any, dotted: str) -> Any:
    """Follow `a.b[name=value].c` into `body`; None when absent."""
    for part in dotted.split("."):
        key, _, selector = part.partition("[")
        body = get(body, key) if key else body
        if selector:
            field, _, wanted = selector.rstrip("]").partition("=")
            items = body if isinstance(body, list) else []
            body = next((i for i in items if str(get(i, field) or "").lower() == wanted.lower()), None)
        if body is None:
            return None
    return body


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(_same(a, e) for a in actual) for e in expected)
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(_same(get(actual, k), v) for k, v in expected.items())
    if keyaccess.is_role_definition_id(expected) and isinstance(actual, str):
        return keyaccess.same_role(actual, expected)  # ARM answers another form of the id than the one sent
    if isinstance(expected, str) and isinstance(actual, str):
        return actual.lower() == expected.lower()  # ARM ids and enum values compare without case
    return bool(actual == expected and type(actual) is type(expected))


def unmet(body: Any, verify: Mapping[str, Any]) -> str | None:
    """The first `verify` entry `body` does not satisfy, as `path = actual`; None when all hold."""
    for path, expected in verify.items():
        actual = _select(body, path)
        if not _same(actual, expected):
            return f"{path} = {actual!r} (expected {expected!r})"
    return None


def holds(body: Any, verify: Mapping[str, Any]) -> bool:
    return unmet(body, verify) is None


# A disk's or snapshot's `encryption.type`, weakest first (DiskRP's EncryptionType in the disk spec and the SDK's enum:
# PlatformAndCustomerKeys "is encrypted at rest with 2 layers of encryption. One of the keys is Customer managed and
# the other key is Platform managed").
ENCRYPTION_STRENGTH = {
    "encryptionatrestwithplatformkey": 0,
    "encryptionatrestwithcustomerkey": 1,
    "encryptionatrestwithplatformandcustomerkeys": 2,
}


def _weaker_encryption(path: str, before: Any, after: Any) -> bool:
    """An `encryption.type` moved to a weaker one (double encryption to one key, a customer key to the platform's)."""
    if not path.endswith("encryption.type") or not isinstance(before, str) or not isinstance(after, str):
        return False
    was, now = ENCRYPTION_STRENGTH.get(before.lower()), ENCRYPTION_STRENGTH.get(after.lower())
    return was is not None and (now is None or now < was)


def _assert_not_weakening(change: Change) -> None:
    """A fix only adds protection: no True turned False, no value removed, no encryption type made weaker. Anything
    else is a bug in the fix. The one removal allowed is a tag by a Modify policy's `remove` (Learn, Modify effect:
    "only tags can be removed")."""
    for path, before in change.before.items():
        after = change.after.get(path, before)
        if after is None and path.startswith("properties.tags.") and MODIFY_FIX in change.fixes:
            continue
        weaker = (before is True and after is not True) or (before is not None and after is None)
        if weaker or _weaker_encryption(path, before, after):
            raise AssertionError(f"change {change.id} ({change.fixes}) would weaken {path}: {before!r} -> {after!r}")


__all__ = ["DONE", "STATUSES", "Result", "Status", "apply", "gate", "holds", "unmet", "verified", "waiting_for_role"]
