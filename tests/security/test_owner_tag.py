"""A forged event caller cannot become a vault's owner (issue: "A forged event caller becomes the owner tag (with the
function key), and the owner tag decides where approval links go").

The owner tag comes from Azure's own record of the vault (systemData.createdBy as ARM answers the bot's read),
never from the claims of an event, which a holder of the function key writes as they like.
"""

from __future__ import annotations

from azure.mgmt.keyvault import KeyVaultManagementClient

from remediations.changes import Caller
from remediations.triggers import worker
from remediations.work import WorkItem
from tests.triggers.test_worker import RG, env, vault  # noqa: F401  (env: the worker's runtime over the sandbox and Azurite)


def test_the_owner_tag_names_who_created_the_vault_not_who_the_event_claims(sandbox, env):  # noqa: F811
    vault_id = vault(sandbox, "kv-owner-forged")
    forged = Caller(upn="mallory@contoso.example", name="Mallory", oid="00000000-0000-0000-0000-0000000bad00")
    item = WorkItem("eventgrid", vault_id, "microsoft.keyvault/vaults", caller=forged, event_id="forged-1")
    worker.handle(item.to_json())
    tags = sandbox.client(KeyVaultManagementClient).vaults.get(RG, "kv-owner-forged").tags
    assert tags.get("owner") == sandbox.principal("admin").upn
    assert tags.get("owner") != forged.upn
