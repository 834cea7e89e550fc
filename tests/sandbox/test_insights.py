"""Diagnostic settings (through the generic resources-by-id API, as azure-mgmt-monitor 7 has no diagnostic_settings
group) and Log Analytics workspaces; plus the generic subscription / group resource lists used for sweeps."""

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.rbac import ROLES

DIAG_API = "2021-05-01-preview"
WS_API = "2023-09-01"
DIAG = "/providers/Microsoft.Insights/diagnosticSettings"


@pytest.fixture
def env(sandbox):
    rm = sandbox.client(ResourceManagementClient)
    rm.resource_groups.create_or_update("rg-mon", {"location": "westeurope"})
    kv = sandbox.client(KeyVaultManagementClient)
    vault = kv.vaults.begin_create_or_update(
        "rg-mon",
        "kv-diag-1",
        {
            "location": "westeurope",
            "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
        },
    ).result()
    rg = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-mon"
    ws_id = f"{rg}/providers/Microsoft.OperationalInsights/workspaces/law-1"
    ws = rm.resources.begin_create_or_update_by_id(
        ws_id,
        {"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}},
        api_version=WS_API,
    ).result()
    return rm, vault.id, ws.id


def _setting(workspace_id, logs=None, metrics=None, **extra):
    props = {
        "workspaceId": workspace_id,
        "logs": logs if logs is not None else [{"categoryGroup": "audit", "enabled": True}],
        "metrics": metrics if metrics is not None else [{"category": "AllMetrics", "enabled": True}],
        **extra,
    }
    return {"properties": props}


def _put(rm, resource_id, name, body):
    return rm.resources.begin_create_or_update_by_id(f"{resource_id}{DIAG}/{name}", body, api_version=DIAG_API).result()


def _http(sandbox, method, path, name="admin", **kwargs):
    token = sandbox.credential(name).get_token("https://management.azure.com/.default").token
    return httpx.request(
        method, f"{sandbox.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, verify=sandbox.ssl, **kwargs
    )


def test_workspace_create_get_list(sandbox, env):
    rm, _, ws_id = env
    ws = rm.resources.get_by_id(ws_id, api_version=WS_API)
    assert ws.type == "Microsoft.OperationalInsights/workspaces"
    assert ws.properties["sku"]["name"] == "PerGB2018"
    assert ws.properties["retentionInDays"] == 30
    assert len(ws.properties["customerId"]) == 36
    r = _http(
        sandbox,
        "GET",
        f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.OperationalInsights/workspaces",
        params={"api-version": "2022-10-01"},
    )
    assert [w["name"] for w in r.json()["value"]] == ["law-1"]
    r = _http(
        sandbox,
        "PUT",
        f"{ws_id[:-1]}x",
        params={"api-version": "2025-02-01"},
        json={"location": "westeurope", "properties": {"retentionInDays": 5}},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidParameter")


def test_diagnostic_setting_put_get_list_delete(sandbox, env):
    rm, vault_id, ws_id = env
    made = _put(rm, vault_id, "to-law", _setting(ws_id, logAnalyticsDestinationType="Dedicated"))
    assert made.id == f"{vault_id}{DIAG}/to-law"
    assert (made.name, made.type) == ("to-law", "Microsoft.Insights/diagnosticSettings")
    assert made.properties["workspaceId"] == ws_id
    assert made.properties["logs"] == [
        {"categoryGroup": "audit", "enabled": True, "retentionPolicy": {"enabled": False, "days": 0}}
    ]
    assert made.properties["metrics"][0]["category"] == "AllMetrics"
    assert made.properties["logAnalyticsDestinationType"] == "Dedicated"
    got = rm.resources.get_by_id(f"{vault_id}{DIAG}/to-law", api_version=DIAG_API)
    assert got.properties == made.properties
    policy_logs = [{"category": "AzurePolicyEvaluationDetails", "enabled": True}]  # not in `audit`: no conflict
    _put(rm, vault_id, "audit-events", _setting(ws_id, logs=policy_logs, metrics=[]))
    r = _http(sandbox, "GET", f"{vault_id}{DIAG}", params={"api-version": DIAG_API})
    assert r.status_code == 200
    assert sorted(s["name"] for s in r.json()["value"]) == ["audit-events", "to-law"]
    assert "nextLink" not in r.json()
    rm.resources.begin_delete_by_id(f"{vault_id}{DIAG}/to-law", api_version=DIAG_API).result()
    with pytest.raises(ResourceNotFoundError) as err:
        rm.resources.get_by_id(f"{vault_id}{DIAG}/to-law", api_version=DIAG_API)
    assert err.value.error.code == "ResourceNotFound"
    r = _http(sandbox, "GET", f"{vault_id}{DIAG}", params={"api-version": "2017-05-01-preview"})
    assert [s["name"] for s in r.json()["value"]] == ["audit-events"]


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"properties": {"logs": [{"category": "AuditEvent", "enabled": True}]}}, "BadRequest", "data sink"),
        (None, "BadRequest", "Category 'Nope' is not supported."),
        ("metric", "BadRequest", "Metric category 'Requests' is not supported, supported categories are: 'AllMetrics'"),
        ("group", "BadRequest", "Category group 'everything' is not supported."),
        ("missing-ws", "ResourceNotFound", "Microsoft.OperationalInsights/workspaces/law-missing"),
        ("relative-ws", "LinkedInvalidPropertyId", "properties.workspaceId"),
    ],
)
def test_refusals(env, body, code, fragment):
    rm, vault_id, ws_id = env
    if body is None:
        body = _setting(ws_id, logs=[{"category": "Nope", "enabled": True}])
    elif body == "metric":
        body = _setting(ws_id, metrics=[{"category": "Requests", "enabled": True}])
    elif body == "group":
        body = _setting(ws_id, logs=[{"categoryGroup": "everything", "enabled": True}])
    elif body == "missing-ws":
        body = _setting(ws_id.replace("law-1", "law-missing"))
    elif body == "relative-ws":
        body = _setting("law-1")
    with pytest.raises(HttpResponseError) as err:
        _put(rm, vault_id, "bad", body)
    assert err.value.error.code == code
    assert fragment in err.value.error.message


def test_at_most_five_and_no_sink_reuse_for_a_category(sandbox, env):
    rm, vault_id, ws_id = env
    _put(rm, vault_id, "s0", _setting(ws_id, logs=[{"category": "AuditEvent", "enabled": True}], metrics=[]))
    with pytest.raises(HttpResponseError) as err:
        _put(rm, vault_id, "dup", _setting(ws_id, logs=[{"category": "AuditEvent", "enabled": True}], metrics=[]))
    assert (err.value.status_code, err.value.error.code) == (409, "Conflict")
    assert err.value.error.message == (
        f"Data sink '{ws_id}' is already used in diagnostic setting 's0' for category 'AuditEvent'. Data sinks can't "
        "be reused in different settings on the same category for the same resource."
    )
    _put(
        rm, vault_id, "s0", _setting(ws_id, logs=[{"categoryGroup": "allLogs", "enabled": True}], metrics=[])
    )  # update
    rg = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-mon/providers"
    for i in range(1, 5):
        sa = f"{rg}/Microsoft.Storage/storageAccounts/sa{i}"
        _put(
            rm,
            vault_id,
            f"s{i}",
            {"properties": {"storageAccountId": sa, "logs": [{"category": "AuditEvent", "enabled": True}]}},
        )
    with pytest.raises(HttpResponseError) as err:
        _put(
            rm,
            vault_id,
            "s5",
            {
                "properties": {
                    "storageAccountId": f"{rg}/Microsoft.Storage/storageAccounts/sa9",
                    "logs": [{"category": "AuditEvent", "enabled": True}],
                }
            },
        )
    assert err.value.error.code == "BadRequest"
    _put(
        rm,
        vault_id,
        "s4",
        {
            "properties": {
                "storageAccountId": f"{rg}/Microsoft.Storage/storageAccounts/sa4",
                "logs": [{"category": "AzurePolicyEvaluationDetails", "enabled": True}],
            }
        },
    )


def test_missing_resource_locks_and_permissions(sandbox, env):
    rm, vault_id, ws_id = env
    missing = vault_id.replace("kv-diag-1", "kv-gone")
    with pytest.raises(HttpResponseError) as err:
        _put(rm, missing, "x", _setting(ws_id))
    assert (err.value.status_code, err.value.error.code) == (404, "ResourceNotFound")
    reader = sandbox.client(ResourceManagementClient, "reader")
    with pytest.raises(HttpResponseError) as err:
        _put(reader, vault_id, "x", _setting(ws_id))
    assert (err.value.status_code, err.value.error.code) == (403, "AuthorizationFailed")
    assert "Microsoft.Insights/diagnosticSettings/write" in err.value.error.message
    bot = sandbox.principal("bot")
    sandbox.client(AuthorizationManagementClient).role_assignments.create(
        vault_id.split("/providers/")[0],  # the group: the vault, and the workspace for the linked check
        "5e1b4b8e-54a5-4a43-9a3c-8b2f3c1d0e11",
        RoleAssignmentCreateParameters(
            role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{ROLES['Monitoring Contributor']}",
            principal_id=bot.object_id,
            principal_type=bot.kind,
        ),
    )
    _put(sandbox.client(ResourceManagementClient, "bot"), vault_id, "by-bot", _setting(ws_id))
    locks = sandbox.client(ManagementLockClient)
    locks.management_locks.create_or_update_by_scope(vault_id, "ro", {"properties": {"level": "ReadOnly"}})
    with pytest.raises(HttpResponseError) as err:
        _put(rm, vault_id, "blocked", _setting(ws_id, logs=[{"category": "AuditEvent", "enabled": True}], metrics=[]))
    assert (err.value.status_code, err.value.error.code) == (409, "ScopeLocked")


def test_generic_resource_lists(sandbox, env):
    rm, vault_id, ws_id = env
    rm.tags.begin_update_at_scope(vault_id, {"operation": "Merge", "properties": {"tags": {"env": "prod"}}}).result()
    _put(rm, vault_id, "to-law", _setting(ws_id))
    everything = {r.id for r in rm.resources.list()}
    assert everything == {vault_id, ws_id}  # no locks, settings, groups or child resources
    vaults = list(rm.resources.list(filter="resourceType eq 'Microsoft.KeyVault/vaults'"))
    assert [(v.id, v.tags) for v in vaults] == [(vault_id, {"env": "prod"})]
    tagged = list(rm.resources.list_by_resource_group("rg-mon", filter="tagName eq 'env' and tagValue eq 'prod'"))
    assert [(v.id, v.tags) for v in tagged] == [(vault_id, None)]  # tags left out when filtering on a tag
    assert list(rm.resources.list(filter="tagName eq 'env' and tagValue eq 'dev'")) == []
    with pytest.raises(HttpResponseError) as err:
        list(rm.resources.list(filter="substringof('kv', name) or name eq 'x'"))
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidFilterInQueryString")
    sandbox.admin("PATCH", "/_sandbox/settings", {"page_size": 1})
    assert {r.id for r in rm.resources.list_by_resource_group("rg-mon")} == {vault_id, ws_id}  # paged
    with pytest.raises(HttpResponseError) as err:
        list(rm.resources.list_by_resource_group("rg-none"))
    assert err.value.error.code == "ResourceGroupNotFound"
    legacy = sandbox.client(KeyVaultManagementClient).vaults.list()  # GET /resources?$filter=resourceType eq ...
    assert [v.id for v in legacy] == [vault_id]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"categoryGroup": "audit"}, {"category": "AuditEvent"}),  # a group stands for its categories
        ({"category": "AuditEvent"}, {"categoryGroup": "allLogs"}),
        ({"categoryGroup": "allLogs"}, {"categoryGroup": "audit"}),
    ],
)
def test_a_category_group_conflicts_with_the_categories_it_holds(sandbox, env, first, second):
    rm, vault_id, ws_id = env
    _put(rm, vault_id, "one", _setting(ws_id, logs=[{**first, "enabled": True}], metrics=[]))
    with pytest.raises(HttpResponseError) as err:
        _put(rm, vault_id, "two", _setting(ws_id, logs=[{**second, "enabled": True}], metrics=[]))
    assert (err.value.status_code, err.value.error.code) == (409, "Conflict")
    assert "for category 'AuditEvent'" in err.value.error.message


def test_other_categories_and_other_sinks_do_not_conflict(sandbox, env):
    rm, vault_id, ws_id = env
    _put(rm, vault_id, "one", _setting(ws_id, logs=[{"category": "AzurePolicyEvaluationDetails", "enabled": True}]))
    _put(rm, vault_id, "two", _setting(ws_id, logs=[{"categoryGroup": "audit", "enabled": True}], metrics=[]))
    rg = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-mon/providers"
    other = {
        "storageAccountId": f"{rg}/Microsoft.Storage/storageAccounts/sa1",
        "logs": [{"categoryGroup": "allLogs", "enabled": True}],
    }
    _put(rm, vault_id, "three", {"properties": other})


def test_a_workspace_sink_needs_its_shared_keys_action_on_the_workspace(sandbox, env):
    # ARM's linked-scope check: diagnosticSettings/write on the vault is not enough to name a workspace.
    _, vault_id, ws_id = env
    auth = sandbox.client(AuthorizationManagementClient)
    bot = sandbox.principal("bot")
    monitoring_contributor = ROLES["Monitoring Contributor"]
    role = f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
    auth.role_assignments.create(
        vault_id,
        "0f0e0d0c-0b0a-4909-8807-060504030201",
        RoleAssignmentCreateParameters(
            role_definition_id=role + monitoring_contributor,
            principal_id=bot.object_id,
            principal_type="ServicePrincipal",
        ),
    )
    path = f"{vault_id}{DIAG}/by-bot"
    r = _http(sandbox, "PUT", path, "bot", params={"api-version": DIAG_API}, json=_setting(ws_id))
    assert r.status_code == 403 and r.json()["error"]["code"] == "LinkedAuthorizationFailed"
    assert r.json()["error"]["message"] == (
        f"The client '{bot.object_id}' with object id '{bot.object_id}' has permission to perform action "
        f"'Microsoft.Insights/diagnosticSettings/write' on scope '{path}'; however, it does not have permission to "
        f"perform action(s) 'Microsoft.OperationalInsights/workspaces/sharedKeys/action' on the linked scope(s) "
        f"'{ws_id}' (respectively) or the linked scope(s) are invalid."
    )
    auth.role_assignments.create(
        ws_id,
        "0f0e0d0c-0b0a-4909-8807-060504030202",
        RoleAssignmentCreateParameters(
            role_definition_id=role + monitoring_contributor,
            principal_id=bot.object_id,
            principal_type="ServicePrincipal",
        ),
    )
    r = _http(sandbox, "PUT", path, "bot", params={"api-version": DIAG_API}, json=_setting(ws_id))
    assert r.status_code == 200, r.text
