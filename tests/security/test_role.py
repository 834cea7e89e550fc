"""The bot's own role cannot make anyone Owner (issue: "The bot's role is Owner-equivalent: acting as the bot, a test
made another principal Owner of the subscription: roleAssignments/write is unconditioned").

The role is granted as infra/ deploys it, with the ABAC delegation condition of infra/cryptward-role.json
(tests/test_infra.py checks that the Bicep assigns exactly that text); the sandbox evaluates the condition.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient

from remediations.resources import CRYPTO_SERVICE_ENCRYPTION_USER
from sandbox.rbac import ROLES
from tests.test_infra import ROLE, _assign, _outcome, _refused


def test_the_deployed_condition_refuses_the_bot_any_other_role_assignment_and_keeps_its_own(
    sandbox,
    grant_custom_role,
    as_bot,
):
    """Issue 14: acting as the bot, a test made another principal Owner of the subscription. With the role assigned
    as the Bicep assigns it (condition included), the bot is refused that and every other role assignment but the
    Crypto Service Encryption User grant des-key-access makes for a disk encryption set's identity."""
    sandbox.reset("estate")
    role_id = grant_custom_role("bot")
    sub = f"/subscriptions/{sandbox.subscription_id}"
    admin = sandbox.client(AuthorizationManagementClient)
    bot = sandbox.principal("bot")
    listed = admin.role_assignments.list_for_scope(sub, filter=f"principalId eq '{bot.object_id}'")
    (mine,) = [a for a in listed if a.role_definition_id.lower() == role_id.lower()]  # (and its workspace role)
    assert (mine.condition, mine.condition_version) == (ROLE["assignmentCondition"], "2.0")

    as_bot_client = sandbox.client(AuthorizationManagementClient, "bot")
    intruder, reader = sandbox.principal("intruder"), sandbox.principal("reader")
    attempts = [
        (intruder, "Owner"),
        (bot, "Owner"),
        (intruder, "User Access Administrator"),
        (intruder, "Role Based Access Control Administrator"),
        (intruder, "Key Vault Administrator"),
        (intruder, role_id),  # its own custom role
        (reader, CRYPTO_SERVICE_ENCRYPTION_USER),  # the right role, to a user
    ]
    for principal, role in attempts:
        with pytest.raises(HttpResponseError) as refused:
            _assign(as_bot_client, sub, principal, role)
        assert (refused.value.status_code, refused.value.error.code) == (403, "AuthorizationFailed"), role
        assert "ABAC condition not fulfilled" in refused.value.error.message
    with pytest.raises(HttpResponseError) as refused:  # nor can it lift its own condition
        as_bot_client.role_assignments.create_by_id(
            mine.id,
            {
                "properties": {
                    "roleDefinitionId": role_id,
                    "principalId": bot.object_id,
                    "principalType": "ServicePrincipal",
                }
            },
        )
    assert refused.value.status_code == 403
    owners = [a for a in admin.role_assignments.list_for_scope(sub) if a.role_definition_id.endswith(ROLES["Owner"])]
    assert [a.principal_id for a in owners] == [sandbox.principal("admin").object_id]

    # the bot's own grant: des-key-access gives des-weu's identity Crypto Service Encryption User on its vault
    since = len(sandbox.calls())
    assert _outcome(sandbox, as_bot(), "sweep") == []
    assert _refused(sandbox, since) == set()
    des = sandbox.client(ComputeManagementClient).disk_encryption_sets.get("rg-keys-weu", "des-weu")
    vault = f"{sub}/resourceGroups/rg-keys-weu/providers/Microsoft.KeyVault/vaults/kv-weu-disks"
    granted = list(admin.role_assignments.list_for_scope(vault, filter=f"principalId eq '{des.identity.principal_id}'"))
    assert [a.role_definition_id.rsplit("/", 1)[-1] for a in granted] == [CRYPTO_SERVICE_ENCRYPTION_USER]
    assert [a.created_by for a in granted] == [bot.object_id]
