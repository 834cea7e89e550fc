"""The sandbox's Resource Graph, through azure-mgmt-resourcegraph: tables, paging, quota, errors and lag."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from sandbox.bulk import subscription_id

VAULTS = "resources | where type =~ 'Microsoft.KeyVault/vaults' | project id, name, properties | order by name asc"


def graph(sandbox: Any, name: str = "admin") -> ResourceGraphClient:
    return ResourceGraphClient(sandbox.credential(name), base_url=sandbox.base_url, connection_verify=sandbox.ca)


def query(client: ResourceGraphClient, text: str, subs: list[str], **options: Any) -> tuple[Any, dict[str, str]]:
    seen: dict[str, str] = {}

    def keep(pipeline_response: Any, deserialized: Any, _: Any) -> Any:
        seen.update(pipeline_response.http_response.headers)
        return deserialized

    request = QueryRequest(subscriptions=subs, query=text, options=QueryRequestOptions(**options))
    return client.resources(request, cls=keep), seen


@pytest.fixture
def estate(sandbox: Any) -> list[str]:
    sandbox.reset()
    made = sandbox.admin("POST", "/_sandbox/estate", {"subscriptions": 3, "perSubscription": 40})
    assert made["resources"] == 120
    return list(made["subscriptions"])


def test_pages_with_skip_token_and_counts_quota(sandbox: Any, estate: list[str]) -> None:
    client = graph(sandbox)
    ids: list[str] = []
    token = None
    remaining = []
    while True:
        page, headers = query(client, VAULTS, estate, top=10, skip_token=token)
        ids += [row["id"] for row in page.data]
        remaining.append(int(headers["x-ms-user-quota-remaining"]))
        assert headers["x-ms-user-quota-resets-after"].count(":") == 2
        assert page.total_records == 36  # 3 x 12 vaults
        token = page.skip_token
        if not token:
            break
    assert len(ids) == len(set(ids)) == 36
    assert remaining == [14, 13, 12, 11]
    assert all(sub in {i.split("/")[2] for i in ids} for sub in estate)


def test_summarize_join_and_containers(sandbox: Any, estate: list[str]) -> None:
    client = graph(sandbox)
    page, _ = query(client, "resources | summarize count() by type | order by type asc", estate)
    assert {r["type"]: r["count_"] for r in page.data} == {
        "microsoft.compute/diskencryptionsets": 12,
        "microsoft.compute/disks": 48,
        "microsoft.compute/virtualmachines": 24,
        "microsoft.keyvault/vaults": 36,
    }
    page, _ = query(
        client,
        "resources | where type == 'microsoft.keyvault/vaults' and name == 'kvbulk00000' | join kind=leftouter "
        "(resourcecontainers | where type == 'microsoft.resources/subscriptions' | project subscriptionId, "
        "subName = name) on subscriptionId | project subName",
        estate[:1],
    )
    assert page.data == [{"subName": "Bulk 0000"}]


def test_only_what_the_caller_may_read(sandbox: Any, estate: list[str]) -> None:
    page, _ = query(graph(sandbox, "reader"), "resources | count", estate)
    assert page.data == [{"Count": 0}]  # the reader has a role in the default subscription only


def test_a_query_outside_the_subset_is_resource_graphs_bad_request(sandbox: Any, estate: list[str]) -> None:
    with pytest.raises(HttpResponseError) as caught:
        query(graph(sandbox), "resources | parse id with * '/providers/' rp", estate)
    assert caught.value.status_code == 400
    error = caught.value.response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"].startswith("Please provide below info when asking for support: timestamp = ")
    assert [d["code"] for d in error["details"]] == ["InvalidQuery", "ParserFailure"]
    assert error["details"][1]["token"] == "parse"


def test_over_quota_is_429_until_the_window_resets(sandbox: Any, estate: list[str]) -> None:
    sandbox.admin("PATCH", "/_sandbox/settings", {"resource_graph_quota": 2})
    client = ResourceGraphClient(
        sandbox.credential(), base_url=sandbox.base_url, connection_verify=sandbox.ca, retry_total=0
    )
    query(client, "resources | take 1", estate)
    query(client, "resources | take 1", estate)
    with pytest.raises(HttpResponseError) as caught:
        query(client, "resources | take 1", estate)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["x-ms-user-quota-remaining"] == "0"
    sandbox.advance(5)
    _, headers = query(client, "resources | take 1", estate)
    assert headers["x-ms-user-quota-remaining"] == "1"


def test_a_write_shows_only_after_the_lag(sandbox: Any, estate: list[str]) -> None:
    sandbox.admin("PATCH", "/_sandbox/settings", {"resource_graph_lag_seconds": 60})
    client = graph(sandbox)
    sub = subscription_id(0)
    text = "resources | where name == 'kvbulk00001' | project purge = properties.enablePurgeProtection"
    assert query(client, text, [sub])[0].data == [{"purge": None}]
    kv = KeyVaultManagementClient(sandbox.credential(), sub, base_url=sandbox.base_url, connection_verify=sandbox.ca)
    vault = kv.vaults.get("rg-bulk-1", "kvbulk00001")
    vault.properties.enable_purge_protection = True
    kv.vaults.begin_create_or_update(
        "rg-bulk-1", "kvbulk00001", {"location": vault.location, "properties": vault.properties}, polling_interval=0
    ).result()
    assert kv.vaults.get("rg-bulk-1", "kvbulk00001").properties.enable_purge_protection is True  # ARM: at once
    assert query(client, text, [sub])[0].data == [{"purge": None}]  # Resource Graph: not yet
    sandbox.advance(61)
    assert query(client, text, [sub])[0].data == [{"purge": True}]
