"""The inventory through Resource Graph (remediations/engine/inventory.py) against the sandbox's Resource Graph, through
the real SDK client: the same findings as ARM's lists in far fewer calls, the quota honoured, ARM when Resource Graph
is refused, and fixes verified through ARM while Resource Graph still shows the old body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediations.engine import inventory
from remediations.engine.reader import Needs, Scope, read_scope
from remediations.engine.run import scan
from remediations.errors import AzureAccessError
from remediations.policy.loader import load_policies

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
ALL = Needs.of(POLICIES)
GRAPH = "/providers/Microsoft.ResourceGraph/resources"


@pytest.fixture
def subs(sandbox: Any) -> tuple[str, ...]:
    sandbox.reset()
    made = sandbox.admin("POST", "/_sandbox/estate", {"subscriptions": 3, "perSubscription": 40})
    return tuple(made["subscriptions"])


def bot(azure_as: Any, mode: str) -> Any:
    azure = azure_as("admin")
    azure.inventory = mode
    return azure


def _sorted(block: dict[str, Any]) -> dict[str, Any]:
    """A cryptward block without what Resource Graph does not carry (systemData), lists in a fixed order."""
    return {k: sorted(v, key=str) if isinstance(v, list) else _plain(v) for k, v in block.items()}


def _plain(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "systemData"} if isinstance(value, dict) else value


def lists(calls: list[dict[str, Any]]) -> list[str]:
    return [c["path"] for c in calls if c["plane"] == "arm" and c["path"] != "/msi/token"]


def test_resource_graph_lists_what_arm_lists_in_fewer_calls(sandbox: Any, azure_as: Any, subs: tuple[str, ...]) -> None:
    since = len(sandbox.calls())
    arm = read_scope(bot(azure_as, "arm"), Scope(subs), ALL)
    through_arm = lists(sandbox.calls(since))
    since = len(sandbox.calls())
    steps: list[str] = []
    graph = read_scope(bot(azure_as, "resourcegraph"), Scope(subs), ALL, progress=steps.append)
    through_graph = lists(sandbox.calls(since))
    assert set(graph.resources) == set(arm.resources) and len(graph.resources) == 120
    for rid, body in arm.resources.items():  # the same blocks, in Resource Graph's order (by id) or ARM's
        assert _sorted(graph.resources[rid]["cryptward"]) == _sorted(body["cryptward"]), rid
        assert graph.resources[rid]["properties"] == body["properties"], rid
        assert graph.resources[rid]["type"] == body["type"]
    # one query for every type of the three subscriptions, two for their role assignments (engine/rgroles.py)
    assert through_graph.count(GRAPH) == 3
    listed = [p for p in through_graph if p.lower().endswith(("/vaults", "/disks", "/diskencryptionsets"))]
    assert listed == []  # what Resource Graph gave is not listed again through ARM (VMs are, for power states only)
    assert len(through_graph) < len(through_arm)
    assert any(s.startswith("Resource Graph:") for s in steps)
    assert graph.notes == []


def test_auto_uses_resource_graph_above_the_threshold(sandbox: Any, azure_as: Any, subs: tuple[str, ...]) -> None:
    azure = bot(azure_as, "auto")
    azure.inventory_threshold = 3
    since = len(sandbox.calls())
    read_scope(azure, Scope(subs), ALL)
    assert GRAPH not in lists(sandbox.calls(since))  # 3 subscriptions: not more than 3
    azure.inventory_threshold = 2
    since = len(sandbox.calls())
    read_scope(azure, Scope(subs), ALL)
    assert GRAPH in lists(sandbox.calls(since))


def test_refused_resource_graph_falls_back_to_arm_and_says_so(
    sandbox: Any, azure_as: Any, subs: tuple[str, ...]
) -> None:
    sandbox.admin("POST", "/_sandbox/faults", {"rules": [{"kind": "503", "path": "Microsoft.ResourceGraph"}]})
    try:
        steps: list[str] = []
        reading = read_scope(bot(azure_as, "resourcegraph"), Scope(subs), ALL, progress=steps.append)
    finally:
        sandbox.admin("DELETE", "/_sandbox/faults")
    assert len(reading.resources) == 120
    (note,) = reading.notes
    assert note.startswith("Resource Graph unavailable (503 ") and note.endswith("listed through ARM per subscription")
    assert note in steps
    sandbox.admin("POST", "/_sandbox/faults", {"rules": [{"kind": "503", "path": "Microsoft.ResourceGraph"}]})
    try:
        report = scan(Scope(subs), POLICIES, azure=bot(azure_as, "resourcegraph"))
    finally:
        sandbox.admin("DELETE", "/_sandbox/faults")
    assert note.split(":")[0] in report.plan.notes[0]  # the report says so too


def test_a_fix_is_verified_through_arm_while_resource_graph_lags(
    sandbox: Any, azure_as: Any, subs: tuple[str, ...]
) -> None:
    sandbox.admin("PATCH", "/_sandbox/settings", {"resource_graph_lag_seconds": 3600})
    azure = bot(azure_as, "resourcegraph")
    purge = [p for p in POLICIES if p.id == "kv-purge-protection"]
    scope = Scope(subs[:1])
    planned = scan(scope, purge, azure=azure).plan.changes
    report = scan(scope, purge, apply=True, azure=azure, approved=[c.id for c in planned])
    assert report.results and all(r.status == "applied" for r in report.results), report.results
    fixed = {r.change.resource_id.lower() for r in report.results}
    # ARM has the change; Resource Graph does not yet, and the next sweep sees the old body there ...
    assert all(sandbox.running.sandbox.state.get(rid)["properties"]["enablePurgeProtection"] for rid in fixed)
    again = scan(scope, purge, apply=False, azure=azure)
    assert {str(f.resource["id"]).lower() for f in again.findings} >= fixed
    # ... and once it has replicated, nothing is left to do.
    sandbox.advance(3601)
    assert not scan(scope, purge, azure=azure).findings


class _Graph:
    """An Azure whose Resource Graph answers from a script: (page, headers) or an AzureAccessError, in the order
    asked (`answers`), or by (first subscription, $skip) (`by_page`)."""

    def __init__(self, answers: list[Any], by_page: dict[tuple[str, int], Any] | None = None) -> None:
        self.answers, self.by_page = answers, by_page or {}
        self.asked: list[tuple[list[str], int]] = []

    def graph_query(self, subs: list[str], text: str, top: int, *, skip: int = 0, **_: Any) -> Any:
        self.asked.append((subs, skip))
        answer = self.by_page[(subs[0], skip)] if self.by_page else self.answers.pop(0)
        if isinstance(answer, AzureAccessError):
            raise answer
        return answer


def row(sub: str, name: str) -> dict[str, Any]:
    rid = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{name}"
    return {"id": rid, "name": name, "type": "microsoft.keyvault/vaults", "properties": {}, "tags": None}


def test_batches_below_300_first_pages_then_skip_pages_and_waits_on_the_quota() -> None:
    subs = [f"s{i:03}" for i in range(450)]
    empty = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": "00:00:03"}
    full = {"x-ms-user-quota-remaining": "14", "x-ms-user-quota-resets-after": "00:00:05"}
    rows = [row("s000", f"v{i}") for i in range(2500)]
    azure = _Graph(
        [],
        {
            ("s000", 0): ({"data": rows[:1000], "$skipToken": "t1", "totalRecords": 2500}, empty),
            ("s000", 1000): ({"data": rows[1000:2000], "$skipToken": "t2", "totalRecords": 2500}, full),
            ("s000", 2000): ({"data": rows[2000:], "totalRecords": 2500}, full),
            ("s200", 0): ({"data": [row("s201", "d")], "totalRecords": 1}, full),
            ("s400", 0): ({"data": [row("s449", "c")], "totalRecords": 1}, full),
        },
    )
    slept: list[float] = []
    out = inventory.through_graph(
        azure, subs, {"vaults": "Microsoft.KeyVault/vaults"}, lambda _: None, sleep=slept.append
    )
    assert sorted(len(s) for s, _ in azure.asked) == [50, 200, 200, 200, 200]
    assert sorted((s[0], skip) for s, skip in azure.asked) == sorted(azure.by_page)  # each page once
    assert [skip for _, skip in azure.asked[:3]] == [0, 0, 0]  # every batch's first page before the rest
    assert slept == [3.0]  # the quota was spent once: the next query waited for it to reset
    assert len(out["s000"]["vaults"]) == 2500
    assert out["s449"]["vaults"][row("s449", "c")["id"].lower()]["type"] == "Microsoft.KeyVault/vaults"
    assert "tags" not in out["s000"]["vaults"][row("s000", "v0")["id"].lower()]


def test_throttled_beyond_the_budget_or_refused_is_unavailable() -> None:
    throttled = AzureAccessError(429, "RateLimiting", "slow down")
    azure = _Graph([throttled] * 10)
    slept: list[float] = []
    with pytest.raises(inventory.GraphUnavailable, match="throttled beyond 30 s"):
        inventory.through_graph(azure, ["s"], {"vaults": "Microsoft.KeyVault/vaults"}, print, sleep=slept.append)
    assert sum(slept) <= inventory.WAIT_BUDGET
    refused = _Graph([AzureAccessError(403, "AuthorizationFailed", "no")])
    with pytest.raises(inventory.GraphUnavailable, match="403 AuthorizationFailed"):
        inventory.through_graph(refused, ["s"], {"vaults": "Microsoft.KeyVault/vaults"}, print)


@pytest.mark.parametrize(
    ("mode", "count", "expected"),
    [("auto", 10, False), ("auto", 11, True), ("arm", 500, False), ("resourcegraph", 1, True)],
)
def test_uses_graph(mode: str, count: int, expected: bool) -> None:
    assert inventory.uses_graph(mode, 10, [str(i) for i in range(count)]) is expected


def test_pages_beyond_the_first_are_asked_by_skip_each_once(sandbox: Any, azure_as: Any) -> None:
    sandbox.reset()
    subs = sandbox.admin("POST", "/_sandbox/estate", {"subscriptions": 3, "perSubscription": 700})["subscriptions"]
    azure = bot(azure_as, "resourcegraph")
    since = len(sandbox.calls())
    listed = inventory.through_graph(
        azure, subs, {"disks": "Microsoft.Compute/disks", "vaults": "Microsoft.KeyVault/vaults"}, print
    )
    queries = [c for c in sandbox.calls(since) if c["path"] == GRAPH]
    assert len(queries) == 2  # 3 x (280 disks + 210 vaults) = 1,470 rows: two pages of 1,000
    assert sum(len(b["disks"]) + len(b["vaults"]) for b in listed.values()) == 1470
    assert all(len(listed[s]["disks"]) == 280 for s in subs)
