"""The worker behind the queue trigger: one work item, one resource, read -> evaluate -> plan -> apply -> ledger.

    outcomes = handle_message(body, dequeue_count=1, message_id="...")  # what the queue trigger calls
    outcome = handle(message_body, dequeue_count=1, message_id="...")   # one work item

- A message holds one work item, or a sweep's pack of them (workqueue.PACK_ITEMS). A pack's items are worked one
  after another; an item that fails goes back to the queue as a message of its own (its retries and its poisoning
  are its own, and the ledger says why), and the others go on. What is left after PACK_BUDGET_SECONDS goes back as a
  new pack, so that a pack ends well within the function timeout.

- A change (event, alert, sweep): `engine.scan(..., resource_id=..., apply=True)` with the event's caller. Every
  result is an audit record in the ledger; a change waiting for approval or for its VM's deallocation is a pending
  entry (with the VM it waits for).
- A VM deallocation: the VM and every resource with a change waiting for that VM are worked again.
- A Key Vault event: `rotation.on_key_event`; a rotation item (from the rotation timer): each key of the vault.
- Per resource, a work lock (a ledger claim for CRYPTWARD_WORK_LOCK_SECONDS, given back when done) keeps two
  workers from applying the same change; a worker that finds the lock taken queues the work again a little later.
- Fights: a resource fixed CRYPTWARD_FIGHT_THRESHOLD times within CRYPTWARD_FIGHT_WINDOW_SECONDS is no longer fixed:
  the plan is recorded as `escalated` and a person is told (through the notices when routes are configured).
- Waiting for a role: a change Azure refused for want of key access while the role it needs is younger than
  CRYPTWARD_ROLE_PROPAGATION_SECONDS (applier's `waiting-for-role`) is no failure: no notice, no queue retry spent;
  the item is queued again (`role_retry_delay`: a quarter of the window at a time, the last just after it ends).
  After the window, a change still refused fails as any other.
- Failures: a change that failed (throttled after azure-core's own retries, a 5xx, a reset) or a resource that
  could not be read raises `WorkFailed` after the ledger has the reason, so the queue retries after its visibility
  timeout (never a tight loop); after host.json's maxDequeueCount the host moves the message to `<queue>-poison`,
  and the ledger's last record for the resource (`poisoned`) says why.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from remediations.engine import applier
from remediations.errors import CryptwardError
from remediations.runtime import Runtime, current
from remediations.triggers.events import KEY_EVENTS
from remediations.work import WorkItem

if TYPE_CHECKING:
    from remediations.changes import Caller
    from remediations.engine.reader import Scope
    from remediations.engine.run import Report
    from remediations.store.ledger import Ledger

log = logging.getLogger("cryptward.worker")

BUSY_RETRY_SECONDS = 2
ROLE_RETRY_STEPS = 4  # tries within a role's propagation window (CRYPTWARD_ROLE_PROPAGATION_SECONDS)
ROLE_RETRY_MARGIN_SECONDS = 5.0  # the last try comes this long after the window ends
PACK_BUDGET_SECONDS = 120.0  # host.json's functionTimeout is 5 minutes; a pack's remainder is queued again after this
WORKER_POLICY = "cryptward-worker"  # the ledger's policy name for records about the work itself
DONE_STATUSES = applier.DONE


class OutcomeStatus(StrEnum):
    """What one work item came to."""

    DONE = "done"
    ESCALATED = "escalated"
    BUSY = "busy"
    SKIPPED = "skipped"
    ROTATED = "rotated"


class WorkFailed(CryptwardError):
    """The work for a resource did not finish (a failed change, an unreadable resource): retry it later."""


@dataclass
class Outcome:
    """What one work item did, for logs and tests."""

    resource_id: str
    status: OutcomeStatus
    applied: int = 0
    pending: int = 0
    failed: list[str] = field(default_factory=list)
    results: dict[str, tuple[str, str]] = field(default_factory=dict)  # change id -> (status, detail)
    waiting: float | None = None  # seconds left of the shortest role propagation window a change waits for


def handle_message(
    body: bytes | str, dequeue_count: int = 1, message_id: str | None = None, rt: Runtime | None = None
) -> list[Outcome]:
    """Work one queue message: a work item (as `handle`) or a pack of them. For a pack, an item that fails is queued
    again as a message of its own and the rest go on; it raises only when that queueing fails (the pack is then
    retried whole: work already done is found done)."""
    from remediations.store.workqueue import unpack

    items, packed = unpack(body)
    rt = rt or current()
    mid = message_id or (items[0].event_id if not packed else "") or uuid.uuid4().hex
    if not packed:
        return [_handle(rt, items[0], dequeue_count, mid)]
    started = time.monotonic()
    outcomes: list[Outcome] = []
    for i, item in enumerate(items):
        if i and time.monotonic() - started > PACK_BUDGET_SECONDS:  # at least one item per try: progress
            rest = items[i:]
            log.info("pack %s: %d item(s) left after %.0f s, queued again", mid, len(rest), PACK_BUDGET_SECONDS)
            rt.enqueue_pack(rest)
            break
        try:
            outcomes.append(_handle(rt, item, 1, f"{mid}:{i}"))
        except Exception:  # recorded in the ledger by _handle; retried on its own, poisoned on its own
            rt.enqueue(item, rt.settings.intake.retry_seconds)
    return outcomes


def handle(
    body: bytes | str, dequeue_count: int = 1, message_id: str | None = None, rt: Runtime | None = None
) -> Outcome:
    """Work one queued item. Raises (EventRejected for a malformed message, WorkFailed or AzureAccessError for work
    to retry) so that the queue retries it; the reason of the last attempt is in the ledger."""
    item = WorkItem.from_json(body)
    return _handle(rt or current(), item, dequeue_count, message_id or item.event_id or uuid.uuid4().hex)


def _handle(rt: Runtime, item: WorkItem, dequeue_count: int, message_id: str) -> Outcome:
    try:
        return _dispatch(rt, item, message_id)
    except Exception as e:
        last = dequeue_count >= rt.settings.intake.max_dequeue_count
        reason = f"{type(e).__name__}: {e}"[:2000]
        log.warning("work for %s failed (attempt %d): %s", item.resource_id, dequeue_count, reason)
        try:
            rt.ledger.record_change(
                item.resource_id,
                policy=WORKER_POLICY,
                before=None,
                after={"error": reason, "attempt": dequeue_count, "item": item.to_json()},
                caller=item.caller,
                correlation_id=item.correlation_id,
                result="poisoned" if last else "retrying",
            )
        except Exception:  # the ledger itself is down: the queue still retries
            log.exception("could not record the failure of %s", item.resource_id)
        raise


def _dispatch(rt: Runtime, item: WorkItem, message_id: str) -> Outcome:
    if item.source == "rotation":
        return _rotation(rt, item)
    if item.event_type in KEY_EVENTS:
        return _key_event(rt, item)
    if item.deallocated:
        return _deallocated(rt, item, message_id)
    return fix(rt, item, item.resource_id, message_id)


def fix(
    rt: Runtime,
    item: WorkItem,
    resource_id: str,
    message_id: str,
    approved: Collection[str] = (),
    only: Collection[str] | None = None,
) -> Outcome:
    """Read, evaluate, plan and apply for one resource under its work lock. The changes a person approved (the
    ledger's, and `approved`) are applied too; with `only`, nothing but the changes with those ids is applied."""
    scope = rt.settings.intake.scope_of(resource_id)
    if scope is None:
        return Outcome(resource_id, OutcomeStatus.SKIPPED)
    ledger = rt.ledger
    key = "work:" + resource_id.lower()
    locked_at = datetime.now(UTC)
    if not ledger.claim(key, rt.settings.intake.work_lock_seconds, locked_at):
        # Another worker is on this resource and may have read it before this change: look again once it is done
        # (a fresh message, not a retry), once per resource however many workers found it busy meanwhile.
        if ledger.claim("again:" + resource_id.lower(), BUSY_RETRY_SECONDS):
            rt.enqueue(_again(item, resource_id), BUSY_RETRY_SECONDS)
        return Outcome(resource_id, OutcomeStatus.BUSY)
    try:
        return _fix_locked(rt, item, resource_id, scope, message_id, approved, only)
    finally:
        ledger.release(key, locked_at)


def _gone(rt: Runtime, item: WorkItem, resource_id: str) -> Outcome:
    """A resource Azure says does not exist (deleted since, or never there: a forged alert): recorded once, done."""
    rt.ledger.record_change(
        resource_id,
        policy=WORKER_POLICY,
        before=None,
        after={"reason": "Azure answered 404: the resource does not exist", "source": item.source},
        caller=item.caller,
        correlation_id=item.correlation_id,
        result="not-found",
    )
    return Outcome(resource_id, OutcomeStatus.SKIPPED)


def _again(item: WorkItem, resource_id: str) -> WorkItem:
    from dataclasses import replace

    return replace(item, resource_id=resource_id, deallocated=False)


def _fix_locked(
    rt: Runtime,
    item: WorkItem,
    resource_id: str,
    scope: Scope,
    message_id: str,
    approved: Collection[str],
    only: Collection[str] | None = None,
) -> Outcome:
    from remediations.engine.run import scan

    for hook in rt.on_fix:
        hook(resource_id)
    settings = rt.settings
    ledger = rt.ledger
    s = settings.intake
    caller = _caller(item)
    fighting = ledger.is_fighting(resource_id, s.fight_threshold, s.fight_window_seconds)
    approved = {*approved, *ledger.decided_for(resource_id, "approved")}
    report = scan(
        scope,
        rt.policies,
        apply=not fighting,
        settings=settings,
        azure=rt.azure,
        resource_id=resource_id,
        caller=caller,
        approved=approved,
        only=only,
    )
    if resource_id.lower() in report.gone:  # one outcome, not retries and a poison message (nor a notice)
        return _gone(rt, item, resource_id)
    if fighting:
        return _escalate(rt, item, resource_id, report)
    outcome = record(ledger, report, resource_id, item.caller, item.correlation_id)
    _resolve_done(rt, report)
    if outcome.applied and ledger.claim(f"fix:{resource_id.lower()}:{message_id}", s.fight_window_seconds):
        ledger.note_fix(resource_id, window_seconds=s.fight_window_seconds)  # once per work item, retries included
    _notify(rt, report, item, silenced=ledger.decided_for(resource_id, "denied"))
    unreadable = sorted({why for f in report.findings if (why := f.unreadable or f.fix_unreadable)})
    if outcome.failed or unreadable:
        raise WorkFailed("; ".join([*outcome.failed, *unreadable])[:2000])
    if outcome.waiting is not None:  # not a failure: a fresh message after a delay, no queue retry spent
        delay = role_retry_delay(outcome.waiting, settings.plan.role_propagation_seconds)
        log.info("work for %s waits for a new role to take effect: again in %.0f s", resource_id, delay)
        rt.enqueue(_again(item, resource_id), delay)
    return outcome


def _caller(item: WorkItem) -> Caller | None:
    """The event's caller (a sweep has none: the engine names who ARM says last modified the resource)."""
    if item.source == "sweep" or not any(vars(item.caller).values()):
        return None
    return item.caller


def _vm_of(report: Report, resource_id: str) -> str | None:
    """The VM a disk change waits for (the disk's `managedBy`), or the VM itself."""
    for finding in report.findings:
        body = finding.resource
        if str(body.get("id", "")).lower() == resource_id.lower():
            if "/virtualmachines/" in resource_id.lower():
                return resource_id
            managed = body.get("managedBy")
            return str(managed) if managed else None
    return None


def record(
    ledger: Ledger, report: Report, resource_id: str, caller: Caller | None = None, correlation_id: str | None = None
) -> Outcome:
    """One audit record per change of the run, and a pending entry per change waiting for an approval or for its VM's
    deallocation; returns what the run did."""
    outcome = Outcome(resource_id, OutcomeStatus.DONE)
    for result in report.results:
        change = result.change
        ledger.record_change(
            change.resource_id,
            policy=",".join(change.policy_ids),
            before=dict(change.before),
            after=dict(change.after),
            caller=caller,
            correlation_id=correlation_id,
            result=result.status,
            change_id=change.id,
        )
        outcome.results[change.id] = (result.status, result.detail)
        if result.status == applier.APPLIED:
            outcome.applied += 1
        elif result.status in (applier.PENDING_APPROVAL, applier.PENDING_DEALLOCATION):
            outcome.pending += 1
            kind = "approval" if result.status == applier.PENDING_APPROVAL else "deallocated"
            detail: dict[str, object] = {
                "changeId": change.id,
                "summary": change.summary,
                "vm": _vm_of(report, change.resource_id),
            }
            if change.irreversible:
                detail["irreversible"] = True
            ledger.add_pending(kind, change.resource_id, change.policy_id, detail)
        elif result.status == applier.FAILED:
            outcome.failed.append(f"{change.policy_id}: {result.code} {result.detail}"[:500])
        elif result.status == applier.WAITING:
            left = result.retry_after or 0.0
            outcome.waiting = left if outcome.waiting is None else min(outcome.waiting, left)
    return outcome


def role_retry_delay(left: float, window: float) -> float:
    """When to try a change waiting for a role again: every quarter of the propagation window (a role often takes
    effect sooner), and last just after the window ends, when the applier no longer calls it waiting."""
    step = max(window / ROLE_RETRY_STEPS, 1.0)
    return min(max(left, 0.0) + ROLE_RETRY_MARGIN_SECONDS, step)


def _resolve_done(rt: Runtime, report: Report) -> None:
    """Close the pending entries of changes this run applied (or found already in place)."""
    done = {(r.change.resource_id.lower(), r.change.policy_id) for r in report.results if r.status in DONE_STATUSES}
    if not done:
        return
    from remediations.store.ledger import key_of

    for resource_id in {rid for rid, _ in done}:  # this run's resources' entries, not the whole table's
        for pending in rt.ledger.list_pending(resource_id=resource_id):  # for a deallocation, or approved
            if (pending.resource_id.lower(), pending.policy) in done:
                rt.ledger.resolve_pending(
                    pending.kind, key_of(f"{pending.resource_id}\n{pending.policy}"), applier.APPLIED
                )


def _deallocated(rt: Runtime, item: WorkItem, message_id: str) -> Outcome:
    """A VM was deallocated: work the VM and every resource with a change waiting for it."""
    waiting = []
    for pending in rt.ledger.list_pending("deallocated"):
        vm = pending.detail.get("vm") if isinstance(pending.detail, dict) else None
        if str(vm or "").lower() == item.key and pending.resource_id.lower() != item.key:
            waiting.append(pending.resource_id)
    outcome = fix(rt, item, item.resource_id, message_id)
    errors = []
    for resource_id in dict.fromkeys(waiting):
        try:
            sub = fix(rt, item, resource_id, message_id)
        except WorkFailed as e:
            errors.append(str(e))
            continue
        outcome.applied += sub.applied
        outcome.pending += sub.pending
    if errors:
        raise WorkFailed("; ".join(errors)[:2000])
    return outcome


def _escalate(rt: Runtime, item: WorkItem, resource_id: str, report: Report) -> Outcome:
    s = rt.settings.intake
    reason = (
        f"Fixed {s.fight_threshold} times within {s.fight_window_seconds:g} s and undone each time: Cryptward stops "
        "fixing it automatically until a person looks."
    )
    log.warning("fight over %s: escalated, not fixed (%d change(s) left alone)", resource_id, len(report.plan.changes))
    rt.ledger.record_change(
        resource_id,
        policy=WORKER_POLICY,
        before=None,
        after={"escalation": reason, "changes": [c.summary for c in report.plan.changes]},
        caller=item.caller,
        correlation_id=item.correlation_id,
        result=OutcomeStatus.ESCALATED,
    )
    _notify(rt, report, item, {resource_id: reason})
    return Outcome(resource_id, OutcomeStatus.ESCALATED)


def _notify(
    rt: Runtime,
    report: Report,
    item: WorkItem,
    escalations: dict[str, str] | None = None,
    silenced: Collection[str] = (),
) -> None:
    """Tell the owners through the notices, when routes are configured; a notice that fails is kept in the outbox
    table for the notices timer. Never raises: a notice never blocks a fix."""
    settings = rt.settings
    if not settings.notices.enabled:
        return
    try:
        from remediations.notices import compose as notices
        from remediations.notices import outbox

        built = notices.build(
            report,
            run_id=item.event_id or uuid.uuid4().hex,
            caller=_caller(item),
            owner_tag=settings.owner_tag,
            tenant_id=settings.notices.tenant_id,
            escalations=escalations,
            approval=notices.ApprovalLinks.from_settings(settings),
            silenced=silenced,
        )
        if built:
            outbox.notify(built, settings.notices.routes, rt.sender, rt.notices)
    except Exception:
        log.exception("notices for %s could not be sent", item.resource_id)


def retry_notices(now: datetime | None = None, rt: Runtime | None = None) -> int:
    """The notices timer: send again the kept notices whose time has come; returns how many were delivered."""
    from remediations.notices import outbox

    rt = rt or current()
    return sum(1 for d in outbox.retry_due(rt.notices, rt.sender, now) if d.ok)


def _rotation(rt: Runtime, item: WorkItem) -> Outcome:
    """A rotation work item for one vault: every key of it, by the rotation module's rules."""
    from remediations.policy import aliases

    keys = [str(k["id"]) for k in rt.azure.list(f"{item.resource_id}/keys", aliases.API_VERSIONS[aliases.VAULT])]
    outcome = Outcome(item.resource_id, OutcomeStatus.ROTATED)
    for key_id in keys:
        _on_key(rt, "Microsoft.KeyVault.KeyNearExpiry", key_id, outcome)
    return outcome


def _key_event(rt: Runtime, item: WorkItem) -> Outcome:
    outcome = Outcome(item.resource_id, OutcomeStatus.ROTATED)
    _on_key(rt, item.event_type, item.resource_id, outcome)
    return outcome


def _on_key(rt: Runtime, event_type: str, key_id: str, outcome: Outcome) -> None:
    try:
        from remediations.rotation.run import on_key_event
    except ImportError:  # rotation not shipped in this build
        log.info("rotation is not available: %s for %s acknowledged", event_type, key_id)
        return
    scope = rt.settings.intake.scope_of(key_id) if key_id.startswith("/") else None
    if scope is None and key_id.startswith("/"):
        log.info("key %s is outside CRYPTWARD_SCOPES: %s not acted on", key_id, event_type)
        return
    report = on_key_event(
        event_type,
        key_id,
        azure=rt.azure,
        settings=rt.settings,
        now=datetime.now(UTC),
        policies=rt.policies,
        ledger=rt.ledger,
        scope=scope,
    )
    for result in report.results:
        rt.ledger.record_change(
            result.resource_id,
            policy=f"rotation:{result.action}",
            before=None,
            after={"status": result.status, "reason": result.reason},
            caller=None,
            correlation_id=None,
            result=result.status,
        )
        if result.status == applier.FAILED:
            outcome.failed.append(f"{result.resource_id}: {result.reason}"[:500])
    if outcome.failed:
        raise WorkFailed("; ".join(outcome.failed)[:2000])


__all__ = [
    "Outcome",
    "OutcomeStatus",
    "WorkFailed",
    "fix",
    "handle",
    "handle_message",
    "record",
    "retry_notices",
    "role_retry_delay",
]
