"""Who is told what: change notices built from a run, their owners, and where each owner's notices go. Pure.

    notices = build(report, run_id=run, caller=event_caller, owner_tag=settings.owner_tag, tenant_id=tenant)
    routes = settings.notices.routes                    # CRYPTWARD_ROUTES
    routes.destinations(notice.owners)                  # ("teams:ops", "webhook:siem")

One `Notice` per resource per run, holding one `Line` per change that was applied, is pending (approval or a
deallocated VM), failed, was escalated (blocked, refused, or named in `escalations`, e.g. a fight with another
actor), and per finding skipped for a reason (except the quiet reasons: by default `exempt`, which the owner chose).
A change that was already compliant, or whose approval a person denied (`silenced`), is not told again.

Owners: the resource's owner tag (`CRYPTWARD_OWNER_TAG`; several separated by `,` or `;`), else the caller of the
triggering event (upn, else name, else appid), else, in a sweep, who ARM says last modified it; with none of
those the notice has no owner and goes to the default route `*`. Delivery is in `outbox.py` and `delivery.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from remediations.changes import SkipReason
from remediations.engine import applier
from remediations.errors import SettingsError
from remediations.notices import approvals
from remediations.policy.exemptions import DEFAULT_TAG
from remediations.policy.loader import first_sentence
from remediations.resources import get

if TYPE_CHECKING:
    from remediations.changes import Caller, Skip
    from remediations.engine.applier import Result
    from remediations.engine.run import Report
    from remediations.policy.loader import Policy
    from remediations.settings import Settings


class Kind(StrEnum):
    """What a notice line (and its Event Grid event type) tells: `Cryptward.Change.<Kind>`."""

    APPLIED = "applied"
    PENDING = "pending"
    SKIPPED = "skipped"
    FAILED = "failed"
    ESCALATED = "escalated"


APPLIED, PENDING, SKIPPED, FAILED, ESCALATED = Kind.APPLIED, Kind.PENDING, Kind.SKIPPED, Kind.FAILED, Kind.ESCALATED
KINDS = tuple(Kind)
EVENT_TYPES = {kind: f"Cryptward.Change.{kind.title()}" for kind in KINDS}
DESTINATION_KINDS = ("teams", "webhook", "eventgrid")
DEFAULT_ROUTE = "*"
QUIET_SKIPS = (SkipReason.EXEMPT,)
_KIND_OF = {
    applier.APPLIED: APPLIED,
    applier.PENDING_APPROVAL: PENDING,
    applier.PENDING_DEALLOCATION: PENDING,
    applier.FAILED: FAILED,
    applier.BLOCKED: ESCALATED,
    applier.REFUSED: ESCALATED,
}


@dataclass(frozen=True)
class Line:
    """One change (or finding left alone) in a notice. `status` is the applier's status or the skip reason."""

    kind: Kind
    status: str
    policy_ids: tuple[str, ...]
    title: str
    why: str  # the policy's reasoning in one sentence
    summary: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""
    change_id: str | None = None
    approve_url: str | None = None  # pending approval only: signed, expiring links (capabilities: never logged)
    deny_url: str | None = None

    @property
    def key(self) -> str:
        return f"{self.change_id or ','.join(self.policy_ids)}:{self.status}"

    def to_dict(self, *, links: bool = True) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "status": self.status,
            "policyIds": list(self.policy_ids),
            "title": self.title,
            "why": self.why,
            "summary": self.summary,
            "before": dict(self.before),
            "after": dict(self.after),
            "detail": self.detail,
            "changeId": self.change_id,
        }
        if links and self.approve_url:
            out.update(approveUrl=self.approve_url, denyUrl=self.deny_url)
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Line:
        return cls(
            kind=doc["kind"],
            status=doc["status"],
            policy_ids=tuple(doc.get("policyIds") or ()),
            title=doc.get("title", ""),
            why=doc.get("why", ""),
            summary=doc.get("summary", ""),
            before=doc.get("before") or {},
            after=doc.get("after") or {},
            detail=doc.get("detail", ""),
            change_id=doc.get("changeId"),
            approve_url=doc.get("approveUrl"),
            deny_url=doc.get("denyUrl"),
        )


@dataclass(frozen=True)
class Notice:
    """What one resource's owners are told about one run. `id` is stable for the same resource, run and lines: it
    is the webhook idempotency key and the base of the Event Grid event ids."""

    resource_id: str
    run_id: str
    lines: tuple[Line, ...]
    created: datetime
    owners: tuple[str, ...] = ()
    owner_source: str = "default"  # tag | caller | last-modified | default
    tenant_id: str = ""
    exemption_tag: str = DEFAULT_TAG
    id: str = field(init=False)

    def __post_init__(self) -> None:
        keys = "\n".join(sorted(line.key for line in self.lines))
        text = f"{self.resource_id.lower()}\n{self.run_id}\n{keys}"
        object.__setattr__(self, "id", hashlib.sha256(text.encode()).hexdigest()[:32])

    @property
    def subscription_id(self) -> str:
        parts = self.resource_id.split("/")
        return parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""

    @property
    def name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def portal_url(self) -> str:
        tenant = f"@{self.tenant_id}/" if self.tenant_id else ""
        return f"https://portal.azure.com/#{tenant}resource{self.resource_id}"

    def counts(self) -> dict[str, int]:
        out = {kind: 0 for kind in KINDS}
        for line in self.lines:
            out[line.kind] += 1
        return {k: n for k, n in out.items() if n}

    def to_dict(self, *, links: bool = True) -> dict[str, Any]:
        """JSON for a webhook body and for storage. `links=False` leaves out the approval links."""
        return {
            "id": self.id,
            "runId": self.run_id,
            "resourceId": self.resource_id,
            "subscriptionId": self.subscription_id,
            "portalUrl": self.portal_url,
            "created": self.created.isoformat(),
            "owners": list(self.owners),
            "ownerSource": self.owner_source,
            "tenantId": self.tenant_id,
            "exemptionTag": self.exemption_tag,
            "counts": self.counts(),
            "lines": [line.to_dict(links=links) for line in self.lines],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Notice:
        return cls(
            resource_id=doc["resourceId"],
            run_id=doc["runId"],
            lines=tuple(Line.from_dict(d) for d in doc.get("lines") or ()),
            created=datetime.fromisoformat(doc["created"]),
            owners=tuple(doc.get("owners") or ()),
            owner_source=doc.get("ownerSource", "default"),
            tenant_id=doc.get("tenantId", ""),
            exemption_tag=doc.get("exemptionTag", DEFAULT_TAG),
        )


# --- owners ----------------------------------------------------------------------------------------------------------


def owners_of(
    resource: Mapping[str, Any] | None, owner_tag: str, caller: Caller | None = None
) -> tuple[tuple[str, ...], str]:
    """The owners of a resource and where they came from: its owner tag, the event's caller, ARM's last modifier."""
    for name, value in (get(resource or {}, "tags") or {}).items():
        if str(name).lower() == owner_tag.lower() and isinstance(value, str):
            named = tuple(dict.fromkeys(o.strip() for o in re.split(r"[,;]", value) if o.strip()))
            if named:
                return named, "tag"
    who = caller.upn or caller.name or caller.appid if caller else None
    if who:
        return (who,), "caller"
    last = get(resource or {}, "systemData.lastModifiedBy")
    if last:
        return (str(last),), "last-modified"
    return (), "default"


# --- routes ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Routes:
    """Owner (case-insensitive) -> destinations (`teams:NAME`, `webhook:NAME`, `eventgrid:NAME`); `*` is the route
    of an owner without one, and of a notice without an owner."""

    table: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def destinations(self, owners: Sequence[str]) -> tuple[str, ...]:
        found = [ref for o in owners for ref in self.table.get(o.lower(), ())]
        if not found or any(o.lower() not in self.table for o in owners):
            found += self.table.get(DEFAULT_ROUTE, ())
        return tuple(dict.fromkeys(found))

    @classmethod
    def parse(cls, raw: str | None) -> Routes:
        """`{"alice@contoso.com": ["teams:ops"], "*": ["webhook:siem"]}`; SettingsError naming what is wrong."""
        if not raw or not raw.strip():
            return cls()
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as e:
            raise SettingsError(f"CRYPTWARD_ROUTES is not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise SettingsError('CRYPTWARD_ROUTES must be a JSON object, e.g. {"*": ["teams:ops"]}')
        table: dict[str, tuple[str, ...]] = {}
        for owner, refs in doc.items():
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise SettingsError(f"CRYPTWARD_ROUTES: {owner!r} must map to a list of 'kind:name' strings")
            for ref in refs:
                kind, _, name = ref.partition(":")
                if kind not in DESTINATION_KINDS or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                    raise SettingsError(
                        f"CRYPTWARD_ROUTES: {ref!r} is not 'kind:name' (name: letters, digits, '-', '_'); "
                        f"valid kinds: {', '.join(DESTINATION_KINDS)}"
                    )
            table[str(owner).lower()] = tuple(refs)
        return cls(table)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Routes:
        return cls.parse(env.get("CRYPTWARD_ROUTES"))


# --- building --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalLinks:
    """How to make approve/deny links: the approval endpoint, CRYPTWARD_APPROVAL_KEY and how long a link lives.
    `blocked`: why nobody can decide now (no approvers, sign-in not set up): the line says it instead of the links."""

    base_url: str
    key: str
    ttl: timedelta = timedelta(days=7)
    blocked: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalLinks | None:
        """How the bot's notices make links, or None when CRYPTWARD_PUBLIC_URL or CRYPTWARD_APPROVAL_KEY is unset
        (the cards then carry no buttons). When nobody can decide (no approvers, sign-in not set up) the notices
        carry the reason instead of the buttons."""
        base, key = settings.notices.public_url, settings.notices.approval_key
        if not base or not key:
            return None
        return cls(f"{base}/api/{approvals.ROUTE}", key, blocked=settings.approvals.why_not)


def build(
    report: Report,
    *,
    run_id: str,
    now: datetime | None = None,
    caller: Caller | None = None,
    owner_tag: str = "owner",
    tenant_id: str = "",
    exemption_tag: str = DEFAULT_TAG,
    policies: Sequence[Policy] = (),
    approval: ApprovalLinks | None = None,
    escalations: Mapping[str, str] | None = None,
    silenced: Collection[str] = (),
    quiet: Collection[str] = QUIET_SKIPS,
    extra: Mapping[str, Sequence[Line]] | None = None,
) -> list[Notice]:
    """One notice per resource with something to tell, in the order resources first appear in the run.

    `escalations`: resource id -> why a person must look (e.g. a fight with another actor). `silenced`: change
    ids not to tell again (a person denied them). `policies`: for titles and reasons, besides the findings' own."""
    now = now or datetime.now(UTC)
    known = {p.id: p for p in policies} | {f.policy.id: f.policy for f in report.findings}
    bodies = {str(k).lower(): v for k, v in report.bodies.items()}
    bodies |= {str(f.resource.get("id", "")).lower(): f.resource for f in report.findings}
    told = [(r.change.resource_id, result_line(r, known, now, approval, silenced, run_id)) for r in report.results]
    told += [(skip.resource_id, skip_line(skip, known, quiet)) for skip in report.plan.skipped]
    for resource_id, reason in (escalations or {}).items():
        told.append((resource_id, Line(ESCALATED, "escalated", (), "A person must look at this resource", "", reason)))
    told += [(resource_id, line) for resource_id, found in (extra or {}).items() for line in found]  # announcements
    out = []
    for resource_id, found in _by_resource(told).items():
        owners, source = owners_of(bodies.get(resource_id.lower()), owner_tag, caller)
        out.append(Notice(resource_id, run_id, tuple(found), now, owners, source, tenant_id, exemption_tag))
    return out


def result_line(
    result: Result,
    known: Mapping[str, Policy],
    now: datetime,
    approval: ApprovalLinks | None = None,
    silenced: Collection[str] = (),
    run_id: str = "",
) -> Line | None:
    """The line a change's result is told as; None when it is not told (already compliant, or a person denied it).
    A change pending approval carries signed approve/deny links (naming the run) when `approval` says how to make
    them, or why nobody can decide it yet."""
    kind, change = _KIND_OF.get(result.status), result.change
    if kind is None or change.id in silenced:
        return None
    title, why = _about(known, change.policy_ids)
    links: dict[str, str] = {}
    detail = result.detail
    if result.status == applier.PENDING_APPROVAL and approval is not None and approval.blocked:
        detail = f"{detail.rstrip('.')}. {approval.blocked}" if detail else approval.blocked
    elif result.status == applier.PENDING_APPROVAL and approval is not None:
        expires = now + approval.ttl
        for decision in approvals.DECISIONS:
            links[f"{decision}_url"] = approvals.make_link(
                approval.base_url, change.id, change.resource_id, decision, expires, approval.key, run_id=run_id
            )
    return Line(
        kind=kind,
        status=result.status,
        policy_ids=change.policy_ids,
        title=title,
        why=why,
        summary=change.summary,
        before=change.before,
        after=change.after,
        detail=detail,
        change_id=change.id,
        **links,
    )


def skip_line(skip: Skip, known: Mapping[str, Policy], quiet: Collection[str] = QUIET_SKIPS) -> Line | None:
    """The line a finding left alone is told as: `escalated` when a change it needs is not made, else `skipped`;
    None for a quiet reason."""
    if skip.reason in quiet:
        return None
    title, why = _about(known, (skip.policy_id,))
    kind = ESCALATED if skip.reason == SkipReason.BLOCKED else SKIPPED
    return Line(kind, skip.reason, (skip.policy_id,), title, why, skip.detail)


def _about(known: Mapping[str, Policy], policy_ids: Sequence[str]) -> tuple[str, str]:
    """The title and the reasoning (first sentences) of the policies a line is about."""
    found = [known[p] for p in policy_ids if p in known]
    title = "; ".join(p.title for p in found) or ", ".join(policy_ids)
    return title, " ".join(first_sentence(p.description) for p in found if p.description)


def _by_resource(told: Sequence[tuple[str, Line | None]]) -> dict[str, list[Line]]:
    """The lines told, by resource (its id as first spelled), in the order resources first appear."""
    ids: dict[str, str] = {}
    lines: dict[str, list[Line]] = {}
    for resource_id, line in told:
        if line is not None:
            key = ids.setdefault(resource_id.lower(), resource_id)
            lines.setdefault(key, []).append(line)
    return lines


__all__ = [
    "EVENT_TYPES",
    "KINDS",
    "ApprovalLinks",
    "Kind",
    "Line",
    "Notice",
    "Routes",
    "build",
    "owners_of",
    "result_line",
    "skip_line",
]
