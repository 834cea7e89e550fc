"""The approval endpoint behind approve / deny links: what the HTTP trigger calls, and the ledger-backed stores that
remediations/notices/approvals.py (pure) is given. A link alone decides nothing: a signed-in approver does.

    status, html, headers = respond(method, query, body, headers)

1. GET ?token=: the link is checked (not consumed); with no approver signed in yet, MSAL's auth code flow starts
   (signin.py): the flow and the link's token are kept in the ledger under the flow's `state` (single use, FLOW_TTL),
   never in a URL, and the answer is a 303 to Entra ID's authorize URL (with a link, for a browser that does not
   follow it). With CRYPTWARD_SIGNIN=platform, App Service Authentication has signed the person in already: the
   confirmation page comes at once.
2. Entra ID's form_post back (POST `code`, `state`): the flow is taken by its state (once), the code redeemed, the ID
   token validated, the person checked against CRYPTWARD_APPROVERS; an approver gets the confirmation page (what
   change, which resource, whether it can be undone) whose form carries the link's token and an approver assertion
   (approvals.assertion: sealed with the approval key, for this link's nonce only, 10 minutes).
3. The decision (POST `token`, `assertion`): both checked, then the link's nonce consumed, then `approvals.decide`,
   which takes the decision in the ledger before applying anything and records who decided and from which notice.
   Without a valid assertion: 401, nothing consumed. Nobody in CRYPTWARD_APPROVERS: 403, the link still valid.

Every body is bounded (MAX_BODY_BYTES) and refused with 413 before it is parsed.

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

from remediations.changes import Caller
from remediations.engine import applier
from remediations.notices import approvals
from remediations.runtime import Runtime, current
from remediations.triggers import signin

if TYPE_CHECKING:
    from remediations.store.ledger import Ledger

log = logging.getLogger("cryptward.approvals")

KEY_SETTING = "CRYPTWARD_APPROVAL_KEY"
URL_SETTING = "CRYPTWARD_PUBLIC_URL"
ROUTE = approvals.ROUTE
MAX_BODY_BYTES = 8 * 1024  # a decision form (token + assertion) or Entra ID's form_post (code, state, session) is ~2 KB
FLOW_TTL = timedelta(minutes=10)  # a sign-in started and not finished within this is refused: follow the link again
NONCE_WINDOW = timedelta(days=60)  # longer than any link lives (7 days): an expired link is refused before its nonce
_REFUSED_STATUS = {
    approvals.TAMPERED: 400,
    approvals.EXPIRED: 410,
    approvals.REPLAYED: 409,
    approvals.NOT_CONFIGURED: 503,
    approvals.SIGN_IN: 401,
    approvals.SIGN_IN_FAILED: 401,
    approvals.NOT_APPROVER: 403,
    approvals.NO_APPROVERS: 403,
    approvals.TOO_LARGE: 413,
}
_OUTCOME_STATUS = {approvals.UNKNOWN: 404, approvals.ALREADY: 409}


@dataclass
class LedgerPending:
    """approvals.PendingStore over the ledger's pending `approval` entries."""

    ledger: Ledger

    def get(self, change_id: str) -> approvals.PendingChange | None:
        p = self.ledger.find_pending(change_id)
        if p is None:
            return None
        summary = str(p.detail.get("summary") or "") if isinstance(p.detail, dict) else ""
        status = p.decision_status or (applier.PENDING_APPROVAL if p.status == "open" else str(p.resolution))
        return approvals.PendingChange(change_id, p.resource_id, summary, p.decision, status)

    def claim(self, change_id: str, *, decision: str, at: datetime, by: approvals.Approver | None = None) -> bool:
        p = self.ledger.find_pending(change_id)
        who = by.to_dict() if by else None
        return p is not None and self.ledger.claim_decision(p.kind, p.pending_id, decision=decision, now=at, by=who)

    def record(
        self,
        change_id: str,
        *,
        decision: str,
        status: str,
        detail: str,
        at: datetime,
        by: approvals.Approver | None = None,
        run_id: str = "",
    ) -> None:
        p = self.ledger.find_pending(change_id)
        if p is None:
            return
        who = {**by.to_dict(), "run": run_id} if by else None
        self.ledger.decide_pending(
            p.kind, p.pending_id, decision=decision, status=status, detail=detail, now=at, by=who
        )
        self.ledger.record_change(
            p.resource_id,
            policy=p.policy,
            before=None,
            after={"decision": decision, "status": status, "detail": detail, "by": who},
            caller=Caller(upn=by.upn or None, name=by.name or None, oid=by.oid) if by else None,
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
    from remediations.triggers.worker import OutcomeStatus, fix
    from remediations.work import WorkItem

    def apply(pending: approvals.PendingChange) -> tuple[str, str]:
        item = WorkItem("approval", pending.resource_id, event_id=f"approval-{uuid.uuid4().hex}")
        only = (pending.change_id,)  # the approved change and nothing else: another fix's failure is not this one's
        outcome = fix(rt, item, pending.resource_id, item.event_id, approved=only, only=only)
        if outcome.status == OutcomeStatus.BUSY:  # the approval is recorded open: the queued run applies it
            return "queued", "another run is working on this resource; the change is applied right after it"
        if outcome.status == OutcomeStatus.SKIPPED:
            return applier.FAILED, "the resource is outside the scopes Cryptward works in"
        status, detail = outcome.results.get(pending.change_id, (applier.FAILED, "the change is no longer planned"))
        return status, detail

    return apply


def respond(
    method: str,
    query: Mapping[str, str],
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    rt: Runtime | None = None,
    apply: Callable[[Runtime], approvals.ApplyChange] = apply_change,
) -> tuple[int, str, dict[str, str]]:
    """The approval endpoint: (HTTP status, HTML page, extra headers). Refusals say why; see the module's docstring."""
    if len(body) > MAX_BODY_BYTES:  # before anything is parsed or read
        detail = f"The request carried {len(body)} bytes; this page accepts at most {MAX_BODY_BYTES}."
        return _refused(approvals.Refusal(approvals.TOO_LARGE, detail))
    rt = rt or current()
    key = rt.settings.notices.approval_key
    if not key:  # a person followed a link: a page that says what is wrong, not a bare 500
        log.error("%s is not set: approve / deny links cannot be checked; nothing was changed", KEY_SETTING)
        detail = (
            f"The function app's {KEY_SETTING} setting is not set, so no approve / deny link can be checked. "
            "Ask whoever runs Cryptward to set it to the key the links were signed with (see the README's "
            "Approvals section), then follow the link again: it is still valid until it expires."
        )
        return _refused(approvals.Refusal(approvals.NOT_CONFIGURED, detail))
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()} if body else {}
    now, headers = now or datetime.now(UTC), headers or {}
    if method.upper() == "GET":
        return _link_followed(rt, key, query.get("token") or "", headers, now)
    if "state" in form and "token" not in form:
        return _signed_in(rt, key, form, now)
    return _decision(rt, key, form.get("token") or query.get("token") or "", form, now, apply)


def _link_followed(
    rt: Runtime, key: str, token: str, headers: Mapping[str, str], now: datetime
) -> tuple[int, str, dict[str, str]]:
    """GET: check the link (consuming nothing), then sign the person in."""
    checked = approvals.verify(token, key, now, LedgerNonces(rt.ledger).peek)
    if isinstance(checked, approvals.Refusal):
        return _refused(checked)
    blocked = _blocked(rt)
    if blocked:
        return _refused(blocked)
    if rt.settings.approvals.mode == "platform":
        claims = signin.platform_principal(headers)
        if claims is None:
            detail = "App Service Authentication did not sign you in (CRYPTWARD_SIGNIN=platform needs it required)."
            return _refused(approvals.Refusal(approvals.SIGN_IN, detail))
        return _confirm(rt, key, checked, token, claims, now)
    flow = rt.signin.start()
    rt.ledger.keep_signin(flow["state"], {"flow": flow, "token": token}, now=now)
    url = str(flow["auth_uri"])
    page = approvals.redirect_page(url)
    return 303, page, {"Location": url}


def _signed_in(rt: Runtime, key: str, form: Mapping[str, str], now: datetime) -> tuple[int, str, dict[str, str]]:
    """Entra ID's form_post: the flow by its state (once), the ID token, the approvers; then the confirmation page."""
    kept = rt.ledger.take_signin(form.get("state", ""), FLOW_TTL.total_seconds(), now=now)
    if kept is None or not isinstance(kept.get("flow"), dict):
        detail = "This sign-in was already used, or it took too long. Follow the link in the notice again."
        return _refused(approvals.Refusal(approvals.SIGN_IN_FAILED, detail))
    token = str(kept.get("token") or "")
    checked = approvals.verify(token, key, now, LedgerNonces(rt.ledger).peek)
    if isinstance(checked, approvals.Refusal):
        return _refused(checked)
    try:
        claims = rt.signin.finish(kept["flow"], form)
    except signin.SignInRefused as e:
        log.warning("approval sign-in refused for change %s: %s", checked.change_id, e)
        return _refused(approvals.Refusal(approvals.SIGN_IN_FAILED, f"Cryptward refused the sign-in: {e}"))
    return _confirm(rt, key, checked, token, claims, now)


def _confirm(
    rt: Runtime, key: str, checked: approvals.Decision, token: str, claims: Mapping[str, object], now: datetime
) -> tuple[int, str, dict[str, str]]:
    try:
        who = signin.authorise(claims, rt.settings.approvals)
    except signin.SignInRefused as e:
        log.warning("approval refused for change %s: %s", checked.change_id, e)
        return _refused(approvals.Refusal(approvals.NOT_APPROVER, f"{e} Nothing was decided; the change still waits."))
    p = rt.ledger.find_pending(checked.change_id)
    detail = p.detail if p is not None and isinstance(p.detail, dict) else {}
    page = approvals.confirm_page(
        checked,
        token,
        str(detail.get("summary") or ""),
        sealed=approvals.assertion(who, checked, key, now),
        approver=who,
        irreversible=bool(detail.get("irreversible")),
        action=f"{rt.settings.notices.public_url}/api/{ROUTE}",
    )
    return 200, page, {}


def _decision(
    rt: Runtime,
    key: str,
    token: str,
    form: Mapping[str, str],
    now: datetime,
    apply: Callable[[Runtime], approvals.ApplyChange],
) -> tuple[int, str, dict[str, str]]:
    """The confirmation page's POST: the link, then the approver, then the nonce is consumed and the change decided."""
    nonces, store = LedgerNonces(rt.ledger), LedgerPending(rt.ledger)
    checked = approvals.verify(token, key, now, nonces.peek)
    if isinstance(checked, approvals.Refusal):
        log.info("approval link refused: %s", checked.reason)
        return _refused(checked)
    blocked = _blocked(rt)
    if blocked:
        return _refused(blocked)
    who = approvals.asserted(form.get("assertion") or "", checked, key, now)
    if who is None:
        detail = "Follow the link in the notice again: it signs you in, and it is still valid."
        return _refused(approvals.Refusal(approvals.SIGN_IN, detail))
    if who.via not in rt.settings.approvals.approvers:  # removed from the approvers since signing in
        detail = f"{who.label} is no longer one of the approvers (CRYPTWARD_APPROVERS). Nothing was decided."
        return _refused(approvals.Refusal(approvals.NOT_APPROVER, detail))
    checked = approvals.verify(token, key, now, nonces.seen)
    if isinstance(checked, approvals.Refusal):
        return _refused(checked)
    outcome = approvals.decide(checked, store, apply(rt), now, by=who)
    log.info("approval of change %s by %s: %s", outcome.change_id, who.oid, outcome.result)
    return _OUTCOME_STATUS.get(outcome.result, 200), approvals.page(outcome), {}


def _blocked(rt: Runtime) -> approvals.Refusal | None:
    why = rt.settings.approvals.why_not
    if not why:
        return None
    reason = approvals.NO_APPROVERS if not rt.settings.approvals.approvers else approvals.NOT_CONFIGURED
    return approvals.Refusal(reason, f"{why} This link stays valid until it expires.")


def _refused(refusal: approvals.Refusal) -> tuple[int, str, dict[str, str]]:
    return _REFUSED_STATUS[refusal.reason], approvals.page(refusal), {}


__all__ = ["LedgerNonces", "LedgerPending", "apply_change", "respond"]
