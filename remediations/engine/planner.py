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
from remediations.changes import (
    APPROVAL,
    MODIFY_FIX,
    REQUIREMENTS,
    Change,
    Operation,
    Plan,
    PlanContext,
    Ref,
    Skip,
    SkipReason,
)
from remediations.errors import FixDeclined, PlanError
from remediations.fixes import modify
from remediations.policy import exemptions
from remediations.policy.loader import Policy
from remediations.resources import EXEMPTIONS_BLOCK, EXEMPTIONS_UNREADABLE, name_of


@dataclass(frozen=True)
class Finding:
    """A resource a policy found non-compliant. `mode` overrides the policy's own; `unreadable` says why the
    verdict could not be decided (what the condition reads could not be read); `fix_unreadable` says why the fix
    cannot be planned although the verdict stands (what only the fix reads could not be read)."""

    policy: Policy
    resource: Mapping[str, Any]
    mode: str | None = None
    unreadable: str | None = None
    fix_unreadable: str | None = None


def plan(findings: Iterable[Finding], ctx: PlanContext) -> Plan:
    """The changes that fix `findings`, in the order to apply them, and the findings left alone with the reason."""
    changes: list[Change] = []
    skipped: list[Skip] = []
    notes: list[str] = []
    for finding in findings:
        _plan_finding(finding, ctx, changes, skipped, notes)
    merged = _conflicts(_merge(changes), skipped)
    resolved, blocked = _resolve(merged, skipped)
    ordered = _propagate(_order(resolved))
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
    if policy.references.azure_policy:  # Azure Policy exemptions of its twin (engine/azexemptions.py)
        block = resource.get("cryptward") or {}
        if block.get(EXEMPTIONS_UNREADABLE):
            why_not = block[EXEMPTIONS_UNREADABLE]
            return skip(SkipReason.CANNOT_READ, f"the Azure Policy exemptions could not be read: {why_not}")
        unread = next((r for r in block.get(EXEMPTIONS_BLOCK) or [] if r.get("unreadable")), None)
        if unread:
            return skip(
                SkipReason.CANNOT_READ, f"Azure Policy exemption {unread.get('name')!r}: {unread['unreadable']}"
            )
        why, az_problems = exemptions.azure_exemption(
            policy.references.azure_policy, block.get(EXEMPTIONS_BLOCK) or [], ctx.now
        )
        notes.extend(f"{name_of(rid)}: {p}" for p in az_problems)
        if why:
            return skip(SkipReason.EXEMPT, why)
    if policy.immutable:
        return skip(
            SkipReason.IMMUTABLE, f"{policy.title}: this cannot be changed once the resource exists, only reported."
        )
    mode = (f.mode or policy.mode) if policy.enforced else "audit"  # an assignment's DoNotEnforce: never fixed
    runs_modify = policy.fix is None and policy.modify is not None
    if (policy.fix is None and not runs_modify) or mode == "audit":
        why = "has no fix" if policy.fix is None and not runs_modify else "runs in audit mode"
        if not policy.enforced:
            why = "is assigned with enforcementMode DoNotEnforce"
        elif policy.fix is None and policy.effect in _NOT_RUN:
            why = _NOT_RUN[policy.effect]
        return skip(
            SkipReason.AUDIT_ONLY, f"{policy.title}: the policy {why}, so this is reported and nothing is changed."
        )
    if f.fix_unreadable:  # the verdict stands; the fix is never planned on what could not be read
        return skip(SkipReason.CANNOT_READ, f.fix_unreadable)
    fix_name = policy.fix.name if policy.fix else MODIFY_FIX
    try:
        if policy.fix is None:
            made = modify.plan(policy, resource, ctx)
        else:
            made = fixes.get(policy.fix.name)(resource, {**policy.parameters, **policy.fix.parameters}, ctx)
    except FixDeclined as declined:
        skip(declined.reason, declined.detail)
        made = list(declined.changes)  # what the declined change waits for is planned all the same
    for change in made:
        requires = {*change.requires, *((APPROVAL,) if mode == "approve" else ())}
        out.append(
            replace(
                change,
                policy_ids=(policy.id,),
                fixes=(fix_name,),
                requires=tuple(r for r in REQUIREMENTS if r in requires),
                irreversible=change.irreversible or policy.irreversible,
            )
        )
    return None


# Azure effects whose own remedy Cryptward does not run: the finding says so.
_NOT_RUN = {
    "DeployIfNotExists": "is a DeployIfNotExists definition (Cryptward does not deploy its template)",
}


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
    same = (a.resource_id.lower(), oa.plane, oa.method, oa.path.lower(), oa.api_version) == (
        b.resource_id.lower(),
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


def _conflicts(changes: list[Change], skipped: list[Skip]) -> list[Change]:
    """Writes of one target by different definitions, one of them a Modify, that could not be merged into one write:
    none runs (each could undo the other), as Azure's `conflictEffect` decides when Modify operations conflict (Learn,
    Modify effect). Conservative: two tag writes of different tags that could not merge (a Merge and a Delete) also
    stand down."""
    targets: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        targets.setdefault((change.operation.method, change.operation.path.lower()), []).append(change)
    clash = {
        c.id
        for group in targets.values()
        if len({c.policy_ids for c in group}) > 1 and any(MODIFY_FIX in c.fixes for c in group)
        for c in group
    }
    for change in changes:
        if change.id in clash:
            others = ", ".join(p for c in changes if c.id in clash and c.id != change.id for p in c.policy_ids)
            detail = f"{change.summary} It conflicts with {others}, which set the same properties differently."
            skipped.extend(
                Skip(change.resource_id, p, SkipReason.CONFLICT, detail, f)
                for p, f in zip(change.policy_ids, change.fixes, strict=False)
            )
    return [c for c in changes if c.id not in clash]


# --- dependencies ---------------------------------------------------------------------------------------------------


def _resolve(changes: list[Change], skipped: list[Skip]) -> tuple[list[Change], list[Skip]]:
    """Turn `needs` into `depends_on`; a change whose required dependency is not planned is blocked (and so are
    the changes needing it, in turn)."""
    live = list(changes)
    blocked: list[Skip] = []

    def made(ref: Ref, of: Change, among: list[Change]) -> list[Change]:
        """The changes `ref` names: fix `ref.fix` on `ref.resource_id`, other than `of` itself (a fix may make two
        changes on one resource, the second needing the first)."""
        wanted = ref.resource_id.lower()
        return [c for c in among if c is not of and c.resource_id.lower() == wanted and ref.fix in c.fixes]

    while True:
        stuck = [(c, ref) for c in live for ref in c.needs if ref.required and not made(ref, c, live)]
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
    resolved = []
    for c in live:
        deps = [d.id for r in c.needs for d in made(r, c, live)]
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
