"""Proof of fidelity, item 1: every Microsoft example under azure-specs/examples/ is replayed through the pinned SDK
client against the sandbox, and the response is compared with the example's on the fields the example shows.

The table is in replay.py (one entry per example file); an example file without an entry fails here, so coverage
cannot drop silently. Every JSON body received during a replay is also checked against the OpenAPI schema of its
operation when one exists (schemas.py).
"""

from __future__ import annotations

import pytest

from sandbox import arm
from tests.sandbox.fidelity.replay import REPLAYS, Ctx, compare, example_files, load_example, matches
from tests.sandbox.fidelity.schemas import Specs

SPECS = Specs()
FILES = example_files()


def _registered(rtype: str) -> bool:
    import sandbox.providers as providers

    for name in providers.MODULES:
        __import__(f"sandbox.providers.{name}")
    return rtype.lower() in arm.REGISTRY


def _params() -> list[object]:
    out: list[object] = []
    for name in FILES:
        entry = REPLAYS.get(name)
        marks: list[pytest.MarkDecorator] = []
        if entry is not None and entry.skip:
            marks.append(pytest.mark.skip(reason=entry.skip))
        elif entry is not None and entry.needs_type and not _registered(entry.needs_type):
            marks.append(pytest.mark.xfail(strict=True, reason=f"Sandbox II issue ({entry.needs_type} not modelled)"))
        elif entry is not None and entry.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=entry.xfail))
        out.append(pytest.param(name, id=name, marks=marks))
    return out


def test_there_are_examples_to_replay():
    assert len(FILES) >= 56, FILES


def test_every_table_entry_names_an_example_on_disk():
    assert sorted(set(REPLAYS) - set(FILES)) == []


@pytest.mark.parametrize("name", _params())
def test_example_replays(sandbox, name):
    entry = REPLAYS.get(name)
    assert entry is not None, f"no replay entry for {name} (add one to tests/sandbox/fidelity/replay.py)"
    assert entry.run is not None, f"{name}: an entry without run must say why it is skipped"
    example = load_example(name)
    ctx = Ctx(sandbox, name, example, entry)
    try:
        entry.run(ctx)
    finally:
        ctx.close()
    result = ctx.result
    assert result is not None, f"{name}: the entry never called ctx.replay()"

    responses = example["responses"]
    assert str(result.status) in responses, (
        f"{name}: the sandbox answered {result.status}; the example knows {sorted(responses)}"
    )
    # An LRO's first answer (202) is not what the SDK returns: its final body is compared with the example's 200.
    lro = result.status == 202 or len(result.exchanges) > 1
    status = str(result.status) if "body" in responses[str(result.status)] and not lro else entry.response
    problems: list[str] = []
    if "body" in responses.get(status, {}):
        expected = ctx.vault_hosts(ctx.expected(status))
        problems += compare(expected, ctx.vault_hosts(result.body), ignore=entry.ignore, volatile=entry.volatile)
    for exchange in result.exchanges:
        if exchange.body is None or exchange.status >= 300:
            continue
        violations = SPECS.validate_response(exchange.method, exchange.url, exchange.status, exchange.body)
        problems += [f"schema {exchange.method} {exchange.url.split('?')[0]}: {v}" for v in violations or []]
    assert not problems, f"{name} (compared with the example's {status}):\n" + "\n".join(problems)


# -- compare() itself ---------------------------------------------------------------------------------------------


def test_compare_reports_missing_and_different_fields_with_paths():
    expected = {"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": [{"id": "/subscriptions/S/x"}]}
    actual = {"b": {"c": "y", "d": [1]}, "e": [{"id": "/SUBSCRIPTIONS/s/X"}], "extra": True}
    problems = compare(expected, actual)
    assert problems == [
        "$.a: missing (example: 1)",
        "$.b.c: expected 'x', got 'y'",
        "$.b.d: expected 2 elements, got 1: [1]",
    ]


def test_compare_normalises_vault_urls_locations_and_honours_volatile_and_ignore():
    expected = {
        "vaultUri": "https://sample-vault.vault.azure.net",
        "keyUri": "https://sample-vault.vault.azure.net:443/keys/k",
        "location": "West US",
        "created": 1598533051,
        "hsm": "zero",
        "list": [{"name": "a", "v": 1}, {"name": "b", "v": 2}],
    }
    actual = {
        "vaultUri": "https://sample-vault.vault.azure.net/",
        "keyUri": "https://sample-vault.vault.azure.net/keys/k",
        "location": "westus",
        "created": 1700000000,
        "list": [{"name": "b", "v": 2}, {"name": "a", "v": 1}],
    }
    assert compare(expected, actual, volatile=["created"], ignore=["hsm"]) == []
    assert compare(expected, {**actual, "created": "now"}, volatile=["created"], ignore=["hsm"]) == [
        "$.created: expected a number (value not compared), got 'now'"
    ]


def test_compare_booleans_are_not_numbers():
    assert compare({"x": True}, {"x": 1}) == ["$.x: expected True, got 1"]


def test_path_patterns():
    assert matches(("value", 3, "properties", "attributes", "created"), ["**.created"])
    assert matches(("value", 3, "properties"), ["value[*].properties"])
    assert not matches(("value", 3, "properties", "x"), ["value[*].properties.y"])
    assert matches(("systemData", "createdAt"), ["systemData.**"])
