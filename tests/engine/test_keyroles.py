"""remediations/engine/keyroles.py: a disk encryption set whose identity holds a custom role over its key is decided by
that role's definition (dataActions minus notDataActions), through the real SDK clients as the bot with its role; the
sandbox's DiskRP, which asks Key Vault as Azure does, says whether the set really can use the key."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient

from remediations.engine.reader import Scope
from remediations.engine.run import scan, select
from tests import keyworld
from tests.engine.test_run import POLICIES, writes_by

KEYS = "Microsoft.KeyVault/vaults/keys"
READ, WRAP, UNWRAP = f"{KEYS}/read", f"{KEYS}/wrap/action", f"{KEYS}/unwrap/action"

GRANTING = {
    "the three actions": [([READ, WRAP, UNWRAP], [])],
    "keys/* (any case)": [([f"{KEYS.upper()}/*"], [])],
    "a wildcard in the middle": [(["Microsoft.KeyVault/vaults/*/read", f"{KEYS}/*/action"], [])],
    "two blocks, each a part": [([READ], []), ([WRAP, UNWRAP], [])],
    "one block's exclusion, another's grant": [([f"{KEYS}/*"], [UNWRAP]), ([UNWRAP], [])],
}
NOT_GRANTING = {
    "keys/* without unwrap": [([f"{KEYS}/*"], [UNWRAP])],
    "everything without wrap (a wildcard)": [(["*"], [f"{KEYS}/wrap*"])],
    "read and wrap only": [([READ, WRAP], [])],
    "secrets, not keys": [(["Microsoft.KeyVault/vaults/secrets/*"], [])],
}


@pytest.fixture
def world(sandbox):
    return keyworld.make(sandbox)


@pytest.fixture
def bot(grant_custom_role, as_bot):
    """The bot with exactly its role (infra/cryptward-role.json)."""
    grant_custom_role("bot")
    return as_bot


def disk_with(world, name):
    """A disk created with the world's set: DiskRP accepts it only when the set can use its key."""
    compute = world.sandbox.client(ComputeManagementClient)
    body = {"location": keyworld.LOC, "sku": {"name": "Premium_LRS"}}
    body["properties"] = {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32,
                          "encryption": {"diskEncryptionSetId": world.des_id}}  # fmt: skip
    return compute.disks.begin_create_or_update(keyworld.RG, name, body).result()


def sweep(world, azure, **modes):
    policies = select(POLICIES, ["des-key-access"])
    report = scan(Scope((world.sandbox.subscription_id,)), policies, apply=True, settings=world.settings(**modes),
                  azure=azure)  # fmt: skip
    findings = [f for f in report.findings if f.resource["id"] == world.des_id]
    return findings, [r for r in report.results if r.change.policy_id == "des-key-access"]


@pytest.mark.parametrize("blocks", GRANTING.values(), ids=GRANTING)
def test_a_custom_role_granting_the_key_actions_lets_the_set_use_its_key_and_the_bot_leaves_it(world, bot, blocks):
    world.custom_key_role(*blocks)
    assert disk_with(world, "disk-custom").encryption.type == keyworld.CMK  # the sandbox: DiskRP accepts the set
    since = len(world.sandbox.calls())
    assert sweep(world, bot()) == ([], [])  # compliant: no finding, no grant
    assert writes_by(world.sandbox, "bot", since) == []


@pytest.mark.parametrize("blocks", NOT_GRANTING.values(), ids=NOT_GRANTING)
def test_a_custom_role_short_of_the_key_actions_is_reported_and_the_built_in_role_granted(world, bot, blocks):
    world.custom_key_role(*blocks)
    with pytest.raises(HttpResponseError) as refused:  # the sandbox: DiskRP refuses the set, as Azure does
        disk_with(world, "disk-custom")
    assert refused.value.error.code == "KeyVaultAccessForbidden"
    findings, results = sweep(world, bot())
    assert [f.unreadable for f in findings] == [None]
    assert [(r.status, r.change.operation.body["properties"]["roleDefinitionId"].rsplit("/", 1)[-1])
            for r in results] == [("applied", keyworld.ENCRYPTION_USER)]  # fmt: skip


def test_two_custom_roles_grant_the_key_actions_together(world, bot):
    world.custom_key_role(([READ, WRAP], []))
    world.custom_key_role(([UNWRAP], []), scope=world.vault_id)
    assert sweep(world, bot()) == ([], [])


def test_without_reading_the_role_definition_the_set_is_unreadable_and_nothing_is_granted(
    world, grant_custom_role, as_bot
):
    world.custom_key_role(([f"{KEYS}/*"], []))
    grant_custom_role("bot", without=["Microsoft.Authorization/roleDefinitions/read"])
    since = len(world.sandbox.calls())
    findings, results = sweep(world, as_bot())
    assert [f.unreadable for f in findings] and "AuthorizationFailed" in findings[0].unreadable
    assert results == [] and writes_by(world.sandbox, "bot", since) == []


def test_a_set_whose_key_was_deleted_is_reported_and_nothing_is_granted_on_a_key_that_does_not_exist(world, bot):
    world.delete_key()
    since = len(world.sandbox.calls())
    report = scan(Scope((world.sandbox.subscription_id,)), select(POLICIES, ["des-key-access"]), apply=True,
                  settings=world.settings(), azure=bot())  # fmt: skip
    assert [f.policy.id for f in report.findings if f.resource["id"] == world.des_id] == ["des-key-access"]
    assert [r for r in report.results if r.change.policy_id == "des-key-access"] == []
    assert writes_by(world.sandbox, "bot", since) == []
    (skip,) = [s for s in report.plan.skipped if s.resource_id == world.des_id]
    assert skip.reason == "cannot-read" and "key k of key vault kv-keyworld does not exist" in skip.detail
