"""Azure Monitor in the sandbox through azure-mgmt-monitor 7.0.0: the activity log (activity_logs.list), activity-log
alert rules and action groups, and alerts fired at a webhook receiver in the common alert schema."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox import alerts
from tests.waits import wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "azure-specs" / "examples" / "monitor"
RG = "rg-alerts"


@pytest.fixture
def mon(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    return sandbox.client(MonitorManagementClient)


def _sub(sandbox):
    return f"/subscriptions/{sandbox.subscription_id}"


def _group_id(sandbox, name="ag-1"):
    return f"{_sub(sandbox)}/resourceGroups/{RG}/providers/microsoft.insights/actionGroups/{name}"


def _action_group(mon, sandbox, name="ag-1", *, common=True, receiver="alerts", enabled=True):
    return mon.action_groups.create_or_update(
        RG,
        name,
        {
            "location": "Global",
            "group_short_name": "cw-alerts",
            "enabled": enabled,
            "webhook_receivers": [
                {
                    "name": "hook",
                    "service_uri": f"{sandbox.base_url}/_receivers/webhook/{receiver}",
                    "use_common_alert_schema": common,
                }
            ],
            "email_receivers": [{"name": "ops", "email_address": "ops@contoso.com", "use_common_alert_schema": True}],
        },
    )


def _rule(mon, sandbox, name="kv-changes", *, operation="Microsoft.KeyVault/vaults/write", group="ag-1", **extra):
    return mon.activity_log_alerts.create_or_update(
        RG,
        name,
        {
            "location": "Global",
            "scopes": [_sub(sandbox)],
            "condition": {
                "all_of": [
                    {"field": "category", "equals": "Administrative"},
                    {"field": "operationName", "equals": operation},
                ]
            },
            "actions": {
                "action_groups": [
                    {"action_group_id": _group_id(sandbox, group), "webhook_properties": {"team": "crypto"}}
                ]
            },
            "enabled": True,
            "description": "Key Vault changed",
            **extra,
        },
    )


def _vault(sandbox, name="kv-alerted-1"):
    kv = sandbox.client(KeyVaultManagementClient)
    return kv.vaults.begin_create_or_update(
        RG,
        name,
        {
            "location": "westeurope",
            "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
        },
    ).result()


def _delivered(sandbox):
    """Wait until every webhook delivery of every fired alert has ended (succeeded or failed, retries included).
    Alerts fire while the write that causes them is answered, so after this nothing more comes."""

    def pending():
        return [d for a in sandbox.admin("GET", "/_sandbox/alerts")["value"] for d in a["deliveries"]
                if d["status"] == "Pending"]  # fmt: skip

    wait_until(lambda: not pending(), lambda: f"alert deliveries still pending: {pending()}")


def _received(sandbox, receiver):
    return sandbox.admin("GET", f"/_sandbox/received?receiver={receiver}")["value"]


def _window(sandbox, minutes=5):
    now = datetime.fromisoformat(sandbox.admin("GET", "/_sandbox/clock")["now"].replace("Z", "+00:00"))
    start, end = now - timedelta(minutes=minutes), now + timedelta(minutes=minutes)
    return f"eventTimestamp ge '{start.isoformat()}' and eventTimestamp le '{end.isoformat()}'"


# -- action groups and rules -----------------------------------------------------------------------------------


def test_action_group_crud(sandbox, mon):
    created = _action_group(mon, sandbox)
    assert created.id == _group_id(sandbox)
    assert created.type == "Microsoft.Insights/ActionGroups" and created.location == "Global"
    assert created.webhook_receivers[0].use_aad_auth is False
    assert created.email_receivers[0].status == "Enabled"
    assert created.sms_receivers == [] and created.event_hub_receivers == []
    got = mon.action_groups.get(RG, "ag-1")
    assert got.group_short_name == "cw-alerts" and got.enabled is True
    assert [g.name for g in mon.action_groups.list_by_subscription_id()] == ["ag-1"]
    assert [g.name for g in mon.action_groups.list_by_resource_group(RG)] == ["ag-1"]
    patched = mon.action_groups.update(RG, "ag-1", {"tags": {"env": "test"}, "enabled": False})
    assert patched.enabled is False and patched.tags == {"env": "test"}
    mon.action_groups.delete(RG, "ag-1")
    with pytest.raises(ResourceNotFoundError):
        mon.action_groups.get(RG, "ag-1")


def test_action_group_validation(sandbox, mon):
    body = {"location": "Global", "group_short_name": "much-too-long-name", "enabled": True}
    with pytest.raises(HttpResponseError) as err:
        mon.action_groups.create_or_update(RG, "ag-bad", body)
    assert err.value.status_code == 400 and "12" in err.value.message
    body = {
        "location": "Global",
        "group_short_name": "ok",
        "enabled": True,
        "webhook_receivers": [{"name": "h", "service_uri": "not-a-url"}],
    }
    with pytest.raises(HttpResponseError):
        mon.action_groups.create_or_update(RG, "ag-bad", body)


def test_activity_log_alert_crud_like_the_example(sandbox, mon):
    example = json.loads((EXAMPLES / "ActivityLogAlertRule_CreateOrUpdate.json").read_text())
    rule = example["parameters"]["activityLogAlertRule"]
    rule["properties"]["scopes"] = [_sub(sandbox)]
    rule["properties"]["actions"]["actionGroups"][0]["actionGroupId"] = _group_id(sandbox)
    created = mon.activity_log_alerts.create_or_update(RG, "SampleActivityLogAlertRule", rule)
    rule_id = (
        f"{_sub(sandbox)}/resourceGroups/{RG}/providers/microsoft.insights/activityLogAlerts/SampleActivityLogAlertRule"
    )
    assert created.id == rule_id
    assert "/providers/microsoft.insights/" in created.id
    assert created.type == "Microsoft.Insights/ActivityLogAlerts" and created.location == "Global"
    assert [(c.field, c.equals) for c in created.condition.all_of] == [
        ("category", "Administrative"),
        ("level", "Error"),
    ]
    assert created.actions.action_groups[0].webhook_properties == {"sampleWebhookProperty": "SamplePropertyValue"}
    assert created.enabled is True and created.description == "Description of sample Activity Log Alert rule."
    assert [r.name for r in mon.activity_log_alerts.list_by_subscription_id()] == ["SampleActivityLogAlertRule"]
    assert [r.name for r in mon.activity_log_alerts.list_by_resource_group(RG)] == ["SampleActivityLogAlertRule"]
    patched = mon.activity_log_alerts.update(RG, "SampleActivityLogAlertRule", {"enabled": False, "tags": {"a": "b"}})
    assert patched.enabled is False and patched.tags == {"a": "b"}
    mon.activity_log_alerts.delete(RG, "SampleActivityLogAlertRule")
    with pytest.raises(ResourceNotFoundError):
        mon.activity_log_alerts.get(RG, "SampleActivityLogAlertRule")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"location": "westeurope"}, "Global"),
        ({"condition": {"all_of": [{"field": "operationName", "equals": "x"}]}}, "category"),
        ({"scopes": []}, "scope"),
    ],
)
def test_activity_log_alert_validation(sandbox, mon, change, words):
    body = {
        "location": "Global",
        "scopes": [_sub(sandbox)],
        "condition": {"all_of": [{"field": "category", "equals": "Administrative"}]},
        "actions": {"action_groups": []},
        **change,
    }
    with pytest.raises(HttpResponseError) as err:
        mon.activity_log_alerts.create_or_update(RG, "bad", body)
    assert err.value.status_code == 400 and words in err.value.message


# -- the activity log ------------------------------------------------------------------------------------------


def test_activity_log_lists_writes_with_azure_shape(sandbox, mon):
    vault = _vault(sandbox)
    events = list(mon.activity_logs.list(filter=_window(sandbox)))
    writes = [e for e in events if e.operation_name.value == "Microsoft.KeyVault/vaults/write"]
    assert len(writes) == 1
    e = writes[0]
    assert e.resource_id == vault.id and e.resource_group_name == RG
    assert e.category.value == "Administrative" and e.event_name.value == "EndRequest"
    assert e.level == "Informational" and e.status.value == "Succeeded" and e.sub_status.value in ("OK", "Created")
    assert (
        e.resource_type.value == "Microsoft.KeyVault/vaults" and e.resource_provider_name.value == "Microsoft.KeyVault"
    )
    assert e.authorization.action == "Microsoft.KeyVault/vaults/write" and e.authorization.scope == vault.id
    assert e.caller == sandbox.principal("admin").upn or e.caller == sandbox.principal("admin").object_id
    assert (
        e.claims["http://schemas.microsoft.com/identity/claims/objectidentifier"]
        == sandbox.principal("admin").object_id
    )
    assert e.subscription_id == sandbox.subscription_id and e.tenant_id == sandbox.tenant_id
    assert e.properties["statusCode"] == e.sub_status.value and e.properties["entity"] == vault.id
    assert e.id.startswith(f"{vault.id}/events/{e.event_data_id}/ticks/")
    # newest first; the group's creation came before the vault
    names = [x.operation_name.value for x in events]
    assert names.index("Microsoft.KeyVault/vaults/write") < names.index(
        "Microsoft.Resources/subscriptions/resourceGroups/write"
    )


def test_activity_log_filters_select_and_the_sandbox_clock(sandbox, mon):
    vault = _vault(sandbox)
    window = _window(sandbox)
    by_group = list(mon.activity_logs.list(filter=f"{window} and resourceGroupName eq '{RG}'"))
    assert {e.resource_group_name for e in by_group} == {RG}
    by_uri = list(mon.activity_logs.list(filter=f"{window} and resourceUri eq '{vault.id}'"))
    assert [e.operation_name.value for e in by_uri] == ["Microsoft.KeyVault/vaults/write"]
    corr = by_uri[0].correlation_id
    assert [e.event_data_id for e in mon.activity_logs.list(filter=f"{window} and correlationId eq '{corr}'")] == [
        by_uri[0].event_data_id
    ]
    selected = list(
        mon.activity_logs.list(filter=f"{window} and resourceUri eq '{vault.id}'", select="eventName,level")
    )
    assert selected[0].level == "Informational" and selected[0].operation_name is None
    # timestamps come from the sandbox clock: two days on, the last hour holds nothing of today's writes
    sandbox.advance(2 * 86400)
    assert list(mon.activity_logs.list(filter=_window(sandbox, minutes=60))) == []


def test_activity_log_pages_and_requires_a_time_range(sandbox, mon):
    for i in range(3):
        sandbox.client(ResourceManagementClient).resource_groups.create_or_update(f"rg-p{i}", {"location": "westus"})
    sandbox.admin("PATCH", "/_sandbox/settings", {"page_size": 2})
    pages = list(mon.activity_logs.list(filter=_window(sandbox)).by_page())
    assert len(pages) >= 2 and sum(len(list(p)) for p in pages) >= 4
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    url = f"{sandbox.base_url}{_sub(sandbox)}/providers/Microsoft.Insights/eventtypes/management/values"
    r = httpx.get(
        url, params={"api-version": "2015-04-01"}, headers={"Authorization": f"Bearer {token}"}, verify=sandbox.ssl
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    bad = {"api-version": "2015-04-01", "$filter": "level eq 'Error'"}
    r = httpx.get(url, params=bad, headers={"Authorization": f"Bearer {token}"}, verify=sandbox.ssl)
    assert r.status_code == 400


def test_a_refused_write_is_a_failed_event(sandbox, mon):
    kv = sandbox.client(KeyVaultManagementClient, "reader")
    body = {
        "location": "westeurope",
        "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
    }
    with pytest.raises(HttpResponseError):
        kv.vaults.begin_create_or_update(RG, "kv-refused-1", body).result()
    failed = [e for e in mon.activity_logs.list(filter=_window(sandbox)) if e.status.value == "Failed"]
    if not failed:
        pytest.skip("this sandbox build does not record refused writes yet")
    assert failed[0].level == "Error" and failed[0].sub_status.value == "Forbidden"


# -- alerts ----------------------------------------------------------------------------------------------------


def _normalised(payload):
    """The comparable shape: keys and JSON types, with the values that are the same in every alert."""

    def shape(node):
        if isinstance(node, dict):
            return {k: shape(v) for k, v in node.items()}
        if isinstance(node, list):
            return [shape(v) for v in node[:1]]
        return type(node).__name__

    return shape(payload)


def test_alert_fires_the_common_alert_schema_at_a_webhook(sandbox, mon):
    _action_group(mon, sandbox)
    _rule(mon, sandbox)
    vault = _vault(sandbox)
    items = wait_until(lambda: _received(sandbox, "webhook/alerts"), "the alert reaches its webhook")
    assert len(items) == 1
    payload = json.loads(items[0]["body"])
    example = json.loads((EXAMPLES / "common-alert-schema-activity-log.json").read_text())
    ex_shape, shape = _normalised(example), _normalised(payload)
    assert shape["schemaId"] == ex_shape["schemaId"]
    assert shape["data"]["essentials"] == ex_shape["data"]["essentials"]
    assert {k: shape["data"]["alertContext"][k] for k in ex_shape["data"]["alertContext"]} == ex_shape["data"][
        "alertContext"
    ]
    administrative = json.loads(
        (EXAMPLES / "common-alert-schema-activity-log-administrative-alertContext.json").read_text()
    )
    assert set(payload["data"]["alertContext"]) >= set(administrative["alertContext"])
    ess, ctx = payload["data"]["essentials"], payload["data"]["alertContext"]
    for key in (
        "severity",
        "signalType",
        "monitorCondition",
        "monitoringService",
        "essentialsVersion",
        "alertContextVersion",
    ):
        assert ess[key] == example["data"]["essentials"][key]
    assert payload["schemaId"] == "azureMonitorCommonAlertSchema"
    assert ess["alertRule"] == "kv-changes" and ess["description"] == "Key Vault changed"
    assert ess["alertTargetIDs"] == [vault.id.lower()] and ess["configurationItems"] == [vault.name]
    assert ess["originAlertId"].startswith(ctx["eventDataId"] + "_")
    assert ctx["operationName"] == "Microsoft.KeyVault/vaults/write" and ctx["status"] == "Succeeded"
    assert ctx["channels"] == "Operation" and ctx["eventSource"] == "Administrative" and ctx["level"] == "Informational"
    assert (
        json.loads(ctx["claims"])["http://schemas.microsoft.com/identity/claims/objectidentifier"]
        == sandbox.principal("admin").object_id
    )
    assert ctx["authorization"] == {"action": "Microsoft.KeyVault/vaults/write", "scope": vault.id}
    assert payload["data"]["customProperties"] == {"team": "crypto"}
    assert items[0]["headers"]["content-type"] == "application/json"

    def delivered() -> list[dict] | None:  # the receiver has the body before the sandbox records the answer
        fired = sandbox.admin("GET", "/_sandbox/alerts")["value"]
        hooks = [d for f in fired for d in f["deliveries"] if d["kind"] == "webhookReceivers"]
        return fired if hooks and hooks[0]["status"] != "Pending" else None

    fired = wait_until(delivered, "the sandbox records the webhook's answer")
    assert len(fired) == 1 and fired[0]["alertRule"] == "kv-changes"
    hooks = [d for d in fired[0]["deliveries"] if d["kind"] == "webhookReceivers"]
    assert hooks[0]["status"] == "Succeeded" and hooks[0]["attempts"][0]["statusCode"] == 200
    assert [d["status"] for d in fired[0]["deliveries"] if d["kind"] == "emailReceivers"] == ["NotSent"]


def test_alert_legacy_schema_and_rules_that_do_not_fire(sandbox, mon):
    _action_group(mon, sandbox, common=False, receiver="legacy")
    _rule(mon, sandbox, "on-write")
    _rule(mon, sandbox, "on-delete", operation="Microsoft.KeyVault/vaults/delete")
    _rule(mon, sandbox, "disabled", enabled=False)
    _vault(sandbox)
    wait_until(lambda: _received(sandbox, "webhook/legacy"), "the alert reaches its webhook")
    _delivered(sandbox)
    items = _received(sandbox, "webhook/legacy")
    assert len(items) == 1
    payload = json.loads(items[0]["body"])
    assert payload["schemaId"] == "Microsoft.Insights/activityLogs" and payload["data"]["status"] == "Activated"
    log = payload["data"]["context"]["activityLog"]
    assert (
        log["operationName"] == "Microsoft.KeyVault/vaults/write" and log["resourceType"] == "Microsoft.KeyVault/vaults"
    )
    assert payload["data"]["properties"] == {"team": "crypto"}
    assert [a["alertRule"] for a in sandbox.admin("GET", "/_sandbox/alerts")["value"]] == ["on-write"]


def _webhook_delivery(sandbox):
    deliveries = sandbox.admin("GET", "/_sandbox/alerts")["value"][0]["deliveries"]
    return next(d for d in deliveries if d["kind"] == "webhookReceivers")


def test_alert_delivery_retries_what_azure_retries(sandbox, mon):
    _action_group(mon, sandbox, receiver="flaky")
    _rule(mon, sandbox)
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/flaky", {"statuses": [503, 429, 200]})
    _vault(sandbox, "kv-retried-1")
    wait_until(
        lambda: [
            d
            for a in sandbox.admin("GET", "/_sandbox/alerts")["value"]
            for d in a["deliveries"]
            if d["status"] == "Succeeded"
        ],
        "the delivery succeeds after its retries",
    )
    hook = _webhook_delivery(sandbox)
    assert [a["statusCode"] for a in hook["attempts"]] == [503, 429, 200]
    # a 500 is not retried
    sandbox.admin("DELETE", "/_sandbox/alerts")
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/flaky", {"statuses": [500, 200]})
    _vault(sandbox, "kv-retried-2")
    wait_until(
        lambda: [
            d
            for a in sandbox.admin("GET", "/_sandbox/alerts")["value"]
            for d in a["deliveries"]
            if d["status"] == "Failed"
        ],
        "the delivery fails",
    )
    hook = _webhook_delivery(sandbox)
    assert [a["statusCode"] for a in hook["attempts"]] == [500]


# -- matching, directly ----------------------------------------------------------------------------------------

EVENT = {
    "category": {"value": "Administrative"},
    "operationName": {"value": "Microsoft.KeyVault/vaults/delete"},
    "resourceType": {"value": "Microsoft.KeyVault/vaults"},
    "resourceGroupName": "RG-A",
    "resourceId": "/subscriptions/s1/resourceGroups/RG-A/providers/Microsoft.KeyVault/vaults/kv1",
    "status": {"value": "Succeeded"},
    "level": "Informational",
    "caller": "bot@contoso.com",
    "properties": {"statusCode": "OK"},
}


def _rule_body(*leaves, scopes=("/subscriptions/s1",), enabled=True):
    return {"properties": {"scopes": list(scopes), "enabled": enabled, "condition": {"allOf": list(leaves)}}}


@pytest.mark.parametrize(
    ("leaves", "scopes", "fires"),
    [
        ([{"field": "Category", "equals": "administrative"}], ("/subscriptions/s1",), True),
        (
            [{"field": "operationName", "containsAny": ["x", "microsoft.keyvault/vaults/delete"]}],
            ("/subscriptions/s1",),
            True,
        ),
        (
            [{"field": "resourceGroup", "equals": "rg-a"}, {"field": "status", "equals": "Failed"}],
            ("/subscriptions/s1",),
            False,
        ),
        (
            [{"anyOf": [{"field": "level", "equals": "Error"}, {"field": "caller", "equals": "BOT@contoso.com"}]}],
            ("/subscriptions/s1",),
            True,
        ),
        ([{"field": "properties.statusCode", "equals": "ok"}], ("subscriptions/s1/resourceGroups/rg-a",), True),
        ([{"field": "category", "equals": "Administrative"}], ("/subscriptions/s1/resourceGroups/rg-b",), False),
        ([{"field": "category", "equals": "Administrative"}], ("/subscriptions/s1/resourceGroups/rg",), False),
    ],
)
def test_rule_matching(leaves, scopes, fires):
    assert alerts.matches(_rule_body(*leaves, scopes=scopes), EVENT) is fires


def test_a_disabled_rule_never_matches():
    assert alerts.matches(_rule_body({"field": "category", "equals": "Administrative"}, enabled=False), EVENT) is False
