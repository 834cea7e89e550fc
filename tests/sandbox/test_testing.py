"""The pytest plugin (sandbox/testing.py): a test starts with a call log of its own, even when an earlier test gave
up on a slow answer that the sandbox was still making."""

import httpx
import pytest
from azure.core.exceptions import ServiceResponseError
from azure.mgmt.resource.resources import ResourceManagementClient


def test_settle_waits_for_an_answer_a_client_gave_up_on(sandbox):
    rm = sandbox.client(ResourceManagementClient, retry_total=0)
    rm.resource_groups.create_or_update("rg-slow", {"location": "westeurope"})
    path = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-slow"
    sandbox.admin("POST", "/_sandbox/faults", {"rules": [{"kind": "slow", "path": path, "delayMs": 500, "count": 1}]})
    start = len(sandbox.calls())
    with pytest.raises((ServiceResponseError, httpx.ReadTimeout)):
        rm.resource_groups.get("rg-slow", read_timeout=0.05)
    sandbox.settle()
    assert [(c["path"].lower(), c["fault"]) for c in sandbox.calls(start)] == [(path.lower(), "slow")]
