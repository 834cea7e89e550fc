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

import gc
import heapq
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

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
from remediations.engine.shared import Shared
from remediations.errors import FixDeclined, PlanError
from remediations.fixes import modify
from remediations.policy import exemptions
from remediations.policy.loader import Policy
from remediations.resources import EXEMPTIONS_BLOCK, EXEMPTIONS_UNREADABLE, name_of


@dataclass(frozen=True, slots=True)
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
    gc.freeze()  # what was read lives on: keep the collections planning triggers from walking every body again
    try:
        return _plan(findings, ctx)
    finally:
        gc.unfreeze()


def _plan(findings: Iterable[Finding], ctx: PlanContext) -> Plan:
    planner = Planner(ctx)
    for finding in findings:
        planner.add(finding)
    return planner.finish()


class Planner:
    """`plan`, one finding at a time: `add` each finding as it is made (its resource's body may be dropped once it is
    added: a change keeps only what it writes), then `finish` merges, resolves and orders the changes. `skipped`:
    where the skips go (a list, or a spooled list, engine/spool.py, that holds none in memory); `finish` adds the
    blocked ones after them, so the plan's skips are the same, in the same order, either way."""

    def __init__(self, ctx: PlanContext, skipped: MutableSkips | None = None) -> None:
        self.ctx = ctx
        self.changes: list[Change] = []
        self.skipped: MutableSkips = skipped if skipped is not None else []
        self.notes: list[str] = []
        self.decisions: dict[str, exemptions.Decision] = {}  # by resource id: one reading of its exemption tag
        self.share = Shared()

    def add(self, finding: Finding) -> None:
        _plan_finding(finding, self.ctx, self.changes, self.skipped, self.notes, self.decisions, self.share)

    def finish(self) -> Plan:
        self.decisions.clear()  # one per resource: not held while the changes are merged and ordered
        changes, self.changes = self.changes, []
        merged = _conflicts(_merge(changes), self.skipped)
        del changes
        resolved, blocked = _resolve(merged, self.skipped)
        ordered = _role_waits(_propagate(_order(resolved)), self.ctx.settings.role_propagation_seconds)
        skipped: Sequence[Skip]
        if isinstance(self.skipped, list):
            skipped = tuple([*self.skipped, *blocked])
        else:
            self.skipped.extend(blocked)
            assert isinstance(self.skipped, Sequence), "a spooled list is a Sequence"
            skipped = self.skipped
        return Plan(tuple(ordered), skipped, tuple(dict.fromkeys(self.notes)))


class MutableSkips(Protocol):
    """What the planner does with its skips: a list, or a spooled list (engine/spool.py)."""

    def append(self, item: Skip, /) -> None: ...
    def extend(self, items: Iterable[Skip], /) -> None: ...
    def __iter__(self) -> Iterator[Skip]: ...
    def __len__(self) -> int: ...


def _plan_finding(
    f: Finding,
    ctx: PlanContext,
    out: list[Change],
    skipped: MutableSkips,
    notes: list[str],
    decisions: dict[str, exemptions.Decision] | None = None,
    share: Shared | None = None,
) -> None:
    policy, resource = f.policy, f.resource
    rid = str(resource.get("id", ""))
    fix_name = policy.fix.name if policy.fix else None

    def skip(reason: str, detail: str) -> None:
        # The same sentence for every resource a policy only reports: one string shared, not one per finding.
        skipped.append(Skip(rid, policy.id, reason, sys.intern(detail), fix_name))

    if f.unreadable:
        return skip(SkipReason.CANNOT_READ, f.unreadable)
    known = ctx.policy_ids or (policy.id,)
    decision = (decisions or {}).get(rid)
    if decision is None:
        decision = exemptions.decide(resource.get("tags"), known, ctx.now.date(), tag_name=ctx.settings.exemption_tag)
        if not decision.exempt and not decision.problems:
            decision = _NOTHING  # most resources: one shared decision, not one per resource
        if decisions is not None and ctx.policy_ids:  # `known` is then the same for every finding
            decisions[rid] = decision
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
        said = " ".join(_said(policy, resource))
        return skip(
            SkipReason.AUDIT_ONLY,
            f"{policy.title}: the policy {why}, so this is reported and nothing is changed."
            + (f" {said}" if said else ""),
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
    one = share or Shared()
    for change in made:
        requires = {*change.requires, *((APPROVAL,) if mode == "approve" else ())}
        op, after = change.operation, one(change.after)
        out.append(
            replace(
                change,
                policy_ids=(policy.id,),
                fixes=(fix_name,),
                requires=tuple(r for r in REQUIREMENTS if r in requires),
                irreversible=change.irreversible or policy.irreversible,
                operation=replace(op, body=one(op.body)),
                before=one(change.before),
                after=after,
                verify=after if change.verify is change.after else one(change.verify),
            )
        )
    return None


def _said(policy: Policy, resource: Mapping[str, Any]) -> list[str]:
    """What the `cryptward` blocks the condition reads say of themselves (entries with a `say` sentence: the
    access review names each assignment and the recommended role), for the notice of a report-only finding."""
    blocks = {
        f.split(".")[1].split("[")[0].lower() for f in policy.condition.fields if f.lower().startswith("cryptward.")
    }
    block = resource.get("cryptward")
    if not blocks or not isinstance(block, Mapping):
        return []
    out: list[str] = []
    for name, entries in block.items():
        if str(name).lower() in blocks and isinstance(entries, list):
            out += [str(e["say"]) for e in entries if isinstance(e, Mapping) and e.get("say")]
    return out


# Azure effects whose own remedy Cryptward does not run: the finding says so.
_NOT_RUN = {
    "DeployIfNotExists": "is a DeployIfNotExists definition (Cryptward does not deploy its template)",
}


_NOTHING = exemptions.Decision({}, ())


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


def _target(change: Change) -> tuple[str, str, str, str, str]:
    """The resource a change is about and what it writes: only changes with the same key can combine (`_combine`
    checks the rest). The resource is part of it: many resources' changes may write one target (every VM's
    registration of its subscription's EncryptionAtHost feature), and comparing each with all the others made
    planning quadratic in them."""
    op = change.operation
    return (change.resource_id.lower(), op.plane, op.method, op.path.lower(), op.api_version)


def _merge(changes: list[Change]) -> list[Change]:
    """Each change joins the first earlier change of the same target it combines with, else starts its own: one
    pass over the changes, comparing each only with the few writing its target (changes of different targets never
    combine)."""
    out: list[Change] = []
    # By the target's hash, not the target: the table lives while every change and skip of the estate does, and
    # holding each change's lower-cased id and path in it added a fifth to planning's peak. `_combine` compares the
    # targets themselves, so changes whose targets only share a hash never combine.
    by_target: dict[int, list[int]] = {}
    for change in changes:
        slots = by_target.setdefault(hash(_target(change)), [])
        for i in slots:
            combined = _combine(out[i], change)
            if combined is not None:
                out[i] = combined
                break
        else:
            slots.append(len(out))
            out.append(change)
    return out


def _conflicts(changes: list[Change], skipped: MutableSkips) -> list[Change]:
    """Writes of one target by different definitions, one of them a Modify, that could not be merged into one write:
    none runs (each could undo the other), as Azure's `conflictEffect` decides when Modify operations conflict (Learn,
    Modify effect). Conservative: two tag writes of different tags that could not merge (a Merge and a Delete) also
    stand down."""
    if not any(MODIFY_FIX in c.fixes for c in changes):
        return changes  # no Modify: nothing can conflict (and no index of every change's target is made)
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


def _resolve(changes: list[Change], skipped: MutableSkips) -> tuple[list[Change], list[Skip]]:
    """Turn `needs` into `depends_on`; a change whose required dependency is not planned is blocked (and so are
    the changes needing it, in turn). One index of the changes by (resource, fix): linear in the plan."""
    live = list(changes)
    blocked: list[Skip] = []
    skips: dict[tuple[str, str | None], Skip] = {}  # the skips by (resource, fix): made when a change is stuck

    def index(among: list[Change]) -> dict[int, list[Change]]:
        """By the hash of (lower-cased resource id, fix), so no lower-cased id is held per change; `made` checks."""
        out: dict[int, list[Change]] = {}
        for c in among:
            for fix in c.fixes:
                out.setdefault(hash((c.resource_id.lower(), fix)), []).append(c)
        return out

    def made(ref: Ref, of: Change, by_fix: Mapping[int, list[Change]]) -> list[Change]:
        """The changes `ref` names: fix `ref.fix` on `ref.resource_id`, other than `of` itself (a fix may make two
        changes on one resource, the second needing the first)."""
        rid = ref.resource_id.lower()
        return [
            c
            for c in by_fix.get(hash((rid, ref.fix)), ())
            if c is not of and ref.fix in c.fixes and c.resource_id.lower() == rid
        ]

    by_fix = index(live)
    indexed = False
    while True:
        stuck = [(c, ref) for c in live for ref in c.needs if ref.required and not made(ref, c, by_fix)]
        if not stuck:
            break
        if not indexed:
            for s in skipped:
                skips.setdefault((s.resource_id.lower(), s.fix), s)
            indexed = True
        gone: set[int] = set()
        for change, ref in stuck:
            if id(change) in gone:
                continue
            gone.add(id(change))
            why = _why_missing(ref, skips)
            detail = (
                f"{change.summary} It needs {ref.fix} on {name_of(ref.resource_id)} first, not in this plan ({why})."
            )
            more = [
                Skip(change.resource_id, p, SkipReason.BLOCKED, detail, f)
                for p, f in zip(change.policy_ids, change.fixes, strict=False)
            ]
            blocked.extend(more)
            for s in more:
                skips.setdefault((s.resource_id.lower(), s.fix), s)
        live = [c for c in live if id(c) not in gone]
        by_fix = index(live)
    resolved = []
    for c in live:
        if not c.needs:  # nothing to resolve: the same change (a copy of each would only be garbage to collect)
            resolved.append(c)
            continue
        deps = [d.id for r in c.needs for d in made(r, c, by_fix)]
        resolved.append(replace(c, depends_on=_union(c.depends_on, [d for d in deps if d != c.id]), needs=()))
    return resolved, blocked


def _why_missing(ref: Ref, skips: Mapping[tuple[str, str | None], Skip]) -> str:
    found = skips.get((ref.resource_id.lower(), ref.fix))
    return f"{found.reason}: {found.detail.rstrip('.')}" if found else "it was not evaluated in this run"


def _order(changes: list[Change]) -> list[Change]:
    """Dependencies first; otherwise the original order (a stable topological sort: each step takes the first
    change, in the original order, whose dependencies are all done)."""
    waiting: dict[str, list[int]] = {}
    unmet: list[int] = []
    ready: list[int] = []
    for i, c in enumerate(changes):
        deps = set(c.depends_on)
        unmet.append(len(deps))
        for d in deps:
            waiting.setdefault(d, []).append(i)
        if not deps:
            ready.append(i)
    heapq.heapify(ready)
    done: set[str] = set()
    ordered: list[Change] = []
    while ready:
        change = changes[heapq.heappop(ready)]
        ordered.append(change)
        if change.id in done:
            continue
        done.add(change.id)
        for j in waiting.pop(change.id, ()):
            unmet[j] -= 1
            if unmet[j] == 0:
                heapq.heappush(ready, j)
    if len(ordered) < len(changes):
        emitted = {id(c) for c in ordered}
        remaining = [c for c in changes if id(c) not in emitted]
        raise PlanError(f"changes depend on each other in a cycle: {', '.join(c.id for c in remaining)}")
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
