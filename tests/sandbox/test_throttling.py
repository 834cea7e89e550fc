"""ARM's token-bucket throttling and the Key Vault data plane's limits, as the real SDK clients meet them: the
ratelimit headers counting down, 429 SubscriptionRequestsThrottled with Retry-After, azure-core retrying through it,
the global (all principals) bucket, tenant-level requests, refill by the sandbox clock, and Key Vault's `Throttled`."""

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

RG = "rg-throttle"
FAST = {"retry_backoff_factor": 0.01}  # azure-core's backoff when Retry-After is 0 or absent


@pytest.fixture
def rm(sandbox):
    client = sandbox.client(ResourceManagementClient, **FAST)
    client.resource_groups.create_or_update(RG, {"location": "westeurope"})
    return client


def settings(sandbox, **values):
    return sandbox.admin("PATCH", "/_sandbox/settings", values)


def headers_of(call):
    seen = []
    call(raw_response_hook=lambda r: seen.append(r.http_response.headers))
    return seen[-1]


def arm_get(sandbox, path, principal="admin"):
    token = sandbox.credential(principal).get_token("https://management.azure.com/.default").token
    with httpx.Client(verify=sandbox.ssl, headers={"Authorization": f"Bearer {token}"}) as client:
        return client.get(f"{sandbox.base_url}{path}")


def test_defaults_are_the_documented_buckets(sandbox):
    got = sandbox.admin("GET", "/_sandbox/settings")
    assert got["throttle"] is True
    assert (got["read_budget"], got["read_refill"], got["write_budget"], got["write_refill"]) == (250, 25, 200, 10)
    assert (got["delete_budget"], got["delete_refill"], got["global_factor"]) == (200, 10, 15)
    assert (got["kv_budget"], got["kv_window_seconds"], got["kv_subscription_factor"]) == (4000, 10, 5)


def test_remaining_headers_count_down_per_operation_type(rm):
    first = headers_of(lambda **kw: rm.resource_groups.get(RG, **kw))
    second = headers_of(lambda **kw: rm.resource_groups.get(RG, **kw))
    reads, global_reads = (
        int(first["x-ms-ratelimit-remaining-subscription-reads"]),
        int(first["x-ms-ratelimit-remaining-subscription-global-reads"]),
    )
    assert 240 <= reads <= 249 and 3740 <= global_reads <= 3749  # refill may have put one back meanwhile
    assert int(second["x-ms-ratelimit-remaining-subscription-reads"]) in (reads - 1, reads)
    put = headers_of(lambda **kw: rm.resource_groups.create_or_update(RG, {"location": "westeurope"}, **kw))
    assert "x-ms-ratelimit-remaining-subscription-reads" not in put
    assert 190 <= int(put["x-ms-ratelimit-remaining-subscription-writes"]) <= 199
    assert 2990 <= int(put["x-ms-ratelimit-remaining-subscription-global-writes"]) <= 2999


def test_over_budget_is_a_429_the_sdk_reports_after_its_retries(sandbox, rm):
    settings(sandbox, read_budget=3, read_refill=0.01, retry_after=0)
    client = sandbox.client(ResourceManagementClient, retry_total=2, **FAST)
    seen = []
    for _ in range(3):  # a settings change starts buckets full
        client.resource_groups.get(RG, raw_response_hook=lambda r: seen.append(r.http_response.headers))
    assert [h["x-ms-ratelimit-remaining-subscription-reads"] for h in seen] == ["2", "1", "0"]
    start = len(sandbox.calls())
    with pytest.raises(HttpResponseError) as caught:
        client.resource_groups.get(RG)
    error = caught.value
    assert (error.status_code, error.error.code) == (429, "SubscriptionRequestsThrottled")
    assert error.response.headers["Retry-After"] == "0"
    admin = sandbox.principal("admin").object_id
    assert error.error.message == (
        f"Number of 'read' requests for subscription '{sandbox.subscription_id}' actor '{admin}' exceeded. Please "
        "try again after '0' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling "
        "for additional information."
    )
    tried = [c for c in sandbox.calls(start) if c["plane"] == "arm"]
    assert [(c["status"], c["throttled"]) for c in tried] == [(429, True)] * 3  # the first try and two retries
    # writes have their own bucket
    rm.resource_groups.create_or_update(RG, {"location": "westeurope", "tags": {"a": "b"}})


def test_the_sdk_retries_through_throttling_until_tokens_come_back(sandbox, rm):
    settings(sandbox, read_budget=1, read_refill=20.0, retry_after=0)  # a token every 50 ms
    client = sandbox.client(ResourceManagementClient, retry_total=6, retry_backoff_factor=0.05)
    start = len(sandbox.calls())
    for _ in range(3):
        assert client.resource_groups.get(RG).name == RG
    statuses = [c["status"] for c in sandbox.calls(start) if c["plane"] == "arm"]
    assert statuses.count(200) == 3 and 429 in statuses


def test_computed_retry_after_is_the_wait_for_a_token(sandbox, rm):
    settings(sandbox, read_budget=1, read_refill=0.25)  # one token every 4 s
    groups = f"/subscriptions/{sandbox.subscription_id}/resourcegroups?api-version=2025-04-01"
    assert arm_get(sandbox, groups).is_success
    answer = arm_get(sandbox, groups)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "4"
    assert answer.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert answer.json()["error"]["code"] == "SubscriptionRequestsThrottled"


def test_the_sandbox_clock_refills_buckets(sandbox, rm):
    settings(sandbox, read_budget=1, read_refill=0.01, retry_after=0)
    path = f"/subscriptions/{sandbox.subscription_id}/resourcegroups/{RG}?api-version=2025-04-01"
    assert arm_get(sandbox, path).status_code == 200
    assert arm_get(sandbox, path).status_code == 429
    sandbox.advance(100)
    assert arm_get(sandbox, path).status_code == 200


def test_the_global_bucket_is_shared_by_every_principal(sandbox, rm):
    settings(sandbox, read_budget=2, read_refill=0.01, global_factor=1.5, retry_after=0)  # global: 3 tokens
    path = f"/subscriptions/{sandbox.subscription_id}/resourcegroups/{RG}?api-version=2025-04-01"
    assert [arm_get(sandbox, path).status_code for _ in range(2)] == [200, 200]
    assert arm_get(sandbox, path, "reader").status_code == 200
    refused = arm_get(sandbox, path, "reader")  # the reader has a token of its own left, the subscription none
    assert refused.status_code == 429
    assert refused.headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
    assert refused.headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "0"
    assert "actor" not in refused.json()["error"]["message"]


def test_tenant_requests_have_tenant_buckets(sandbox):
    answer = arm_get(sandbox, "/subscriptions?api-version=2022-12-01")
    assert answer.status_code == 200
    assert int(answer.headers["x-ms-ratelimit-remaining-tenant-reads"]) in (248, 249)
    assert "x-ms-ratelimit-remaining-subscription-global-reads" not in answer.headers


def test_switched_off_it_counts_but_never_refuses(sandbox, rm):
    settings(sandbox, read_budget=1, read_refill=0.01, throttle=False)
    for _ in range(3):
        headers = headers_of(lambda **kw: rm.resource_groups.get(RG, **kw))
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"


def test_key_vault_data_plane_limits_are_per_vault_and_weighted(sandbox, rm):
    kv = sandbox.client(KeyVaultManagementClient)
    admin = {"tenantId": sandbox.tenant_id, "objectId": sandbox.principal("admin").object_id}
    properties = {
        "tenantId": sandbox.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": False,
        "accessPolicies": [{**admin, "permissions": {"keys": ["get", "create"]}}],
    }
    vault = kv.vaults.begin_create_or_update(RG, "kv-throttle", {"location": "westeurope", "properties": properties})
    keys = KeyClient(
        vault_url=vault.result().properties.vault_uri,
        credential=sandbox.credential("admin"),
        verify_challenge_resource=False,
        connection_verify=sandbox.ca,
        retry_total=0,
    )
    keys.create_rsa_key("small", size=2048)
    keys.create_rsa_key("big", size=4096)
    settings(sandbox, kv_budget=10)  # a fresh bucket: 10 RSA-2048 GETs, or one RSA-4096 GET (8) and two more
    keys.get_key("big")
    keys.get_key("small")
    keys.get_key("small")
    with pytest.raises(HttpResponseError) as caught:
        keys.get_key("small")
    error = caught.value
    assert (error.status_code, error.error.code) == (429, "Throttled")
    assert error.error.message == (
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
    )
    assert sandbox.calls()[-1]["throttled"] is True
