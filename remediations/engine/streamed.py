"""A scan streamed once read (`run.scan(..., stream=True)`: `cryptward scan` and `cryptward report`): each body
evaluated, its findings planned at once, then the body dropped unless planning or applying may look it up; the
findings and skips spooled to a private temporary file (engine/spool.py). With summaries (the compliance report),
each body leaves a `Summary` (type, region, the policies that apply) and the VMs', scale sets' and disks' bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from itertools import chain
from typing import Any, NamedTuple

from remediations.changes import Plan, PlanContext, Skip
from remediations.engine import planner
from remediations.engine.found import DES, DISK, KEY, VM, Reading
from remediations.engine.planner import Finding
from remediations.engine.spool import Spool
from remediations.engine.vaultkeys import VaultKeys
from remediations.policy.aliases import SNAPSHOT
from remediations.policy.loader import Policy
from remediations.resources import cryptward, get, parent_of


class Summary(NamedTuple):
    """What the compliance report lists of a resource it does not hold: its type, region and the ids of the
    policies that apply to it (one tuple shared by every resource with the same)."""

    type: str
    location: str
    checked: tuple[str, ...]


def summarize(body: Mapping[str, Any], policies: Sequence[Policy]) -> Summary:
    checked = tuple(p.id for p in policies if p.applies_to(body))
    return Summary(str(body.get("type", "")), str(body.get("location", "")), checked)


_ADVISED = frozenset(t.lower() for t in (VM, DISK, "Microsoft.Compute/virtualMachineScaleSets"))


def summarizer(
    policies: Sequence[Policy], into: dict[str, Summary], bodies: dict[str, dict[str, Any]]
) -> Callable[[str, dict[str, Any]], None]:
    """Records each body's summary in `into` (one `checked` tuple per distinct value) and keeps the bodies the
    compliance report reads whole (VMs, scale sets, disks) in `bodies`."""
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}

    def record(rid: str, body: dict[str, Any]) -> None:
        s = summarize(body, policies)
        into[rid] = s._replace(checked=shared.setdefault(s.checked, s.checked))
        if s.type.lower() in _ADVISED:
            bodies[rid] = body

    return record


def stream(
    reading: Reading,
    policies: Sequence[Policy],
    walk: Callable[[Callable[[Finding], None], Callable[[str], None]], int],
    ctx: PlanContext,
    spool: Spool,
    apply: bool,
    keys: VaultKeys | None = None,
    summary: Callable[[str, dict[str, Any]], None] | None = None,
) -> tuple[Sequence[Finding], Plan, int]:
    """Evaluate and plan one body at a time, each body's findings planned as they are made and then spooled (with
    the skips) to `spool`'s private temporary file; a body is dropped once planned unless planning or applying
    may look it up (`looked_up`). `walk(take, done)` evaluates (engine/run.py `_walk`): each finding to `take`,
    `done(id)` after each body. The same findings, plan and skips, in the same order, as `evaluate` then
    `planner.plan`: what is held per resource is the changes planned, not the bodies, findings or skips."""
    by_id = {p.id: p for p in policies}
    findings = spool.rows(_finding_row, lambda row: Finding(by_id[row[1]], {"id": row[0]}, *row[2:]))
    kept = looked_up(reading, keys, apply)
    making = planner.Planner(replace(ctx, resources=kept), spool.rows(_skip_row, lambda row: Skip(*row)))

    def take(f: Finding) -> None:
        making.add(f)
        findings.append(f)

    def done(rid: str) -> None:
        making.decisions.clear()  # the next body is another resource (the notes are deduplicated at the end)
        if summary is not None:
            summary(rid, reading.resources[rid])
        if rid.lower() not in kept:
            body = reading.resources.pop(rid)
            if reading.related.get(rid.lower()) is body:
                del reading.related[rid.lower()]

    evaluations = walk(take, done)
    return findings, making.finish(), evaluations


def _finding_row(f: Finding) -> tuple[str, str, str | None, str | None, str | None]:
    return (str(f.resource.get("id", "")), f.policy.id, f.mode, f.unreadable, f.fix_unreadable)


def _skip_row(s: Skip) -> tuple[str, str, str, str, str | None]:
    return (s.resource_id, s.policy_id, str(s.reason), s.detail, s.fix)


def looked_up(reading: Reading, keys: VaultKeys | None, apply: bool) -> dict[str, Mapping[str, Any]]:
    """The bodies read that planning may look up beside a finding's own (`PlanContext.related`), by lower-cased id:
    a disk encryption set's vault (des-auto-rotation), a disk's VM (disk-cmk), a key's vault (key-rotation-policy),
    the disk encryption set of a snapshot's source (snapshot-cmk);
    with `apply`, also every disk and VM (the applier's power-state check reads them from what was read).
    tests/engine/test_streamed.py holds the fixes to this list."""
    wanted: set[str] = set()
    for body in chain(reading.related.values(), reading.resources.values(), keys.bodies.values() if keys else ()):
        kind = str(body.get("type", "")).lower()
        if kind == DES.lower():
            wanted.add(str(get(body, "properties.activeKey.sourceVault.id") or "").lower())
        elif kind == DISK.lower():
            wanted.add(str(body.get("managedBy") or "").lower())
        elif kind == KEY.lower():
            wanted.add(parent_of(str(body.get("id", ""))).lower())
        elif kind == SNAPSHOT.lower():
            wanted.add(str(cryptward(body, "sourceEncryption.diskEncryptionSetId") or "").lower())
        if apply and kind in (DISK.lower(), VM.lower()):
            wanted.add(str(body.get("id", "")).lower())
    wanted.discard("")
    return {rid: reading.related[rid] for rid in wanted if rid in reading.related}


__all__ = ["Summary", "looked_up", "stream", "summarize", "summarizer"]
