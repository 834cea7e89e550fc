"""Findings in, an ordered plan out. Pure and deterministic: the same findings and context give the same plan.

    plan([Finding(policy, vault_body), Finding(other_policy, des_body)], ctx) -> Plan

For each finding, in order: a resource that could not be read, an exempt resource (its exemption tag), a policy on
an immutable property, and a policy in audit mode (or without a fix) give a `Skip`; otherwise the policy's fix plans
the changes, `approve` mode adds the `approval` requirement and an irreversible policy marks them irreversible.
Then changes writing the same resource are merged into one write where the API allows it (two PATCHes of a vault
become one PATCH carrying both properties and both policy ids), each fix's `needs` become `depends_on` (a change whose
required dependency is not in the plan is skipped as `blocked`), the changes are ordered so that dependencies come
first (otherwise keeping the findings' order), and a change waiting for an approved dependency needs approval too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from remediations import fixes
from remediations.changes import APPROVAL, REQUIREMENTS, Change, Operation, Plan, PlanContext, Ref, Skip, SkipReason
from remediations.errors import FixDeclined, PlanError
from remediations.policy import exemptions
from remediations.policy.loader import Policy
from remediations.resources import name_of


@dataclass(frozen=True)
class Finding:
    """A resource a policy found non-compliant. `mode` overrides the policy's own; `unreadable` says why the
    resource (or something its fix needs) could not be read, when it could not."""

    policy: Policy
    resource: Mapping[str, Any]
    mode: str | None = None
    unreadable: str | None = None


def plan(findings: Iterable[Finding], ctx: PlanContext) -> Plan:
    """The changes that fix `findings`, in the order to apply them, and the findings left alone with the reason."""
    changes: list[Change] = []
    skipped: list[Skip] = []
    notes: list[str] = []
    for finding in findings:
        _plan_finding(finding, ctx, changes, skipped, notes)
    merged = _merge(changes)
    resolved, blocked = _resolve(merged, skipped)
    ordered = _role_waits(_propagate(_order(resolved)), ctx.settings.role_propagation_seconds)
    return Plan(tuple(ordered), tuple([*skipped, *blocked]), tuple(dict.fromkeys(notes)))


def _plan_finding(f: Finding, ctx: PlanContext, out: list[Change], skipped: list[Skip], notes: list[str]) -> None:
    policy, resource = f.policy, f.resource
    rid = str(resource.get("id", ""))
    fix_name = policy.fix.name if policy.fix else None

    def skip(reason: str, detail: str) -> None:
        skipped.append(Skip(rid, policy.id, reason, detail, fix_name))

    if f.unreadable:
        return skip(SkipReason.CANNOT_READ, f.unreadable)
    known = ctx.policy_ids or (policy.id,)
    decision = exemptions.decide(resource.get("tags"), known, ctx.now.date(), tag_name=ctx.settings.exemption_tag)
    problems = decision.problems if ctx.policy_ids else [p for p in decision.problems if "known policy id" not in p]
    notes.extend(f"{name_of(rid)}: {p}" for p in problems)
    if policy.id in decision.exempt:
        return skip(SkipReason.EXEMPT, decision.exempt[policy.id])
    if policy.immutable:
        return skip(
            SkipReason.IMMUTABLE, f"{policy.title}: this cannot be changed once the resource exists, only reported."
        )
    mode = f.mode or policy.mode
    if policy.fix is None or mode == "audit":
        why = "has no fix" if policy.fix is None else "runs in audit mode"
        return skip(
            SkipReason.AUDIT_ONLY, f"{policy.title}: the policy {why}, so this is reported and nothing is changed."
        )
    params = {**policy.parameters, **policy.fix.parameters}
    try:
        made = fixes.get(policy.fix.name)(resource, params, ctx)
    except FixDeclined as declined:
        return skip(declined.reason, declined.detail)
    for change in made:
        requires = {*change.requires, *((APPROVAL,) if mode == "approve" else ())}
        out.append(
            replace(
                change,
                policy_ids=(policy.id,),
                fixes=(policy.fix.name,),
                requires=tuple(r for r in REQUIREMENTS if r in requires),
                irreversible=change.irreversible or policy.irreversible,
            )
        )
    return None


# --- merging --------------------------------------------------------------------------------------------------------


def _deep_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any] | None:
    """`a` and `b` combined; None when they set the same leaf to different values."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif isinstance(out[key], Mapping) and isinstance(value, Mapping):
            inner = _deep_merge(out[key], value)
            if inner is None:
                return None
            out[key] = inner
        elif out[key] != value:
            return None
    return out


def _union(*groups: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(x for g in groups for x in g))


def _combine(a: Change, b: Change) -> Change | None:
    """One change doing both `a` and `b`, when they write the same target and the API takes both in one body."""
    oa, ob = a.operation, b.operation
    same = (oa.plane, oa.method, oa.path.lower(), oa.api_version) == (
        ob.plane,
        ob.method,
        ob.path.lower(),
        ob.api_version,
    )
    if not same or (oa.method != "PATCH" and oa.body != ob.body):
        return None
    body = _deep_merge(oa.body, ob.body)
    after = _deep_merge(a.after, b.after)
    if body is None or after is None:
        return None
    requires = set(a.requires) | set(b.requires)
    return Change(
        resource_id=a.resource_id,
        summary=a.summary if a.summary == b.summary else f"{a.summary} {b.summary}",
        operation=Operation(oa.method, oa.path, oa.api_version, body, oa.plane, oa.read_path),
        before={**b.before, **a.before},
        after=after,
        verify={**a.verify, **b.verify},
        irreversible=a.irreversible or b.irreversible,
        disruptive=a.disruptive or b.disruptive,
        requires=tuple(r for r in REQUIREMENTS if r in requires),
        needs=_union(a.needs, b.needs),
        policy_ids=_union(a.policy_ids, b.policy_ids),
        fixes=_union(a.fixes, b.fixes),
    )


def _merge(changes: list[Change]) -> list[Change]:
    out: list[Change] = []
    for change in changes:
        for i, earlier in enumerate(out):
            combined = _combine(earlier, change)
            if combined is not None:
                out[i] = combined
                break
        else:
            out.append(change)
    return out


# --- dependencies ---------------------------------------------------------------------------------------------------


def _resolve(changes: list[Change], skipped: list[Skip]) -> tuple[list[Change], list[Skip]]:
    """Turn `needs` into `depends_on`; a change whose required dependency is not planned is blocked (and so are
    the changes needing it, in turn)."""
    live = list(changes)
    blocked: list[Skip] = []
    while True:
        by_fix = {(c.resource_id.lower(), fix): c for c in live for fix in c.fixes}
        stuck = [
            (c, ref)
            for c in live
            for ref in c.needs
            if ref.required and (ref.resource_id.lower(), ref.fix) not in by_fix
        ]
        if not stuck:
            break
        for change, ref in stuck:
            if change not in live:
                continue
            live.remove(change)
            why = _why_missing(ref, [*skipped, *blocked])
            detail = (
                f"{change.summary} It needs {ref.fix} on {name_of(ref.resource_id)} first, not in this plan ({why})."
            )
            blocked.extend(
                Skip(change.resource_id, p, SkipReason.BLOCKED, detail, f)
                for p, f in zip(change.policy_ids, change.fixes, strict=False)
            )
    by_fix = {(c.resource_id.lower(), fix): c for c in live for fix in c.fixes}
    resolved = []
    for c in live:
        deps = [by_fix[(r.resource_id.lower(), r.fix)].id for r in c.needs if (r.resource_id.lower(), r.fix) in by_fix]
        resolved.append(replace(c, depends_on=_union(c.depends_on, [d for d in deps if d != c.id]), needs=()))
    return resolved, blocked


def _why_missing(ref: Ref, skips: list[Skip]) -> str:
    wanted = ref.resource_id.lower()
    found = next((s for s in skips if s.resource_id.lower() == wanted and s.fix == ref.fix), None)
    return f"{found.reason}: {found.detail.rstrip('.')}" if found else "it was not evaluated in this run"


def _order(changes: list[Change]) -> list[Change]:
    """Dependencies first; otherwise the original order (a stable topological sort)."""
    remaining = list(changes)
    done: set[str] = set()
    ordered: list[Change] = []
    while remaining:
        ready = next((c for c in remaining if all(d in done for d in c.depends_on)), None)
        if ready is None:
            raise PlanError(f"changes depend on each other in a cycle: {', '.join(c.id for c in remaining)}")
        remaining.remove(ready)
        done.add(ready.id)
        ordered.append(ready)
    return ordered


def _propagate(ordered: list[Change]) -> list[Change]:
    """A change that waits for a change needing approval cannot go ahead of that approval."""
    out: list[Change] = []
    by_id: dict[str, Change] = {}
    for change in ordered:
        if APPROVAL not in change.requires and any(APPROVAL in by_id[d].requires for d in change.depends_on):
            change = replace(change, requires=tuple(r for r in REQUIREMENTS if r in {*change.requires, APPROVAL}))
        by_id[change.id] = change
        out.append(change)
    return out


def _role_waits(ordered: list[Change], window: float) -> list[Change]:
    """A change that depends on a new role assignment says how long it may wait for the role to take effect (Azure
    takes up to `window` seconds; the applier's `waiting-for-role`)."""
    grants = {
        c.id for c in ordered if "/providers/microsoft.authorization/roleassignments/" in c.operation.path.lower()
    }
    if window <= 0 or not grants:
        return ordered
    note = f" It waits up to {window / 60:g} minutes for the role to take effect."
    return [replace(c, summary=c.summary + note) if grants & set(c.depends_on) else c for c in ordered]
