"""The planner's merge and order, rewritten to run in one pass, give exactly the plan of the old pairwise algorithms
(kept here as the reference) on randomised input: many resources, repeated targets, conflicting bodies and
dependencies."""

import random
from dataclasses import replace

import pytest

from remediations.changes import Change, Operation, Ref
from remediations.engine import planner
from remediations.errors import PlanError


def reference_merge(changes: list[Change]) -> list[Change]:
    out: list[Change] = []
    for change in changes:
        for i, earlier in enumerate(out):
            combined = planner._combine(earlier, change)
            if combined is not None:
                out[i] = combined
                break
        else:
            out.append(change)
    return out


def reference_order(changes: list[Change]) -> list[Change]:
    remaining = list(changes)
    done: set[str] = set()
    ordered: list[Change] = []
    while remaining:
        ready = next((c for c in remaining if all(d in done for d in c.depends_on)), None)
        if ready is None:
            raise PlanError("cycle")
        remaining.remove(ready)
        done.add(ready.id)
        ordered.append(ready)
    return ordered


def random_changes(rng: random.Random, n: int) -> list[Change]:
    vaults = [f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv{i}" for i in range(n // 3)]
    out = []
    for k in range(n):
        vault = rng.choice(vaults)
        prop = rng.choice(["enablePurgeProtection", "enableSoftDelete", "publicNetworkAccess"])
        value = rng.choice([True, False]) if rng.random() < 0.2 else True
        method = rng.choice(["PATCH", "PATCH", "PATCH", "PUT"])
        path = rng.choice([vault, vault.upper(), vault + "/providers/Microsoft.Insights/diagnosticSettings/d"])
        version = rng.choice(["2026-05-15", "2026-05-15", "2023-07-01"])
        body = {"properties": {prop: value}}
        out.append(
            Change(
                resource_id=vault,
                summary=f"Set {prop}.",
                operation=Operation(method, path, version, body),
                before={prop: None},
                after={prop: value},
                policy_ids=(f"p{k % 7}",),
                fixes=(f"f{k % 5}",),
            )
        )
    return out


@pytest.mark.parametrize("seed", range(6))
def test_one_pass_merge_gives_the_pairwise_merge(seed):
    changes = random_changes(random.Random(seed), 600)
    assert planner._merge(changes) == reference_merge(changes)


@pytest.mark.parametrize("seed", range(6))
def test_heap_order_gives_the_first_ready_order(seed):
    rng = random.Random(seed)
    changes = planner._merge(random_changes(rng, 400))
    ids = [c.id for c in changes]
    with_deps = []
    for i, c in enumerate(changes):
        earlier = ids[:i] if rng.random() < 0.7 else ids  # some point forwards: a later change goes first
        deps = tuple(rng.sample(earlier, k=min(len(earlier), rng.randint(0, 2))))
        if i and rng.random() < 0.5:
            deps = (*deps, ids[rng.randrange(i, len(ids))])
        with_deps.append(Change(**{**_fields(c), "depends_on": tuple(d for d in deps if d != c.id)}))
    try:
        expected = reference_order(with_deps)
    except PlanError:
        with pytest.raises(PlanError):
            planner._order(with_deps)
        return
    assert planner._order(with_deps) == expected


def test_a_cycle_still_raises():
    a, b, *_ = planner._merge(random_changes(random.Random(1), 30))
    a = Change(**{**_fields(a), "depends_on": (b.id,)})
    b = Change(**{**_fields(b), "depends_on": (a.id,)})
    with pytest.raises(PlanError, match="cycle"):
        planner._order([a, b])


def _fields(c: Change) -> dict:
    return {k: getattr(c, k) for k in Change.__dataclass_fields__ if k != "id"}


@pytest.mark.parametrize("seed", range(3))
def test_tables_by_hash_decide_nothing_when_every_hash_collides(seed, monkeypatch):
    """The merge and dependency tables are keyed by hashes (no lower-cased id held per change): targets that only
    share a hash never combine and never satisfy a dependency."""
    changes = random_changes(random.Random(seed), 300)
    with_needs = [
        replace(c, needs=(Ref(changes[(i * 7) % len(changes)].resource_id.upper(), f"f{i % 6}"),)) if i % 4 == 0 else c
        for i, c in enumerate(changes)
    ]
    merged = planner._merge(with_needs)
    expected = planner._resolve(merged, [])
    monkeypatch.setattr(planner, "hash", lambda _: 0, raising=False)
    assert planner._merge(with_needs) == reference_merge(with_needs) == merged
    assert planner._resolve(merged, []) == expected
    assert any(c.depends_on for c in expected[0]) and expected[1]  # some dependencies met, some blocked
