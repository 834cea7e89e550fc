"""Nothing outside CRYPTWARD_SCOPES is written, on the rotation path either (issue: "Scope escape: with
CRYPTWARD_SCOPES set to one resource group, the rotation path widened to the whole subscription and PATCHed a DES in
another group").

The sandbox's estate: key des-key in rg-keys-weu, used by des-weu there; another team adds des-other in rg-other
with the same key at a fixed version. The bot works only rg-keys-weu. A Key Vault event for the key reaches the
worker after the key is due: nothing in rg-other is written, and since des-other could not follow a new version,
the key is not rotated either (it would leave des-other's disks on a version nobody keeps current).
"""

from __future__ import annotations

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
