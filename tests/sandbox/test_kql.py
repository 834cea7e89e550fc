"""sandbox/kql.py: the Resource Graph query subset, run over plain rows."""

from __future__ import annotations

import pytest

from sandbox.kql import KqlError, run

VAULT = "microsoft.keyvault/vaults"
SUB = "microsoft.resources/subscriptions"
TABLES = {
    "resources": [
        {
            "id": "/subscriptions/a/resourcegroups/rg/providers/microsoft.keyvault/vaults/kv1",
            "name": "kv1",
            "type": VAULT,
            "subscriptionId": "a",
            "tags": {"owner": "ana@contoso.com"},
            "properties": {"enablePurgeProtection": True, "sku": {"name": "standard"}},
        },
        {
            "id": "/subscriptions/b/resourcegroups/rg/providers/microsoft.keyvault/vaults/kv2",
            "name": "kv2",
            "type": VAULT,
            "subscriptionId": "b",
            "tags": {},
            "properties": {"enablePurgeProtection": "false"},
        },
        {
            "id": "/subscriptions/a/resourcegroups/rg/providers/microsoft.compute/disks/d1",
            "name": "d1",
            "type": "microsoft.compute/disks",
            "subscriptionId": "a",
            "tags": None,
            "properties": {"diskSizeGB": 32, "encryption": {"type": "EncryptionAtRestWithPlatformKey"}},
        },
    ],
    "resourcecontainers": [
        {"id": "/subscriptions/a", "name": "Prod A", "type": SUB, "subscriptionId": "a"},
        {"id": "/subscriptions/b", "name": "Dev B", "type": SUB, "subscriptionId": "b"},
    ],
}


def names(query: str) -> list[str]:
    return [r["name"] for r in run(query, TABLES)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("resources | where type == 'microsoft.keyvault/vaults' | order by name asc", ["kv1", "kv2"]),
        ("resources | where type == 'Microsoft.KeyVault/vaults'", []),  # == is case-sensitive
        ("resources | where type =~ 'Microsoft.KeyVault/vaults' | order by name asc", ["kv1", "kv2"]),
        ("resources | where type != 'microsoft.compute/disks' | order by name", ["kv2", "kv1"]),  # desc by default
        ("resources | where type in~ ('Microsoft.Compute/Disks', 'x') ", ["d1"]),
        ("resources | where tobool(properties.enablePurgeProtection) == false", ["kv2"]),
        ("resources | where properties.enablePurgeProtection == true", ["kv1"]),
        ("resources | where isnotempty(tags.owner)", ["kv1"]),
        ("resources | where tags['owner'] has 'contoso'", ["kv1"]),
        ("resources | where tags['owner'] has 'conto'", []),
        ("resources | where name contains 'V2'", ["kv2"]),
        ("resources | where not(type =~ 'microsoft.keyvault/vaults')", ["d1"]),
        ("resources | where subscriptionId == 'a' and (name == 'd1' or name == 'kv2')", ["d1"]),
        ("resources | where properties.encryption.type == 'EncryptionAtRestWithPlatformKey'", ["d1"]),
        ("resources | where tostring(properties.sku) contains 'standard'", ["kv1"]),
        ("resources | order by name asc | take 2", ["d1", "kv1"]),
        ("resources | order by name asc | limit 1", ["d1"]),
    ],
)
def test_where_and_friends(query: str, expected: list[str]) -> None:
    assert names(query) == expected


def test_project_extend_and_project_away() -> None:
    rows = run(
        "resources | where name == 'd1' | extend size = properties.diskSizeGB | project name, size, "
        "kind = tostring(properties.encryption.type)",
        TABLES,
    )
    assert rows == [{"name": "d1", "size": 32, "kind": "EncryptionAtRestWithPlatformKey"}]
    rows = run("resources | where name == 'd1' | project-away properties, tags, id", TABLES)
    assert rows == [{"name": "d1", "type": "microsoft.compute/disks", "subscriptionId": "a"}]


def test_summarize_count_by() -> None:
    rows = run("resources | summarize count() by type | order by type asc", TABLES)
    assert rows == [{"type": "microsoft.compute/disks", "count_": 1}, {"type": VAULT, "count_": 2}]
    assert run("resources | summarize n = count()", TABLES) == [{"n": 3}]
    assert run("resources | count", TABLES) == [{"Count": 3}]


def test_join_leftouter() -> None:
    rows = run(
        "resources | join kind=leftouter (resourcecontainers | project subscriptionId, subName = name) "
        "on subscriptionId | project name, subName | order by name asc",
        TABLES,
    )
    assert rows == [
        {"name": "d1", "subName": "Prod A"},
        {"name": "kv1", "subName": "Prod A"},
        {"name": "kv2", "subName": "Dev B"},
    ]
    rows = run(
        "resources | where name == 'kv1' | join kind=leftouter (resourcecontainers | where name == 'nope') "
        "on $left.subscriptionId == $right.subscriptionId | project name",
        TABLES,
    )
    assert rows == [{"name": "kv1"}]


@pytest.mark.parametrize(
    ("query", "token"),
    [
        ("resources | parse id with * '/providers/' rp", "parse"),
        ("resources | where", "<EOF>"),
        ("resources | where name == 'x' | mv-expand tags", "mv-expand"),
        ("resources | join (resourcecontainers) on id", "("),
        ("resources | where strcat(name) == 'x'", "strcat"),
        ("resources | take x", "x"),
        ("resources | where name == 'a", "'"),
    ],
)
def test_outside_the_subset_raises_with_the_token(query: str, token: str) -> None:
    with pytest.raises(KqlError) as caught:
        run(query, TABLES)
    assert caught.value.token == token
    assert caught.value.line == 1


def test_unknown_table() -> None:
    with pytest.raises(KqlError):
        run("securityresources | take 1", TABLES)
