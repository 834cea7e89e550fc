"""PIM schedule instances (roleEligibilityScheduleInstances / roleAssignmentScheduleInstances, api 2020-10-01) listed
at a scope through ARM, with their spec shapes (azure-rest-api-specs authorization stable/2020-10-01)."""

import httpx
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.providers.authorization_pim import ACTIVE, ELIGIBLE, add_instance

KV_ADMIN = "00482a5a-887f-4fb3-b363-3b7fe8e74483"


def _list(sandbox, scope, kind, flt=None, who="admin"):
    token = sandbox.credential(who).get_token("https://management.azure.com/.default").token
    params = {"api-version": "2020-10-01", **({"$filter": flt} if flt else {})}
    return httpx.get(
        f"{sandbox.base_url}{scope}/providers/{kind}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ssl,
    )


def test_instances_at_and_above_a_scope_are_listed_with_the_spec_properties(sandbox):
    sandbox.reset("empty")
    state = sandbox.running.sandbox.state
    sub = f"/subscriptions/{sandbox.subscription_id}"
    user = sandbox.principal("vault-owner")
    add_instance(state, ELIGIBLE, sub, user, KV_ADMIN)
    add_instance(state, ACTIVE, f"{sub}/resourceGroups/rg-other", user, KV_ADMIN, assignmentType="Assigned")
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-kv", {"location": "westeurope"})
    vault = f"{sub}/resourceGroups/rg-kv"
    answer = _list(sandbox, vault, ELIGIBLE, "atScope()")
    assert answer.status_code == 200
    [item] = answer.json()["value"]
    assert item["type"] == ELIGIBLE
    props = item["properties"]
    assert {"scope", "roleDefinitionId", "principalId", "principalType", "status", "memberType"} <= set(props)
    assert props["principalType"] == "User" and props["scope"] == sub
    assert _list(sandbox, vault, ACTIVE, "atScope()").json()["value"] == []  # another group's is not above
    assert len(_list(sandbox, sub, ACTIVE).json()["value"]) == 1  # below the subscription


def test_a_filter_the_sandbox_does_not_serve_is_refused_with_azure_code(sandbox):
    sandbox.reset("empty")
    answer = _list(sandbox, f"/subscriptions/{sandbox.subscription_id}", ELIGIBLE, "asTarget()")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidFilterInQueryString"
