"""The approval endpoint behind approve / deny links: what the HTTP trigger calls, and the ledger-backed stores that
remediations/notices/approvals.py (pure) is given.

    status, html = respond("GET", query, body)    # a confirmation page (a link scanner's fetch decides nothing)
    status, html = respond("POST", query, body)   # the form's POST (or ?token=): verify, decide, the outcome page

- `LedgerPending`: approvals.PendingStore over the ledger's `approval` pending entries (found by change id; a
  decision is taken with an ETag-conditional write before anything is applied, so of two concurrent decisions the
  first stays and the other applies nothing).
- `LedgerNonces`: a nonce is an insert-if-absent claim in the ledger's dedupe table, kept for longer than any link
  lives: a link works once, a replay gets the "already used" page.
- `apply_change`: the worker's own path (`worker.fix`, under the resource's work lock) with the change in
  `approved`. A change that needs its VM deallocated stays pending; the approval stays in the ledger
  (`Ledger.decided_for`), so the run the deallocation event causes applies it.

Settings: CRYPTWARD_APPROVAL_KEY (the HMAC key), CRYPTWARD_PUBLIC_URL (where links point: the function app's
`https://<app>.azurewebsites.net`, or `cryptward serve`'s `http://127.0.0.1:7071`; links go to `<url>/api/approvals`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from remediations.notices import approvals
from remediations.runtime import Runtime, current

if TYPE_CHECKING:
    from remediations.notices.compose import ApprovalLinks
    from remediations.settings import NoticeSettings
    from remediations.store.ledger import Ledger

log = logging.getLogger("cryptward.approvals")

KEY_SETTING = "CRYPTWARD_APPROVAL_KEY"
URL_SETTING = "CRYPTWARD_PUBLIC_URL"
ROUTE = "approvals"
NONCE_WINDOW = timedelta(days=60)  # longer than any link lives (7 days): an expired link is refused before its nonce
_REFUSED_STATUS = {
    approvals.TAMPERED: 400,
    approvals.EXPIRED: 410,
    approvals.REPLAYED: 409,
    approvals.NOT_CONFIGURED: 503,
}
_OUTCOME_STATUS = {approvals.UNKNOWN: 404, approvals.ALREADY: 409}


def approval_links(settings: NoticeSettings) -> ApprovalLinks | None:
    """How notices make approve / deny links, or None when CRYPTWARD_PUBLIC_URL or CRYPTWARD_APPROVAL_KEY is unset
    (the cards then carry no buttons)."""
    from remediations.notices.compose import ApprovalLinks

    base, key = settings.public_url, settings.approval_key
    if not base or not key:
        return None
    return ApprovalLinks(f"{base}/api/{ROUTE}", key)


@dataclass
class LedgerPending:
    """approvals.PendingStore over the ledger's pending `approval` entries."""

    ledger: Ledger

    def get(self, change_id: str) -> approvals.PendingChange | None:
        p = self.ledger.find_pending(change_id)
        if p is None:
            return None
        summary = str(p.detail.get("summary") or "") if isinstance(p.detail, dict) else ""
        status = p.decision_status or ("pending-approval" if p.status == "open" else str(p.resolution))
        return approvals.PendingChange(change_id, p.resource_id, summary, p.decision, status)

    def claim(self, change_id: str, *, decision: str, at: datetime) -> bool:
        p = self.ledger.find_pending(change_id)
        return p is not None and self.ledger.claim_decision(p.kind, p.pending_id, decision=decision, now=at)

    def record(self, change_id: str, *, decision: str, status: str, detail: str, at: datetime) -> None:
        p = self.ledger.find_pending(change_id)
        if p is None:
            return
        self.ledger.decide_pending(p.kind, p.pending_id, decision=decision, status=status, detail=detail, now=at)
        self.ledger.record_change(
            p.resource_id,
            policy=p.policy,
            before=None,
            after={"decision": decision, "status": status, "detail": detail},
            caller=None,
            correlation_id=None,
            result=decision,
            change_id=f"{change_id}-{decision}",
            now=at,
        )


@dataclass
class LedgerNonces:
    """Single-use links: `seen(nonce)` records the nonce and says whether it was there already (atomic)."""

    ledger: Ledger

    def seen(self, nonce: str) -> bool:
        return not self.ledger.claim(f"nonce:{nonce}", NONCE_WINDOW.total_seconds())

    def peek(self, nonce: str) -> bool:
        return self.ledger.is_claimed(f"nonce:{nonce}", NONCE_WINDOW.total_seconds())


def apply_change(rt: Runtime) -> approvals.ApplyChange:
    """Apply an approved change the way the worker does (work lock, audit records, notices)."""
    from remediations.triggers.worker import fix
    from remediations.work import WorkItem

    def apply(pending: approvals.PendingChange) -> tuple[str, str]:
        item = WorkItem("approval", pending.resource_id, event_id=f"approval-{uuid.uuid4().hex}")
        only = (pending.change_id,)  # the approved change and nothing else: another fix's failure is not this one's
        outcome = fix(rt, item, pending.resource_id, item.event_id, approved=only, only=only)
        if outcome.status == "busy":  # the approval is recorded open: the queued run applies it
            return "queued", "another run is working on this resource; the change is applied right after it"
        if outcome.status == "skipped":
            return "failed", "the resource is outside the scopes Cryptward works in"
        status, detail = outcome.results.get(pending.change_id, ("failed", "the change is no longer planned"))
        return status, detail

    return apply


def respond(
    method: str,
    query: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    rt: Runtime | None = None,
    apply: Callable[[Runtime], approvals.ApplyChange] = apply_change,
) -> tuple[int, str]:
    """The approval endpoint: (HTTP status, HTML page). GET confirms, POST decides; refusals say why."""
    rt = rt or current()
    key = rt.settings.notices.approval_key
    if not key:  # a person followed a link: a page that says what is wrong, not a bare 500
        log.error("%s is not set: approve / deny links cannot be checked; nothing was changed", KEY_SETTING)
        detail = (
            f"The function app's {KEY_SETTING} setting is not set, so no approve / deny link can be checked. "
            "Ask whoever runs Cryptward to set it to the key the links were signed with (see the README's "
            "Approvals section), then follow the link again: it is still valid until it expires."
        )
        refusal = approvals.Refusal(approvals.NOT_CONFIGURED, detail)
        return _REFUSED_STATUS[refusal.reason], approvals.page(refusal)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()} if body else {}
    token = form.get("token") or query.get("token") or ""
    now = now or datetime.now(UTC)
    nonces, store = LedgerNonces(rt.ledger), LedgerPending(rt.ledger)
    if method.upper() == "GET":
        checked = approvals.verify(token, key, now, nonces.peek)
        if isinstance(checked, approvals.Refusal):
            return _REFUSED_STATUS[checked.reason], approvals.page(checked)
        pending = store.get(checked.change_id)
        return 200, approvals.confirm_page(checked, token, pending.summary if pending else "")
    checked = approvals.verify(token, key, now, nonces.seen)
    if isinstance(checked, approvals.Refusal):
        log.info("approval link refused: %s", checked.reason)
        return _REFUSED_STATUS[checked.reason], approvals.page(checked)
    outcome = approvals.decide(checked, store, apply(rt), now)
    log.info("approval link for change %s: %s", outcome.change_id, outcome.result)
    return _OUTCOME_STATUS.get(outcome.result, 200), approvals.page(outcome)


__all__ = ["LedgerNonces", "LedgerPending", "apply_change", "approval_links", "respond"]
