"""read -> evaluate -> plan -> apply, for a scope (a sweep) or one resource (an event).

    report = scan(Scope(("<subscription>",)), load_policies(Path("policies")), apply=False)
    report.findings, report.plan, report.results, report.compliant

Evaluation is `policy.noncompliant(body)` for every policy that applies to every body read in scope; a body whose
related resources could not be read gives, for each policy whose condition reads them, a finding marked
`unreadable` (no verdict) unless another member of the condition's `allOf` is false without them (compliant); a
non-compliant body whose fix needs what could not be read is marked `fix_unreadable` (the verdict stands). The planner
skips both as `cannot-read`: Cryptward never acts on what it could not read. Nothing outside the scope is
evaluated, and the applier refuses writes outside it. With `apply=False` nothing is written.

In a sweep there is no triggering event, so the owner a fix names (kv-owner-tag) is the identity ARM records as
having last changed the resource (`systemData.lastModifiedBy`); an event passes its own caller.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from remediations import fixes
from remediations.azure import Azure
from remediations.changes import Caller, Plan, PlanContext, Rows
from remediations.engine import applier, azexemptions, planner, prices, streamed
from remediations.engine.keyroles import read_key_roles
from remediations.engine.planner import Finding
from remediations.engine.reader import RELATED, Needs, Reading, Scope, block_of, read_resource, read_scope
from remediations.engine.related import Related, read_related
from remediations.engine.spool import Spool
from remediations.engine.streamed import Summary
from remediations.engine.vaultextras import read_vault_extras
from remediations.engine.vaultkeys import VaultKeys, read_vault_keys, wanted
from remediations.errors import ConditionError, UnknownPolicyError
from remediations.policy import aliases
from remediations.policy.conditions import compile_condition
from remediations.policy.loader import Policy
from remediations.resources import get
from remediations.settings import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Report:
    """One scan: what was read and evaluated, what is non-compliant, the plan, and what applying it did."""

    scope: Scope
    policy_ids: tuple[str, ...]
    resources: int  # bodies evaluated (in scope)
    evaluations: int  # (policy, resource) pairs evaluated
    findings: Sequence[Finding]  # a tuple, or a streamed scan's spooled list: iterate it, do not index it
    plan: Plan
    results: tuple[applier.Result, ...] = ()
    applied: bool = False  # whether apply was asked for
    calls: dict[str, int] = field(default_factory=dict)  # HTTP requests by method
    seconds: float = 0.0
    # The bodies evaluated, by id (what the compliance report counts and advises on); not part of `to_dict`.
    bodies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False, compare=False)
    gone: frozenset[str] = frozenset()  # lower-cased ids asked for that Azure says do not exist
    # A streamed scan's findings and skips are in this spool's private temporary files (engine/spool.py): read them
    # before `close`. None when they are held in memory.
    spool: Spool | None = field(default=None, repr=False, compare=False)
    # A streamed scan asked for summaries: each body evaluated, by id (what the compliance report lists of it).
    summaries: Mapping[str, Summary] = field(default_factory=dict, repr=False, compare=False)

    @property
    def compliant(self) -> bool:
        return not self.findings

    def close(self) -> None:
        """Remove a streamed scan's spooled findings and skips (nothing to do for one held in memory)."""
        if self.spool is not None:
            self.spool.close()

    @property
    def writes(self) -> int:
        return sum(n for method, n in self.calls.items() if method != "GET")

    def to_dict(self, rows: Rows | None = None) -> dict[str, Any]:
        """`rows`: how each list is made (see `Plan.to_dict`)."""
        each = rows or (lambda items, to_dict: [to_dict(i) for i in items])
        return {
            "scope": {"subscriptions": list(self.scope.subscriptions), "resourceGroup": self.scope.resource_group},
            "policies": list(self.policy_ids),
            "resources": self.resources,
            "evaluations": self.evaluations,
            "compliant": self.compliant,
            "findings": each(self.findings, finding_dict),
            "plan": self.plan.to_dict(rows),
            "applied": self.applied,
            "results": each(self.results, applier.Result.to_dict),
            "calls": dict(self.calls),
        }


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "resourceId": str(f.resource.get("id", "")),
        "policyId": f.policy.id,
        "title": f.policy.title,
        "severity": f.policy.severity,
        "mode": f.mode or f.policy.mode,
        "unreadable": f.unreadable,
        "fixUnreadable": f.fix_unreadable,
    }


def select(policies: Sequence[Policy], ids: Collection[str] | None) -> list[Policy]:
    """The policies named by `ids` (all when empty); `UnknownPolicyError` listing the valid ids otherwise."""
    if not ids:
        return list(policies)
    by_id = {p.id.lower(): p for p in policies}
    unknown = [i for i in ids if i.lower() not in by_id]
    if unknown:
        raise UnknownPolicyError(unknown, [p.id for p in policies])
    return [by_id[i.lower()] for i in dict.fromkeys(ids)]


def configure(policies: Iterable[Policy], settings: Settings) -> list[Policy]:
    """The policies with the operator's settings applied: the owner tag name of kv-owner-tag."""
    out = []
    for policy in policies:
        tag = policy.parameters.get("tagName")
        if policy.fix and policy.fix.name == "kv-owner-tag" and tag is not None and tag != settings.owner_tag:
            params = {**policy.parameters, "tagName": settings.owner_tag}
            condition = compile_condition(
                policy.condition.source, parameters=params, resource_type=policy.resource_type
            )
            policy = replace(policy, parameters=params, condition=condition)
        out.append(policy)
    return out


def evaluate(
    reading: Reading,
    policies: Sequence[Policy],
    *,
    modes: dict[str, str] | None = None,
    now: datetime | None = None,
    related: Related | None = None,
    vault_keys: VaultKeys | None = None,
) -> tuple[list[Finding], int]:
    """Findings (non-compliant, or not decidable for lack of a read) and the number of evaluations made. `related`:
    what the existence checks (AuditIfNotExists / DeployIfNotExists) found, by `read_related`; `vault_keys`: the keys
    only `Microsoft.KeyVault.Data` definitions evaluate, by `read_vault_keys`."""
    findings: list[Finding] = []
    evaluations = _walk(reading, policies, findings.append, modes, now, related, vault_keys)
    return findings, evaluations


def _walk(
    reading: Reading,
    policies: Sequence[Policy],
    take: Callable[[Finding], None],
    modes: Mapping[str, str] | None,
    now: datetime | None,
    related: Related | None,
    vault_keys: VaultKeys | None,
    done: Callable[[str], None] | None = None,
) -> int:
    """`evaluate`, handing each finding to `take` as it is made, in the same order; `done(id)` after each body of
    `reading.resources` and of `vault_keys` is evaluated and its findings taken (it may drop the body)."""
    found: list[Finding] = []
    judge = _Judge(found, modes or {}, now, related)

    def hand() -> None:
        for f in found:
            take(f)
        found.clear()

    gc.freeze()  # what was read lives on: the collections evaluation triggers need not walk every body (as planning)
    try:
        for rid in list(reading.resources) if done else reading.resources:
            judge(reading.resources[rid], policies, reading.reasons(rid))
            hand()
            if done:
                done(rid)
        if vault_keys is not None:
            data_plane = wanted(policies)
            for key_id in list(vault_keys.bodies) if done else vault_keys.bodies:
                judge(vault_keys.bodies[key_id], data_plane, {})
                hand()
                if done:
                    vault_keys.bodies.pop(key_id)
            for rid, why in vault_keys.unreadable.items():
                stub = {
                    "id": rid,
                    "name": rid.rsplit("/", 1)[-1],
                    "type": aliases.KEY if "/keys/" in rid else aliases.VAULT,
                }
                for p in data_plane:
                    take(Finding(p, stub, judge.modes.get(p.id), f"could not read: {why}"))
    finally:
        gc.unfreeze()
    return judge.evaluations


@dataclass
class _Judge:
    """Evaluates one body against policies, appending findings."""

    findings: list[Finding]
    modes: Mapping[str, str]
    now: datetime | None
    related: Related | None
    evaluations: int = 0

    def __call__(self, body: Mapping[str, Any], policies: Sequence[Policy], reasons: Mapping[str, str]) -> None:
        now, related = self.now, self.related
        for policy in policies:
            if not policy.applies_to(body):
                continue
            mode = self.modes.get(policy.id)
            needed = {block_of(f) for f in policy.condition.fields if aliases.is_cryptward(f)}
            missing = [reasons[""]] if "" in reasons else [reasons[b] for b in sorted(needed) if b in reasons]
            if missing and "" not in reasons:
                # unknown: a block that could not be read, or one the reader did not fill (it may derive from one
                # that could not be read, as a set's key access derives from its vault)
                filled = {str(k).lower() for k in body.get(aliases.CRYPTWARD) or {}}
                unknown = {b for b in needed if b in reasons or b not in filled}

                def unread(f: str, unknown: set[str] = unknown) -> bool:
                    return aliases.is_cryptward(f) and block_of(f) in unknown

                self.evaluations += 1
                if policy.condition.fails_without(policy.subject(body), unread, now=now):
                    continue  # compliant whatever the unread blocks hold: another member of its allOf is false
            if missing:
                why = "could not read: " + "; ".join(dict.fromkeys(missing))
                self.findings.append(Finding(policy, body, mode, why))
                continue
            around = related.of(body, policy.existence) if related and policy.existence else None
            if isinstance(around, str) and _matches(policy, body, now):
                self.findings.append(Finding(policy, body, mode, f"could not read: {around}"))
                continue
            self.evaluations += 1
            try:
                if policy.noncompliant(body, now=now, related=None if isinstance(around, str) else around):
                    # What only the fix reads (a set's vault, a VM's disks, a feature) does not decide the verdict
                    # the body gives; it keeps the fix from being planned.
                    fix_needs = {RELATED, *(block_of(f) for f in fixes.reads(policy.fix.name))} if policy.fix else set()
                    fix_missing = "; ".join(dict.fromkeys(reasons[b] for b in sorted(fix_needs) if b in reasons))
                    blocked = f"could not read what the fix needs: {fix_missing}" if fix_missing else None
                    self.findings.append(Finding(policy, body, mode, fix_unreadable=blocked))
            except ConditionError as e:
                self.findings.append(Finding(policy, body, mode, f"the condition cannot be evaluated: {e}"))


def _matches(policy: Policy, body: Mapping[str, Any], now: datetime | None) -> bool:
    try:
        return policy.condition.matches(policy.subject(body), now=now)
    except ConditionError:
        return True  # the evaluation reports it


def callers(reading: Reading) -> dict[str, Caller]:
    """Per resource, the identity ARM records as its last modifier."""
    out: dict[str, Caller] = {}
    made: dict[tuple[bool, str], Caller] = {}  # one Caller per identity, shared by every resource it changed last
    for rid, body in reading.resources.items():
        who = get(body, "systemData.lastModifiedBy") or get(body, "systemData.createdBy")
        kind = str(get(body, "systemData.lastModifiedByType") or get(body, "systemData.createdByType") or "")
        if who:
            key = (kind.lower() == "user", str(who))
            if key not in made:
                made[key] = Caller(upn=key[1]) if key[0] else Caller(appid=key[1])
            out[rid] = made[key]
    return out


def scan(
    scope: Scope,
    policies: Sequence[Policy],
    *,
    apply: bool = False,
    settings: Settings | None = None,
    azure: Azure | None = None,
    progress: Progress | None = None,
    resource_id: str | None = None,
    caller: Caller | None = None,
    ade_history: Collection[str] = (),
    approved: Collection[str] = (),
    only: Collection[str] | None = None,
    now: datetime | None = None,
    stream: bool = False,
    summaries: bool = False,
) -> Report:
    """Read `scope` (or only `resource_id`, which must be inside it), evaluate `policies`, plan, and with `apply`
    write the plan (with `only`, just the changes with those ids: a person's approval applies what was approved and
    nothing else). Raises `AzureAccessError` / `CredentialError` when the scope itself cannot be read.

    With `stream` (a scope, not one resource), findings and skips go to a private temporary file as they are made
    and each body is dropped once planned (engine/streamed.py): the report carries no `bodies`, and must be closed. With
    `summaries` too, it carries each body's `Summary`, and the bodies of the VMs, scale sets and disks (the
    compliance report's VM advice and power states)."""
    settings = settings or Settings.from_env()
    azure = azure or Azure.from_env()
    now = now or datetime.now(UTC)
    started, before = time.perf_counter(), dict(azure.calls)
    policies = configure(policies, settings)
    needs = Needs.of(policies)
    if resource_id is not None and not scope.contains(resource_id):
        reading = Reading()
    elif resource_id is not None:
        reading = read_resource(azure, resource_id, needs, ade_history=ade_history, progress=progress)
    else:
        reading = read_scope(azure, scope, needs, ade_history=ade_history, progress=progress)
    read_vault_extras(azure, reading, needs, progress=progress, policies=policies)
    read_key_roles(azure, reading, progress=progress)  # roles other than the built-in key roles, by definition
    if azexemptions.wanted(policies):  # Azure Policy exemptions of the policies' twins, beside the tag
        azexemptions.attach(azure, reading.resources, progress)
    around = read_related(azure, reading.resources, policies, now=now, progress=progress)
    keys = read_vault_keys(azure, reading, policies, scope.contains, progress=progress) if resource_id is None else None
    streaming = stream and resource_id is None
    found: Sequence[Finding] = ()
    evaluations = 0
    if not streaming:
        found, evaluations = evaluate(
            reading, policies, modes=dict(settings.modes), now=now, related=around, vault_keys=keys
        )
    # The prices the notices quote: of the findings' regions, or, when a streamed scan plans each finding as it is
    # made, of every region a pricing policy applies to (one quote a region and day)
    if streaming:
        quotes = prices.wanted_before(reading.resources.values(), policies, settings.modes)
    else:
        quotes = prices.wanted(found)
    ctx = PlanContext(
        now=now,
        prices=prices.read(azure, quotes, now, progress),
        resources=reading.related,
        caller=caller,
        settings=settings.plan,
        policy_ids=tuple(p.id for p in policies),
        callers={} if caller else callers(reading),
    )
    resources = len(reading.resources)
    spool: Spool | None = None
    listed: dict[str, Summary] = {}
    kept: dict[str, dict[str, Any]] = {}
    if streaming:
        spool = Spool()
        try:
            summary = streamed.summarizer(policies, listed, kept) if summaries else None

            def walk(take: Callable[[Finding], None], done: Callable[[str], None]) -> int:
                return _walk(reading, policies, take, dict(settings.modes), now, around, keys, done)

            found, plan, evaluations = streamed.stream(reading, policies, walk, ctx, spool, apply, keys, summary)
        except BaseException:
            spool.close()
            raise
    else:
        plan = planner.plan(found, ctx)
    if reading.notes:  # how the scope was read (Resource Graph unavailable: ARM instead) reaches the report
        plan = replace(plan, notes=tuple(dict.fromkeys((*reading.notes, *plan.notes))))
    results: tuple[applier.Result, ...] = ()
    writes = plan if only is None else replace(plan, changes=tuple(c for c in plan.changes if c.id in set(only)))
    if apply and writes.changes:
        if progress:
            progress(f"applying {len(writes.changes)} change(s)")
        try:
            results = applier.apply(
                writes,
                azure,
                scope=scope,
                approved=approved,
                fresh=True,
                known=reading.related,
                role_propagation_seconds=settings.plan.role_propagation_seconds,
            )
        except BaseException:
            if spool is not None:
                spool.close()
            raise
    calls = {m: n - before.get(m, 0) for m, n in azure.calls.items() if n - before.get(m, 0)}
    return Report(
        scope=scope,
        policy_ids=tuple(p.id for p in policies),
        resources=resources,
        evaluations=evaluations,
        findings=found if spool is not None else tuple(found),
        plan=plan,
        results=results,
        applied=apply,
        calls=calls,
        seconds=time.perf_counter() - started,
        bodies=kept if spool is not None else reading.resources,
        gone=frozenset(reading.gone),
        spool=spool,
        summaries=listed,
    )


__all__ = ["Report", "configure", "evaluate", "finding_dict", "scan", "select"]
