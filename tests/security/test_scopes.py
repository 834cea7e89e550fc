"""Nothing outside CRYPTWARD_SCOPES is read or written on any path: event, alert, sweep, work item, approval,
rotation and follow-through (issue: "Scope escape: with
CRYPTWARD_SCOPES set to one resource group, the rotation path widened to the whole subscription and PATCHed a DES in
another group").

The sandbox's estate: key des-key in rg-keys-weu, used by des-weu there; another team adds des-other in rg-other
with the same key at a fixed version. The bot works only rg-keys-weu. A Key Vault event for the key reaches the
worker after the key is due: nothing in rg-other is written, and since des-other could not follow a new version,
the key is not rotated either (it would leave des-other's disks on a version nobody keeps current).
"""

from __future__ import annotations

import json

import pytest
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations.triggers import worker
from remediations.work import WorkItem
from tests.botapp import bot_env
from tests.rotation.test_run import DAY, DES_API, ENCRYPTION_USER, assign, estate, names, versions  # noqa: F401


def test_a_key_event_never_writes_outside_the_scope(sandbox, estate, azurite, bot_runtime):  # noqa: F811
    admin, n = estate(), names(sandbox)
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-other", {"location": "westeurope"})
    des = admin.get(n["des"], DES_API)
    other = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-other/providers/Microsoft.Compute/"
    other += "diskEncryptionSets/des-other"
    body = {
        "location": des["location"],
        "identity": {"type": "SystemAssigned"},
        "properties": {"activeKey": {"keyUrl": des["properties"]["activeKey"]["keyUrl"]}},
    }
    admin.write("PUT", other, DES_API, body)
    assign(admin, n["vault"], admin.get(other, DES_API)["identity"]["principalId"], ENCRYPTION_USER)
    before = versions(admin, n["key"])
    bot_runtime(bot_env(sandbox, azurite, debounce=0, CRYPTWARD_SCOPES=n["group"]))
    start = len(sandbox.calls())
    event = "Microsoft.KeyVault.KeyNearExpiry"
    item = WorkItem("eventgrid", n["key"], "microsoft.keyvault/vaults/keys", event_type=event)
    with pytest.raises(worker.WorkFailed, match="des-other uses a fixed version and is outside the scope"):
        worker.handle(item.to_json())  # a rotation that cannot finish is retried, and recorded as such
    bot = sandbox.principal("bot").object_id
    writes = [c for c in sandbox.calls(start) if c["principal"] == bot and c["method"] not in ("GET",)]
    assert not [c for c in writes if "/resourcegroups/rg-other/" in c["path"].lower()], writes
    assert versions(admin, n["key"]) == before  # des-other could not follow: the key is not rotated


@pytest.fixture
def two_groups(sandbox, azurite, grant_custom_role, bot_runtime):
    """A vault in rg-in (the bot's only scope) and one in rg-out, and the bot's runtime over them."""
    from azure.mgmt.keyvault import KeyVaultManagementClient

    sandbox.reset("empty")
    grant_custom_role("bot")
    rm = sandbox.client(ResourceManagementClient)
    kv = sandbox.client(KeyVaultManagementClient)
    ids = {}
    for rg in ("rg-in", "rg-out"):
        rm.resource_groups.create_or_update(rg, {"location": "westeurope"})
        props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
        body = {"location": "westeurope", "properties": props}
        ids[rg] = kv.vaults.begin_create_or_update(rg, f"kv-{rg}", body).result().id
    scope = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-in"
    rt = bot_runtime(bot_env(sandbox, azurite, debounce=0, CRYPTWARD_SCOPES=scope))
    return sandbox, rt, ids


def _touched_out(sandbox, since):
    bot = sandbox.principal("bot").object_id
    return [c for c in sandbox.calls(since) if c["principal"] == bot and "/resourcegroups/rg-out" in c["path"].lower()]


def test_an_event_or_an_alert_for_a_resource_outside_is_dropped_unread(two_groups):
    from remediations.triggers import intake

    sandbox, rt, ids = two_groups
    start = len(sandbox.calls())
    event = {
        "id": "e-out",
        "topic": f"/subscriptions/{sandbox.subscription_id}",
        "subject": ids["rg-out"],
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-12-03T10:00:00Z",
        "dataVersion": "2",
        "data": {"operationName": "Microsoft.KeyVault/vaults/write", "claims": {"appid": "someone"}},
    }
    assert intake.on_event(event, rt) == intake.OUT_OF_SCOPE
    alert = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitoringService": "Activity Log - Administrative", "alertTargetIDs": [ids["rg-out"]]},
            "alertContext": {"operationName": "Microsoft.KeyVault/vaults/write"},
        },
    }
    status, reply = intake.on_alert(json.dumps(alert), rt)
    assert status == 202 and reply["outcomes"] == {intake.OUT_OF_SCOPE: 1}
    assert _touched_out(sandbox, start) == []


def test_the_sweep_lists_only_the_scope(two_groups):
    from remediations.triggers import intake

    sandbox, rt, _ = two_groups
    start = len(sandbox.calls())
    assert intake.sweep(rt=rt) == 1  # the vault in rg-in, and nothing of rg-out
    bot = sandbox.principal("bot").object_id
    calls = sandbox.calls(start)
    listed = [c["path"].lower() for c in calls if c["principal"] == bot and c["path"].startswith("/subscriptions/")]
    assert listed and all("/resourcegroups/rg-in/" in p for p in listed), listed


def test_a_work_item_or_an_approval_for_a_resource_outside_reads_and_writes_nothing(two_groups):
    sandbox, rt, ids = two_groups
    start = len(sandbox.calls())
    item = WorkItem("alert", ids["rg-out"], "microsoft.keyvault/vaults", event_id="w-out")
    assert worker.handle(item.to_json()).status == "skipped"
    assert worker.fix(rt, item, ids["rg-out"], "approval-1", approved=("c1",), only=("c1",)).status == "skipped"
    assert _touched_out(sandbox, start) == []
