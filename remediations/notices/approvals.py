"""Approve / deny links for pending changes, and what happens when one is followed. Pure: time, storage and the
applier are passed in, so the function app binds the HTTP endpoint and the ledger without logic of its own.

    url = make_link(base_url, change.id, change.resource_id, "approve", expires_at, key)   # CRYPTWARD_APPROVAL_KEY
    checked = verify(token, key, now, seen_nonce)        # Decision, or Refusal("expired" | "tampered" | "replayed")
    sealed = assertion(approver, checked, key, now)      # who signed in, for this link only, for ASSERTION_TTL
    by = asserted(sealed, checked, key, now)             # the Approver, or None (forged, expired, another link's)
    outcome = decide(checked, store, apply_change, now, by=by)  # approved / denied / unknown / already-decided
    html = page(checked if isinstance(checked, Refusal) else outcome)

A token is `seal({c: change id, r: resource id, d: decision, e: expiry, n: nonce})` (signing.py): any edit breaks
its MAC. `seen_nonce(nonce)` must return True when the nonce was used before and record it otherwise, atomically
(an insert-if-absent in Table Storage): a link works once. Link scanners fetch URLs in chat messages, so the
endpoint should answer GET with `confirm_page` (verify with a check that does not record the nonce) and act on the
POST that page sends.

A link alone decides nothing: the endpoint signs the person in (triggers/signin.py), checks them against
CRYPTWARD_APPROVERS, and the confirmation page's form carries an approver assertion beside the link's token:
`seal({k: "approver", n: the link's nonce, o: oid, ...}, key)`, valid for ASSERTION_TTL and for that link only.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import quote, urlsplit

from remediations.engine.applier import Status
from remediations.notices import signing

ROUTE = "approvals"  # the HTTP function the links open: {CRYPTWARD_PUBLIC_URL}/api/approvals
APPROVE, DENY = "approve", "deny"
DECISIONS = (APPROVE, DENY)
EXPIRED, TAMPERED, REPLAYED = "expired", "tampered", "replayed"
NOT_CONFIGURED = "not-configured"  # the function app has no CRYPTWARD_APPROVAL_KEY: no link can be checked
SIGN_IN = "sign-in-required"  # a decision without a valid approver assertion
NOT_APPROVER = "not-an-approver"  # signed in, but not one of CRYPTWARD_APPROVERS
NO_APPROVERS = "no-approvers"  # CRYPTWARD_APPROVERS is empty (or sign-in is not set up): nobody can decide
SIGN_IN_FAILED = "sign-in-failed"  # the identity provider's answer was refused (state, code, ID token)
TOO_LARGE = "too-large"  # a request body over the endpoint's limit, refused before it is parsed
APPROVED, DENIED, UNKNOWN, ALREADY = "approved", "denied", "unknown-change", "already-decided"
WAITING = "waiting-deallocation"  # approved; applied once the VM is deallocated
_VERSION = 1
ASSERTION_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class Approver:
    """A signed-in person allowed to decide: their object id and tenant, how they are named, and the
    CRYPTWARD_APPROVERS entry that let them (their oid, or a group's)."""

    oid: str
    tid: str = ""
    name: str = ""
    upn: str = ""
    via: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"oid": self.oid, "tid": self.tid, "name": self.name, "upn": self.upn, "via": self.via}

    @property
    def label(self) -> str:
        return f"{self.name} <{self.upn}>" if self.name and self.upn else self.upn or self.name or self.oid


@dataclass(frozen=True)
class Decision:
    """A verified link: a person chose `decision` for the change."""

    change_id: str
    resource_id: str
    decision: str  # approve | deny
    expires_at: datetime
    nonce: str
    run_id: str = ""  # the run whose notice carried the link


@dataclass(frozen=True)
class Refusal:
    """A request that is not honoured: `reason` is one of the refusal constants above (expired, tampered, ...)."""

    reason: str
    detail: str


def make_link(
    base_url: str,
    change_id: str,
    resource_id: str,
    decision: str,
    expires_at: datetime,
    key: str | bytes,
    *,
    nonce: str | None = None,
    run_id: str = "",
) -> str:
    """`base_url?token=...`: a signed link that expires at `expires_at` and works once."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; valid: {', '.join(DECISIONS)}")
    payload: dict[str, object] = {
        "v": _VERSION,
        "c": change_id,
        "r": resource_id,
        "d": decision,
        "e": int(expires_at.timestamp()),
        "n": nonce or secrets.token_urlsafe(12),
    }
    if run_id:
        payload["u"] = run_id
    sep = "&" if urlsplit(base_url).query else "?"
    return f"{base_url}{sep}token={quote(signing.seal(payload, key), safe='')}"


def verify(token: str, key: str | bytes, now: datetime, seen_nonce: Callable[[str], bool]) -> Decision | Refusal:
    """The decision a token carries, or why it is refused. A tampered or expired token does not consume its nonce."""
    payload = signing.unseal(token.strip(), key)
    fields = ("c", "r", "d", "e", "n")
    if payload is None or payload.get("v") != _VERSION or not all(f in payload for f in fields):
        return Refusal(TAMPERED, "This link is not one Cryptward made, or it was changed after it was sent.")
    if payload["d"] not in DECISIONS or not isinstance(payload["e"], int):
        return Refusal(TAMPERED, "This link is not one Cryptward made, or it was changed after it was sent.")
    expires = datetime.fromtimestamp(payload["e"], UTC)
    if now >= expires:
        return Refusal(EXPIRED, f"This link expired on {expires:%Y-%m-%d %H:%M} UTC. The next notice has a new one.")
    if seen_nonce(str(payload["n"])):
        return Refusal(REPLAYED, "This link was already used. Each approve or deny link works once.")
    run_id = str(payload.get("u") or "")
    return Decision(str(payload["c"]), str(payload["r"]), payload["d"], expires, str(payload["n"]), run_id)


def assertion(approver: Approver, decision: Decision, key: str | bytes, now: datetime) -> str:
    """A sealed statement that `approver` signed in to decide this link (its nonce), valid for ASSERTION_TTL."""
    payload = {"k": "approver", "n": decision.nonce, "e": int((now + ASSERTION_TTL).timestamp()), **approver.to_dict()}
    return signing.seal(payload, key)


def asserted(sealed: str, decision: Decision, key: str | bytes, now: datetime) -> Approver | None:
    """The approver an assertion names, when it is genuine, unexpired and made for this link; else None."""
    payload = signing.unseal(sealed.strip(), key) if sealed else None
    if payload is None or payload.get("k") != "approver" or payload.get("n") != decision.nonce:
        return None
    expires = payload.get("e")
    if not isinstance(expires, int) or now.timestamp() >= expires or not payload.get("oid"):
        return None
    return Approver(*(str(payload.get(f) or "") for f in ("oid", "tid", "name", "upn", "via")))


# --- deciding --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingChange:
    """A change waiting for a person. `decision` is None until someone approves or denies it."""

    change_id: str
    resource_id: str
    summary: str = ""
    decision: str | None = None  # approved | denied
    status: str = Status.PENDING_APPROVAL  # the applier's Status of the change, or DENIED


class PendingStore(Protocol):
    """Where pending changes live (the ledger in the function app; a dict in tests)."""

    def get(self, change_id: str) -> PendingChange | None: ...

    def claim(self, change_id: str, *, decision: str, at: datetime, by: Approver | None = None) -> bool:
        """Record `decision` (and who took it) if nobody decided yet, atomically; True when this call decided."""
        ...

    def record(
        self,
        change_id: str,
        *,
        decision: str,
        status: str,
        detail: str,
        at: datetime,
        by: Approver | None = None,
        run_id: str = "",
    ) -> None:
        """What the decided change came to (applied, waiting, failed, denied), who decided, from which notice."""
        ...


# (the pending change) -> (applier status, detail): the function app re-reads the resource and applies the change
# with its id in `approved` (engine.scan(..., resource_id=..., approved=[change_id], apply=True)).
ApplyChange = Callable[[PendingChange], tuple[str, str]]


@dataclass(frozen=True)
class Outcome:
    """What following a valid link did. `result` is approved, waiting-deallocation, denied, unknown-change or
    already-decided."""

    result: str
    change_id: str
    resource_id: str = ""
    summary: str = ""
    detail: str = ""


def decide(
    decision: Decision, store: PendingStore, apply_change: ApplyChange, now: datetime, *, by: Approver | None = None
) -> Outcome:
    """Approve (apply now, or wait for the VM's deallocation) or deny (record it; nobody is asked again). `by`: the
    signed-in approver, recorded with the decision.

    The decision is taken in the store first, atomically: of an Approve and a Deny sent together exactly one decides,
    and nothing is applied for the other. An approved change whose application fails stays approved (the next run
    applies it) and the page says so."""
    pending = store.get(decision.change_id)
    if pending is None or pending.resource_id.lower() != decision.resource_id.lower():
        return Outcome(UNKNOWN, decision.change_id, decision.resource_id, detail="No change with this id is pending.")
    wanted = DENIED if decision.decision == DENY else APPROVED
    if pending.decision is not None or not store.claim(pending.change_id, decision=wanted, at=now, by=by):
        return _already(store.get(pending.change_id) or pending)
    who = f"by {by.label}" if by else "by a person"
    if wanted == DENIED:
        store.record(
            pending.change_id, decision=DENIED, status=DENIED, detail=f"denied {who}", at=now, by=by,
            run_id=decision.run_id,
        )  # fmt: skip
        return Outcome(DENIED, pending.change_id, pending.resource_id, pending.summary, "Nobody will ask again.")
    try:
        status, detail = apply_change(pending)
    except Exception as e:  # the decision stands; the page must say what happened, not answer a bare 500
        status = Status.FAILED
        detail = f"applying it failed ({type(e).__name__}); it stays approved and the next run tries again"
    store.record(
        pending.change_id, decision=APPROVED, status=status, detail=detail, at=now, by=by, run_id=decision.run_id
    )
    result = WAITING if status == Status.PENDING_DEALLOCATION else APPROVED
    return Outcome(result, pending.change_id, pending.resource_id, pending.summary, f"{status}: {detail}")


def _already(pending: PendingChange) -> Outcome:
    detail = f"It was already {pending.decision}; its state is {pending.status}."
    return Outcome(ALREADY, pending.change_id, pending.resource_id, pending.summary, detail)


@dataclass
class MemoryPendingStore:
    """A PendingStore in a dict: for tests, and the shape a ledger-backed one follows."""

    items: dict[str, PendingChange]
    log: list[tuple[str, str, str, str, datetime]]

    def __init__(self, *pending: PendingChange) -> None:
        self.items = {p.change_id: p for p in pending}
        self.log = []

    def get(self, change_id: str) -> PendingChange | None:
        return self.items.get(change_id)

    def claim(self, change_id: str, *, decision: str, at: datetime, by: Approver | None = None) -> bool:
        old = self.items[change_id]
        if old.decision is not None:
            return False
        self.items[change_id] = PendingChange(old.change_id, old.resource_id, old.summary, decision, "deciding")
        return True

    def record(
        self,
        change_id: str,
        *,
        decision: str,
        status: str,
        detail: str,
        at: datetime,
        by: Approver | None = None,
        run_id: str = "",
    ) -> None:
        old = self.items[change_id]
        self.items[change_id] = PendingChange(old.change_id, old.resource_id, old.summary, decision, status)
        self.log.append((change_id, decision, status, detail, at))


# --- pages -----------------------------------------------------------------------------------------------------------

_PAGES = {
    APPROVED: ("Change approved", "#107c10", "Thank you. Cryptward has applied the change."),
    WAITING: ("Change approved", "#107c10", "It will be applied once the VM is deallocated."),
    DENIED: ("Change denied", "#605e5c", "Cryptward will not make this change and will not ask about it again."),
    UNKNOWN: ("Unknown change", "#a4262c", "Cryptward has no pending change for this link."),
    ALREADY: ("Already decided", "#605e5c", "Someone decided about this change before."),
    EXPIRED: ("Link expired", "#a4262c", "This approval link has expired: nothing was changed."),
    TAMPERED: ("Invalid link", "#a4262c", "This link is not valid: nothing was changed."),
    REPLAYED: ("Link already used", "#a4262c", "This link was used before: nothing was changed this time."),
    NOT_CONFIGURED: ("Approvals are not set up", "#a4262c", "Cryptward cannot check this link: nothing was changed."),
    SIGN_IN: ("Sign in first", "#a4262c", "A decision needs a signed-in approver: nothing was changed."),
    NOT_APPROVER: (
        "Not an approver",
        "#a4262c",
        "You may not decide this change: nothing was changed.",
    ),
    NO_APPROVERS: ("Nobody may approve yet", "#a4262c", "This change cannot be decided yet: nothing was changed."),
    SIGN_IN_FAILED: ("Sign-in failed", "#a4262c", "Cryptward could not confirm who you are: nothing was changed."),
    TOO_LARGE: ("Request too large", "#a4262c", "Cryptward refused this request unread: nothing was changed."),
}


def _html(title: str, colour: str, lead: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Cryptward: {html.escape(title)}</title><style>"
        "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f3f2f1;margin:0;padding:3rem 1rem;color:#323130}"
        "main{max-width:36rem;margin:auto;background:#fff;border-radius:8px;padding:2rem;"
        f"border-top:6px solid {colour};box-shadow:0 2px 8px rgba(0,0,0,.1)}}"
        f"h1{{margin-top:0;color:{colour};font-size:1.5rem}}code{{word-break:break-all}}"
        "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:4px;color:#fff;cursor:pointer}"
        "</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1><p>{html.escape(lead)}</p>{body}"
        "<p><small>Cryptward: encryption hygiene for Azure.</small></p></main></body></html>"
    )


def page(result: Outcome | Refusal) -> str:
    """A self-contained HTML page (no scripts, no external resources) saying what following the link did."""
    key = result.reason if isinstance(result, Refusal) else result.result
    title, colour, lead = _PAGES[key]
    parts = []
    if isinstance(result, Refusal):
        parts.append(f"<p>{html.escape(result.detail)}</p>")
    else:
        if result.summary:
            parts.append(f"<p><strong>{html.escape(result.summary)}</strong></p>")
        if result.resource_id:
            parts.append(f"<p>Resource: <code>{html.escape(result.resource_id)}</code></p>")
        if result.detail:
            parts.append(f"<p>{html.escape(result.detail)}</p>")
    return _html(title, colour, lead, "".join(parts))


def confirm_page(
    decision: Decision,
    token: str,
    summary: str = "",
    *,
    sealed: str = "",
    approver: Approver | None = None,
    irreversible: bool = False,
    action: str = "",
) -> str:
    """The page a signed-in approver confirms on: what change, which resource, whether it can be undone, and a form
    that POSTs the link's token and the approver assertion back (to `action`, the endpoint, when given)."""
    verb = "Approve" if decision.decision == APPROVE else "Deny"
    colour = "#107c10" if decision.decision == APPROVE else "#a4262c"
    undo = (
        "<p><strong>This change cannot be undone</strong> once applied.</p>"
        if irreversible and decision.decision == APPROVE
        else ""
    )
    who = f"<p>Signed in as {html.escape(approver.label)}.</p>" if approver else ""
    target = f' action="{html.escape(action, quote=True)}"' if action else ""
    body = (
        (f"<p><strong>{html.escape(summary)}</strong></p>" if summary else "")
        + f"<p>Resource: <code>{html.escape(decision.resource_id)}</code></p>"
        + undo
        + who
        + f'<form method="post"{target}><input type="hidden" name="token" '
        + f'value="{html.escape(token, quote=True)}">'
        + (f'<input type="hidden" name="assertion" value="{html.escape(sealed, quote=True)}">' if sealed else "")
        + f'<button style="background:{colour}" type="submit">{verb} this change</button></form>'
    )
    return _html(f"{verb} this change?", colour, "Confirm your decision.", body)


def redirect_page(url: str) -> str:
    """The body of the 303 to the sign-in page: a link, for a browser that does not follow redirects."""
    body = f'<p><a href="{html.escape(url, quote=True)}">Sign in with your work account</a> to decide.</p>'
    return _html("Sign in to decide", "#0078d4", "Cryptward needs to know who is deciding.", body)


__all__ = [
    "DECISIONS",
    "ApplyChange",
    "Approver",
    "Decision",
    "MemoryPendingStore",
    "Outcome",
    "PendingChange",
    "PendingStore",
    "Refusal",
    "asserted",
    "assertion",
    "confirm_page",
    "decide",
    "make_link",
    "page",
    "redirect_page",
    "verify",
]
