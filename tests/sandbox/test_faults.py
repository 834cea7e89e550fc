"""Injected faults as the real SDK clients meet them: azure-core retrying 500/503/429 and honouring Retry-After,
giving up with ARM's error code past its budget, connection resets and slow answers surfacing as
ServiceResponseError, LROs that end Failed without the change, seeded reproducibility, the token endpoint, delivery
faults, and the call log's filters and summary."""

import time

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseError
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import TagsResource

from tests.waits import limit, wait_until

RG = "rg-faults"
FAST = {"retry_backoff_factor": 0.01}
GET_RG = f"/resourcegroups/{RG}$"


@pytest.fixture
def rm(sandbox):
    client = sandbox.client(ResourceManagementClient, **FAST)
    client.resource_groups.create_or_update(RG, {"location": "westeurope", "tags": {"env": "prod"}})
    return client


def inject(sandbox, *rules, seed=0):
    return sandbox.admin("POST", "/_sandbox/faults", {"seed": seed, "rules": list(rules)})


def arm_calls(sandbox, start):
    return [c for c in sandbox.calls(start) if c["plane"] == "arm"]


def test_500s_are_retried_by_azure_core_until_it_works(sandbox, rm):
    inject(sandbox, {"kind": "500", "method": "GET", "path": GET_RG, "count": 2})
    start = len(sandbox.calls())
    client = sandbox.client(ResourceManagementClient, retry_total=3, **FAST)
    assert client.resource_groups.get(RG).tags == {"env": "prod"}
    assert [(c["status"], c["fault"]) for c in arm_calls(sandbox, start)] == [(500, "500"), (500, "500"), (200, None)]
    assert sandbox.admin("GET", "/_sandbox/faults")["rules"][0]["fired"] == 2


def test_past_the_retry_budget_the_sdk_raises_arms_error(sandbox, rm):
    inject(sandbox, {"kind": "503", "path": GET_RG})
    start = len(sandbox.calls())
    client = sandbox.client(ResourceManagementClient, retry_total=2, **FAST)
    with pytest.raises(HttpResponseError) as caught:
        client.resource_groups.get(RG)
    assert (caught.value.status_code, caught.value.error.code) == (503, "ServiceUnavailable")
    assert [c["status"] for c in arm_calls(sandbox, start)] == [503, 503, 503]
    sandbox.admin("DELETE", "/_sandbox/faults")
    inject(sandbox, {"kind": "500", "path": GET_RG})
    with pytest.raises(HttpResponseError) as caught:
        client.resource_groups.get(RG)
    error = caught.value.error
    assert error.code == "InternalServerError"
    assert error.message.startswith("Encountered internal server error. Diagnostic information: timestamp '")
    assert f"subscription id '{sandbox.subscription_id}'" in error.message


def test_an_injected_429_is_retried_after_its_retry_after(sandbox, rm):
    inject(sandbox, {"kind": "429", "path": GET_RG, "count": 1, "retryAfter": 1})
    client = sandbox.client(ResourceManagementClient, retry_total=3, **FAST)
    start, began = len(sandbox.calls()), time.monotonic()
    assert client.resource_groups.get(RG).name == RG
    assert time.monotonic() - began >= 1.0  # azure-core slept the Retry-After, not its 0.01 s backoff
    assert [(c["status"], c["fault"]) for c in arm_calls(sandbox, start)] == [(429, "429"), (200, None)]


def test_a_reset_connection_is_a_service_response_error(sandbox, rm):
    inject(sandbox, {"kind": "reset", "path": GET_RG})
    client = sandbox.client(ResourceManagementClient, retry_total=1, **FAST)
    start = len(sandbox.calls())
    with pytest.raises(ServiceResponseError) as caught:
        client.resource_groups.get(RG)
    # The kernel sends an RST; Python's TLS layer (OpenSSL 3) reports it as an EOF: urllib3 "Connection aborted".
    assert "Connection aborted" in str(caught.value)
    assert [(c["status"], c["fault"]) for c in arm_calls(sandbox, start)] == [(None, "reset")] * 2
    inject(sandbox, {"kind": "reset", "path": GET_RG, "count": 1})  # one reset: the retry gets through
    assert client.resource_groups.get(RG).name == RG


def test_a_slow_answer_trips_the_clients_read_timeout(sandbox, rm):
    inject(sandbox, {"kind": "slow", "path": GET_RG, "delayMs": 400, "count": 1})
    client = sandbox.client(ResourceManagementClient, retry_total=0)
    with pytest.raises(ServiceResponseError):
        client.resource_groups.get(RG, read_timeout=0.1)  # the answer cannot come sooner than 400 ms
    # The retry has to be answered within the same read timeout: one that an answer that is not slow (milliseconds)
    # meets on a busy machine too, with the slow answer slower still.
    patience = limit(1.0)
    inject(sandbox, {"kind": "slow", "path": GET_RG, "delayMs": int(patience * 1000) + 500, "count": 1})
    retrying = sandbox.client(ResourceManagementClient, retry_total=1, **FAST)
    assert retrying.resource_groups.get(RG, read_timeout=patience).name == RG  # the retry is not slow
    # A slow answer is logged when its delay is over: wait for both, so that none lands in a later test's call log.
    wait_until(lambda: sum(1 for c in sandbox.calls() if c["fault"] == "slow") == 2, "both slow answers logged")


def test_a_failed_lro_raises_with_its_code_and_changes_nothing(sandbox, rm):
    scope = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{RG}"
    inject(sandbox, {"kind": "lroFailed", "method": "PUT", "path": "/tags/default", "code": "TagsUpdateFailed"})
    poller = rm.tags.begin_create_or_update_at_scope(scope, TagsResource(properties={"tags": {"env": "test"}}))
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    assert "TagsUpdateFailed" in str(caught.value)
    assert rm.resource_groups.get(RG).tags == {"env": "prod"}  # unchanged
    ops = sandbox.admin("GET", "/_sandbox/operations")["value"]
    assert ops[-1]["status"] == "Failed" and ops[-1]["resource_id"].endswith("/tags/default")
    # a long-running DELETE that fails leaves the group in place
    inject(sandbox, {"kind": "lroFailed", "method": "DELETE", "path": GET_RG})
    with pytest.raises(HttpResponseError) as caught:
        rm.resource_groups.begin_delete(RG).result()
    assert "InternalExecutionError" in str(caught.value)
    assert rm.resource_groups.get(RG).name == RG
    assert sandbox.admin("GET", "/_sandbox/faults")["rules"][0]["fired"] == 1


def test_lro_failure_only_counts_when_a_long_running_write_happens(sandbox, rm):
    inject(sandbox, {"kind": "lroFailed", "count": 1})
    rm.resource_groups.get(RG)  # a read: nothing to fail
    rm.resource_groups.create_or_update(RG, {"location": "westeurope", "tags": {"x": "y"}})  # not an LRO
    assert sandbox.admin("GET", "/_sandbox/faults")["rules"][0]["fired"] == 0
    with pytest.raises(HttpResponseError):
        rm.resource_groups.begin_delete(RG).result()
    rm.resource_groups.begin_delete(RG).result()  # the rule is spent: this one goes through
    with pytest.raises(ResourceNotFoundError):
        rm.resource_groups.get(RG)


def test_the_same_seed_gives_the_same_faults(sandbox, rm):
    token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    url = f"{sandbox.base_url}/subscriptions/{sandbox.subscription_id}/resourcegroups/{RG}?api-version=2025-04-01"

    def run(seed):
        inject(sandbox, {"kind": "500", "rate": 0.5, "method": "GET"}, {"kind": "503", "rate": 0.5}, seed=seed)
        with httpx.Client(verify=sandbox.ssl, headers={"Authorization": f"Bearer {token}"}) as client:
            return [client.get(url).status_code for _ in range(24)]

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert {500, 503, 200} <= set(first)
    faults = sandbox.admin("GET", "/_sandbox/faults")
    assert sum(r["fired"] for r in faults["rules"]) == len(faults["history"]) == 24 - other.count(200)


def test_rules_match_by_principal_and_never_touch_the_admin_api(sandbox, rm):
    inject(sandbox, {"kind": "500", "principal": "reader", "path": ".*", "method": ".*"})
    start = len(sandbox.calls())
    assert sandbox.admin("GET", "/_sandbox/health")["status"] == "ok"
    assert rm.resource_groups.get(RG).name == RG  # the admin is not the reader
    reader = sandbox.client(ResourceManagementClient, "reader", retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        reader.resource_groups.get(RG)
    assert caught.value.status_code == 500
    (call,) = [c for c in sandbox.calls(start) if c["fault"]]
    assert call["principal"] == sandbox.principal("reader").object_id


def test_the_token_endpoint_only_fails_for_rules_that_name_it(sandbox):
    inject(sandbox, {"kind": "500"})  # every ARM request, but not the token endpoint
    sandbox.credential("reader").get_token("https://management.azure.com/.default")
    inject(sandbox, {"kind": "500", "path": "/msi/token", "count": 1})
    token = sandbox.credential("reader").get_token("https://management.azure.com/.default")  # retried once
    assert token.token
    tokens = [(c["status"], c["fault"]) for c in sandbox.calls() if c["plane"] == "token"]
    assert tokens[-2:] == [(500, "500"), (200, None)]


def test_delivery_faults_for_the_event_engine(sandbox):
    inject(
        sandbox,
        {"on": "delivery", "kind": "timeout", "path": "hooks\\.example", "delayMs": 50, "count": 1},
        {"on": "delivery", "kind": "drop", "path": "other"},
    )
    faults = sandbox.running.sandbox.faults
    first = faults.for_delivery("https://hooks.example/cryptward")
    assert (first.kind, first.delay_ms) == ("timeout", 50)
    assert faults.for_delivery("https://hooks.example/cryptward") is None  # count spent
    assert faults.for_delivery("https://other.example/x").kind == "drop"
    assert faults.active is False  # delivery rules leave the request path alone


def test_rules_are_validated(sandbox):
    for bad in (
        {"kind": "418"},
        {"kind": "500", "rate": 2},
        {"kind": "500", "colour": "x"},
        {"kind": "5", "path": "("},
    ):
        answer = sandbox.admin_api.post("/_sandbox/faults", json=[bad])
        assert answer.status_code == 400, bad
    answer = sandbox.admin_api.post("/_sandbox/faults", json=[{"on": "delivery", "kind": "reset"}])
    assert "valid: ['timeout', '500', 'drop']" in answer.json()["error"]["message"]


def test_call_log_filters_and_summary(sandbox, rm):
    inject(sandbox, {"kind": "503", "principal": "reader", "count": 1})
    reader = sandbox.client(ResourceManagementClient, "reader", retry_total=1, **FAST)
    reader.resource_groups.get(RG)
    rm.resource_groups.create_or_update(RG, {"location": "westeurope"})
    mine = sandbox.admin("GET", "/_sandbox/calls?principal=reader&plane=arm")["value"]
    assert [(c["method"], c["status"], c["fault"]) for c in mine] == [("GET", 503, "503"), ("GET", 200, None)]
    assert all(c["correlationId"] for c in mine)
    puts = sandbox.admin("GET", "/_sandbox/calls?method=put")["value"]
    assert [c["principalName"] for c in puts] == [sandbox.principal("admin").display_name] * 2
    operation = sandbox.admin("GET", "/_sandbox/operations")["value"][-1]
    assert operation["correlation_id"] == puts[-1]["correlationId"]  # one id: answer, call log, activity log
    summary = sandbox.admin("GET", "/_sandbox/calls/summary?plane=arm")
    assert (summary["calls"], summary["reads"], summary["writes"]) == (4, 2, 2)
    assert summary["byStatus"] == {"201": 1, "200": 2, "503": 1}  # the fixture's PUT made the group
    assert summary["faults"] == {"503": 1}
    by_reader = summary["byPrincipal"][sandbox.principal("reader").display_name]
    assert (by_reader["reads"], by_reader["writes"], by_reader["byStatus"]) == (2, 0, {"503": 1, "200": 1})
    later = sandbox.admin("GET", f"/_sandbox/calls?since={mine[-1]['time']}&plane=arm")["value"]
    assert mine[-1] in later
