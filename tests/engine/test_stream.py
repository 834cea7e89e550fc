"""Evaluation streamed per page of the inventory (remediations/engine/stream.py) against the sandbox's Resource Graph
through the real SDK client: the same findings as evaluating every body at once, a page's bodies dropped before the
next page is read, and findings handed to a sink instead of held."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from remediations.engine import inventory, stream
from remediations.engine.found import Reading
from remediations.engine.run import evaluate
from remediations.policy.loader import load_policies

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
TYPES = {
    "vaults": "Microsoft.KeyVault/vaults",
    "sets": "Microsoft.Compute/diskEncryptionSets",
    "disks": "Microsoft.Compute/disks",
    "vms": "Microsoft.Compute/virtualMachines",
}


@pytest.fixture
def subs(sandbox: Any) -> tuple[str, ...]:
    sandbox.reset()
    made = sandbox.admin("POST", "/_sandbox/estate", {"subscriptions": 3, "perSubscription": 40})
    return tuple(made["subscriptions"])


def prepare(what: str, body: dict[str, Any]) -> None:
    body["cryptward"] = {"locks": []}
    if what == "vaults":
        body["cryptward"].update(diagnosticSettings=[], encryptionSets=[])


def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory, "PAGE", 25)  # 120 resources: five pages


def test_streamed_findings_are_those_of_one_evaluation(
    azure_as: Any, subs: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    small_pages(monkeypatch)
    azure = azure_as("admin")
    listed = inventory.through_graph(azure, subs, TYPES, lambda _: None)
    whole = Reading()
    for per_sub in listed.values():
        for what, bodies in per_sub.items():
            for rid, body in bodies.items():
                prepare(what, body)
                whole.resources[rid] = body
    found, evaluations = evaluate(whole, POLICIES)
    tally = stream.evaluate_pages(inventory.pages(azure, subs, TYPES, lambda _: None), POLICIES, prepare=prepare)
    assert tally.pages == 5 and tally.resources == len(whole.resources) == 120
    assert tally.evaluations == evaluations
    expected = sorted((str(f.resource["id"]), f.policy.id, f.unreadable) for f in found)
    assert expected and sorted(tally.findings) == expected
    assert sum(tally.by_policy.values()) == len(found)


def test_a_page_is_dropped_before_the_next_is_read(
    azure_as: Any, subs: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    small_pages(monkeypatch)
    azure = azure_as("admin")
    alive: list[weakref.ref[Any]] = []  # every body of the pages read so far
    read = inventory.pages(azure, subs, TYPES, lambda _: None)

    def watched() -> Any:
        for page in read:
            gc.collect()
            assert all(ref() is None for ref in alive), "an earlier page's body is still held"
            rows = [(s, w, r, _Body(b)) for s, w, r, b in page]
            del page
            alive.extend(weakref.ref(row[3]) for row in rows)
            yield rows
            del rows

    ids: list[str] = []  # a sink that writes each finding out (here: its id) rather than holding its body
    tally = stream.evaluate_pages(watched(), POLICIES, prepare=prepare, sink=lambda f: ids.append(f.resource["id"]))
    assert tally.pages == 5 and len(alive) == 120
    assert tally.findings == [] and len(ids) == sum(tally.by_policy.values()) > 0
    gc.collect()
    assert all(ref() is None for ref in alive)


class _Body(dict):  # type: ignore[type-arg]
    """A body that can be watched (a plain dict takes no weak reference)."""


def test_findings_spilled_to_a_file_come_back_in_order(
    azure_as: Any, subs: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    small_pages(monkeypatch)
    azure = azure_as("admin")
    held = stream.evaluate_pages(inventory.pages(azure, subs, TYPES, lambda _: None), POLICIES, prepare=prepare)
    with stream.Spill() as spill:
        spilled = stream.evaluate_pages(
            inventory.pages(azure, subs, TYPES, lambda _: None), POLICIES, prepare=prepare, sink=spill.write
        )
        rows = list(spill.rows())
    assert spilled.findings == [] and spill.count == len(rows) == len(held.findings) > 0
    assert sorted(rows) == sorted(held.findings)  # two runs: the pages come in the order Resource Graph answers
