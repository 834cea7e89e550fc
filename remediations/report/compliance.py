"""The compliance report: a read-only scan of a scope, with what the ledger remembers, per policy and per resource.

    report = generate(scope, policies, settings=settings, azure=azure)   # a read-only scan + the ledger's history
    report = compose(scan_report, report_history.read_history(ids), policies=policies)   # the same, from parts
    report_html.render(report); report_text.to_markdown(report); report_text.print_table(report, console)

`compose` is pure: the scan says what holds now and what the bot would do (its plan, or what applying it did), the
ledger says what the bot did before. Each finding (a policy and a resource that does not comply) becomes an `Item`
with one status: `planned` (a remediate-mode change the bot makes at the next event or sweep), `pending-approval`,
`pending-deallocation`, `left-alone` (with the planner's reason: exempt, audit-only, ...), `blocked`, `cannot-read`,
or, when the scan applied its plan, the applier's result. Compliance per policy is the share of the resources in
scope it applies to that comply; a resource that could not be read counts as not compliant.

The VM section is the advisor's EAH-or-ADE advice (the seed's comparison table) for every VM read (vmadvice.py);
the mapping section links each policy to its CIS Azure benchmark id and its Azure Policy built-in definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from remediations.changes import APPROVAL, DEALLOCATED, Change, SkipReason
from remediations.engine import applier
from remediations.engine.run import Report
from remediations.engine.streamed import summarize
from remediations.policy.loader import Policy
from remediations.report.history import Done, History, read_history
from remediations.report.vmadvice import VmAdvice, vm_advice
from remediations.resources import name_of, power_state

if TYPE_CHECKING:
    from remediations.azure import Azure
    from remediations.engine.reader import Scope
    from remediations.settings import Settings

PLANNED = "planned"
LEFT_ALONE = "left-alone"
CANNOT_READ = SkipReason.CANNOT_READ  # a finding the planner could not read is reported as such
# Every status an item can have, in the order reports list them: what needs a person first.
STATUSES = (
    applier.FAILED,
    applier.REFUSED,
    CANNOT_READ,
    applier.BLOCKED,
    applier.PENDING_APPROVAL,
    applier.PENDING_DEALLOCATION,
    applier.WAITING,
    PLANNED,
    applier.APPLIED,
    applier.ALREADY,
    LEFT_ALONE,
)
LABELS = {
    applier.FAILED: "failed",
    applier.REFUSED: "refused",
    CANNOT_READ: "could not read",
    applier.BLOCKED: "blocked",
    applier.PENDING_APPROVAL: "waits for approval",
    applier.PENDING_DEALLOCATION: "waits for VM deallocation",
    applier.WAITING: "waits for a new role to take effect",
    PLANNED: "to fix",
    applier.APPLIED: "fixed now",
    applier.ALREADY: "already fixed",
    LEFT_ALONE: "left alone",
}
PORTAL_POLICY = (
    "https://portal.azure.com/#view/Microsoft_Azure_Policy/PolicyDetailBlade/definitionId/"
    "%2Fproviders%2FMicrosoft.Authorization%2FpolicyDefinitions%2F{guid}"
)
CIS_BENCHMARK = "https://www.cisecurity.org/benchmark/azure"


def azure_policy_url(guid: str) -> str:
    """The portal page of an Azure Policy built-in definition."""
    return PORTAL_POLICY.format(guid=guid)


# --- the model -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One finding and what happens to it. `detail` is the change's summary, or why it waits or is left alone."""

    policy_id: str
    resource_id: str
    status: str  # one of STATUSES
    detail: str
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None  # the planner's skip reason (a SkipReason), for left-alone items
    irreversible: bool = False
    also_needs_deallocation: bool = False  # waits for approval, then for its VM to be deallocated
    since: datetime | None = None  # open in the ledger since
    code: str | None = None  # Azure's error code, for failures


@dataclass(frozen=True)
class PolicyStatus:
    """A policy over the scope: how many resources it applies to, how many comply, and its items."""

    policy: Policy
    mode: str  # the effective mode (CRYPTWARD_POLICY_MODES overrides the policy's own)
    checked: int  # resources in scope the policy applies to
    noncompliant: int
    items: tuple[Item, ...]
    history: tuple[Done, ...] = ()

    @property
    def compliant(self) -> int:
        return self.checked - self.noncompliant

    @property
    def percent(self) -> float | None:
        """Share of compliant resources (0-100); None when the policy applies to nothing in scope."""
        return 100.0 * self.compliant / self.checked if self.checked else None

    def count(self, *statuses: str) -> int:
        return sum(1 for i in self.items if i.status in statuses)


@dataclass(frozen=True)
class ResourceStatus:
    """A resource in scope: which policies checked it, its items, and what the bot did to it before."""

    resource_id: str
    type: str
    location: str
    checked: tuple[str, ...]  # policy ids that apply to it
    items: tuple[Item, ...]
    history: tuple[Done, ...] = ()

    @property
    def name(self) -> str:
        return name_of(self.resource_id)

    @property
    def group(self) -> str:
        parts = self.resource_id.split("/")
        lowered = [p.lower() for p in parts]
        return parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered[:-1] else ""

    @property
    def compliant(self) -> bool:
        return not self.items


@dataclass(frozen=True)
class Rollup:
    """One row of the roll-up: a management group's totals (`subscription` empty) or one subscription's."""

    group: str
    subscription: str
    resources: int
    checks: int
    passed: int
    findings: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.passed / self.checks if self.checks else None


@dataclass(frozen=True)
class ComplianceReport:
    scan: Report
    generated: datetime
    policies: tuple[PolicyStatus, ...]
    resources: tuple[ResourceStatus, ...]
    vms: tuple[VmAdvice, ...]
    history: History
    notes: tuple[str, ...] = ()
    groups: Mapping[str, str] = field(default_factory=dict)  # subscription (lower-cased) -> its management group

    @property
    def compliant(self) -> bool:
        return self.scan.compliant

    def close(self) -> None:
        """Remove the scan's spooled findings and skips (a streamed scan): after the report is written."""
        self.scan.close()

    def rollup(self) -> tuple[Rollup, ...]:
        """Compliance per management group (the groups the scope named; "" for subscriptions named alone) and per
        subscription, groups first then their subscriptions, each sorted."""
        subs: dict[str, list[int]] = {}
        for r in self.resources:
            sub = r.resource_id.split("/")[2].lower() if r.resource_id.lower().startswith("/subscriptions/") else ""
            row = subs.setdefault(sub, [0, 0, 0, 0])
            failing = {i.policy_id for i in r.items}
            row[0] += 1
            row[1] += len(r.checked)
            row[2] += len(r.checked) - len(failing)
            row[3] += len(r.items)
        out: list[Rollup] = []
        for group in sorted({self.groups.get(s, "") for s in subs}):
            members = sorted(s for s in subs if self.groups.get(s, "") == group)
            if group:
                totals = [sum(subs[s][i] for s in members) for i in range(4)]
                out.append(Rollup(group, "", *totals))
            out += [Rollup(group, s, *subs[s]) for s in members]
        return tuple(out)

    @property
    def checks(self) -> int:
        return sum(p.checked for p in self.policies)

    @property
    def passed(self) -> int:
        return sum(p.compliant for p in self.policies)

    @property
    def percent(self) -> float | None:
        return 100.0 * self.passed / self.checks if self.checks else None

    @property
    def scope_text(self) -> str:
        scope = self.scan.scope
        group = f" / resource group {scope.resource_group}" if scope.resource_group else ""
        named = sorted(set(self.groups.values()))
        groups = f"management group {', '.join(named)}: " if named else ""
        return groups + "subscription " + ", ".join(scope.subscriptions) + group

    def totals(self) -> dict[str, int]:
        """Counts for the summary: findings, changes by status (each change once), left alone, applied earlier."""
        statuses = change_statuses(self.scan)
        counts = {s: 0 for s in STATUSES}
        for status in statuses.values():
            counts[status] += 1
        for skip in self.scan.plan.skipped:
            counts[_skip_status(skip.reason)] += 1
        earlier = [d for r in self.resources for d in r.history]
        return {
            "resources": self.scan.resources,
            "policies": len(self.policies),
            "checks": self.checks,
            "compliant checks": self.passed,
            "findings": len(self.scan.findings),
            "changes": len(self.scan.plan.changes),
            **counts,
            "applied earlier": sum(1 for d in earlier if d.result == applier.APPLIED),
            "failed earlier": sum(1 for d in earlier if d.result == applier.FAILED),
        }


# --- composing -------------------------------------------------------------------------------------------------------


_SKIP_STATUS: dict[str, str] = {SkipReason.BLOCKED: applier.BLOCKED, SkipReason.CANNOT_READ: CANNOT_READ}


def _skip_status(reason: str) -> str:
    return _SKIP_STATUS.get(reason, LEFT_ALONE)


def change_statuses(scan: Report) -> dict[str, str]:
    """Per change id: the applier's result when the scan applied its plan, else what would happen to it now."""
    results = {r.change.id: r.status for r in scan.results}
    out: dict[str, str] = {}
    for change in scan.plan.changes:
        if change.id in results:
            out[change.id] = results[change.id]
        elif APPROVAL in change.requires or any(out.get(d) == applier.PENDING_APPROVAL for d in change.depends_on):
            out[change.id] = applier.PENDING_APPROVAL
        elif DEALLOCATED in change.requires and _vm_running(change, scan.bodies):
            out[change.id] = applier.PENDING_DEALLOCATION
        elif any(out.get(d) not in (PLANNED, applier.APPLIED, applier.ALREADY) for d in change.depends_on):
            out[change.id] = applier.BLOCKED
        else:
            out[change.id] = PLANNED
    return out


def _vm_running(change: Change, bodies: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the VM this change waits for is not known to be deallocated (as the applier decides, from reads)."""
    by_id = {k.lower(): v for k, v in bodies.items()}
    rid = change.resource_id.lower()
    vm_id = str((by_id.get(rid) or {}).get("managedBy") or "") if "/microsoft.compute/disks/" in rid else rid
    if not vm_id:
        return False
    vm = by_id.get(vm_id.lower())
    return (power_state(vm) if vm else None) != "deallocated"


def _items(scan: Report, history: History) -> list[Item]:
    statuses = change_statuses(scan)
    details = {r.change.id: r for r in scan.results}
    pending = {(p.resource_id.lower(), p.policy): p.created for p in history.pending if p.status == "open"}
    items: list[Item] = []
    covered: set[tuple[str, str]] = set()
    for change in scan.plan.changes:
        status = statuses[change.id]
        result = details.get(change.id)
        for policy_id in change.policy_ids:
            key = (change.resource_id.lower(), policy_id)
            covered.add(key)
            waiting = status in (applier.PENDING_APPROVAL, applier.PENDING_DEALLOCATION)
            items.append(
                Item(
                    policy_id=policy_id,
                    resource_id=change.resource_id,
                    status=status,
                    detail=change.summary
                    + (f" ({result.detail})" if result and result.detail and status != applier.APPLIED else ""),
                    before=dict(change.before),
                    after=dict(change.after),
                    irreversible=change.irreversible,
                    also_needs_deallocation=status == applier.PENDING_APPROVAL and DEALLOCATED in change.requires,
                    since=pending.get(key) if waiting else None,
                    code=result.code if result else None,
                )
            )
    for skip in scan.plan.skipped:
        covered.add((skip.resource_id.lower(), skip.policy_id))
        items.append(Item(skip.policy_id, skip.resource_id, _skip_status(skip.reason), skip.detail, reason=skip.reason))
    for finding in scan.findings:
        rid = str(finding.resource.get("id", ""))
        if (rid.lower(), finding.policy.id) not in covered:  # a fix that found nothing to write
            detail = "Non-compliant, but the fix found nothing it can change."
            items.append(Item(finding.policy.id, rid, LEFT_ALONE, detail, reason="nothing-to-do"))
    return items


def compose(
    scan: Report,
    history: History | None = None,
    *,
    policies: Sequence[Policy],
    settings: Settings | None = None,
    now: datetime | None = None,
    groups: Mapping[str, str] | None = None,
) -> ComplianceReport:
    """The report for `scan` (a dry run, or a run that applied its plan) and the ledger's `history`. Pure.

    `policies`: the policies the scan evaluated (only those in `scan.policy_ids` are reported); `groups`: each
    subscription's management group (lower-cased ids), for the roll-up."""
    history = history or History(problem="The ledger was not consulted.")
    modes = dict(settings.modes) if settings else {}
    wanted = {p.lower() for p in scan.policy_ids}
    chosen = [p for p in policies if p.id.lower() in wanted]
    items = _items(scan, history)
    findings: dict[str, set[str]] = {}
    for f in scan.findings:
        findings.setdefault(f.policy.id, set()).add(str(f.resource.get("id", "")).lower())
    order = {s: i for i, s in enumerate(STATUSES)}
    items.sort(key=lambda i: (order[i.status], i.resource_id.lower()))
    by_resource: dict[str, list[Item]] = {}  # each resource's and policy's items, in the items' order: one pass
    by_policy: dict[str, list[Item]] = {}
    for item in items:
        by_resource.setdefault(item.resource_id.lower(), []).append(item)
        by_policy.setdefault(item.policy_id, []).append(item)
    bodies = scan.bodies
    summaries = scan.summaries or {rid: summarize(body, chosen) for rid, body in bodies.items()}
    all_history = [d for rid in summaries for d in history.for_resource(rid)]
    policy_rows = []
    for policy in chosen:
        applies = [rid for rid, s in summaries.items() if policy.id in s.checked]
        policy_rows.append(
            PolicyStatus(
                policy=policy,
                mode=modes.get(policy.id, policy.mode),
                checked=len(applies),
                noncompliant=len(findings.get(policy.id, ())),
                items=tuple(by_policy.get(policy.id, ())),
                history=tuple(d for d in all_history if policy.id in d.policy_ids),
            )
        )
    resources = []
    for rid, s in sorted(summaries.items(), key=lambda kv: (kv[1].type.lower(), kv[0].lower())):
        resources.append(
            ResourceStatus(
                resource_id=rid,
                type=s.type,
                location=s.location,
                checked=tuple(p.id for p in chosen if p.id in s.checked),
                items=tuple(by_resource.get(rid.lower(), ())),
                history=history.for_resource(rid),
            )
        )
    return ComplianceReport(
        scan=scan,
        generated=now or datetime.now(UTC),
        policies=tuple(policy_rows),
        resources=tuple(resources),
        vms=tuple(vm_advice(bodies)),
        history=history,
        notes=tuple(scan.plan.notes),
        groups={k.lower(): v for k, v in (groups or {}).items()},
    )


def generate(
    scope: Scope,
    policies: Sequence[Policy],
    *,
    settings: Settings | None = None,
    azure: Azure | None = None,
    scan_report: Report | None = None,
    env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
    groups: Mapping[str, str] | None = None,
) -> ComplianceReport:
    """The compliance report of `scope`: a fresh read-only scan (or `scan_report`, one already made, such as the
    demo's last run) and, when AzureWebJobsStorage is set, the ledger's history of the resources read; `groups`: each
    subscription's management group, for the roll-up."""
    from remediations.engine.run import scan
    from remediations.settings import Settings

    settings = settings or Settings.from_env(env)
    if scan_report is None:  # streamed: the report keeps each resource's summary, and the VMs' and disks' bodies
        scan_report = scan(
            scope, policies, apply=False, settings=settings, azure=azure, progress=progress, now=now, stream=True,
            summaries=True,
        )  # fmt: skip
    try:
        history = read_history(scan_report.summaries or scan_report.bodies, env)
        return compose(scan_report, history, policies=policies, settings=settings, now=now, groups=groups)
    except BaseException:
        scan_report.close()
        raise


__all__ = [
    "LABELS",
    "STATUSES",
    "ComplianceReport",
    "Done",
    "History",
    "Item",
    "PolicyStatus",
    "ResourceStatus",
    "Rollup",
    "VmAdvice",
    "azure_policy_url",
    "change_statuses",
    "compose",
    "generate",
]
