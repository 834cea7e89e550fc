"""The bot is not a confused deputy for disk encryption sets (issue: "Confused deputy through des-key-access").

A principal with Contributor on its own resource group only cannot grant itself another team's key: its own role
assignment on the victim's vault is refused. It creates a disk encryption set there whose key URL points at the
victim's key, and asks the bot, acting with exactly infra/cryptward-role.json, to fix it. The bot grants nothing
across the resource-group boundary unless the operator paired the two (CRYPTWARD_KEY_ACCESS_ALLOW); where it does
grant, the role is on the key, never the whole vault.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations.azure import Azure
from remediations.changes import PlanSettings
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.loader import load_policies
from remediations.resources import CRYPTO_SERVICE_ENCRYPTION_USER
from remediations.settings import Settings
from tests.report.test_compliance import ROOT
from tests.security.intruder import contributor_on_own_group

POLICIES = [p for p in load_policies(ROOT / "policies") if p.id == "des-key-access"]


@pytest.fixture
def estate(sandbox, grant_custom_role, monkeypatch):
    """rg-victim: a vault with key k-victim; rg-intruder: the intruder's own group, where it is Contributor."""
    sandbox.reset("empty")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-victim", {"location": "westeurope"})
    contributor_on_own_group(sandbox)
    props = {
        "tenantId": sandbox.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": True,
        "enablePurgeProtection": True,
    }
    kv = sandbox.client(KeyVaultManagementClient)
    vault = kv.vaults.begin_create_or_update("rg-victim", "kv-victim", {"location": "westeurope", "properties": props})
    vault = vault.result()
    key = kv.keys.create_if_not_exist("rg-victim", "kv-victim", "k-victim", {"properties": {"kty": "RSA"}})
    azure = Azure.from_env()
    yield sandbox, vault, key, azure
    azure.close()


def _intruder_des(sandbox, key_url):
    compute = sandbox.client(ComputeManagementClient, "intruder")
    body = {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {"activeKey": {"keyUrl": key_url}, "encryptionType": "EncryptionAtRestWithCustomerKey"},
    }
    return compute.disk_encryption_sets.begin_create_or_update("rg-intruder", "des-intruder", body).result()


def _grants_to(sandbox, principal_id):
    auth = sandbox.client(AuthorizationManagementClient)
    return [
        ra
        for ra in auth.role_assignments.list_for_subscription()
        if ra.principal_id == principal_id and ra.role_definition_id.endswith(CRYPTO_SERVICE_ENCRYPTION_USER)
    ]


def test_the_intruder_cannot_grant_itself_the_key(estate):
    sandbox, vault, _, _ = estate
    intruder = sandbox.principal("intruder")
    with pytest.raises(HttpResponseError) as refused:
        sandbox.client(AuthorizationManagementClient, "intruder").role_assignments.create(
            vault.id,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_SERVICE_ENCRYPTION_USER}",
                principal_id=intruder.object_id,
                principal_type=intruder.kind,
            ),
        )
    assert refused.value.status_code == 403


def test_the_bot_grants_nothing_across_resource_groups_on_the_intruders_say_so(estate):
    sandbox, _, key, azure = estate
    des = _intruder_des(sandbox, key.properties.key_uri_with_version)
    report = scan(Scope((sandbox.subscription_id,)), POLICIES, apply=True, settings=Settings(), azure=azure)
    (result,) = report.results  # the policy runs in remediate mode: the crossing waits for an approver all the same
    assert result.status == "pending-approval"
    summary = result.change.summary
    assert "rg-intruder" in summary and "rg-victim" in summary and "k-victim" in summary and "approver" in summary
    assert _grants_to(sandbox, des.identity.principal_id) == []


def test_an_operator_pairing_grants_the_key_and_only_the_key(estate):
    sandbox, vault, key, azure = estate
    des = _intruder_des(sandbox, key.properties.key_uri_with_version)
    sub = f"/subscriptions/{sandbox.subscription_id}"
    allow = {f"{sub}/resourceGroups/rg-victim": (f"{sub}/resourceGroups/rg-intruder",)}
    settings = replace(Settings(), plan=PlanSettings(key_access_allow=allow))
    report = scan(Scope((sandbox.subscription_id,)), POLICIES, apply=True, settings=settings, azure=azure)
    assert [r.status for r in report.results] == ["applied"]
    (grant,) = _grants_to(sandbox, des.identity.principal_id)
    assert grant.scope.lower() == f"{vault.id}/keys/k-victim".lower()  # the key, never the whole vault
    again = scan(Scope((sandbox.subscription_id,)), POLICIES, apply=True, settings=settings, azure=azure)
    assert not again.findings  # the key-scope grant is seen as access: nothing planned twice


# --- the access-policy path is guarded the same way -----------------------------------------------------------------


def _access_policy_vault(sandbox, name="kv-victim-ap"):
    """A vault in rg-victim made before API version 2026-02-01 without enableRbacAuthorization: access policies."""
    admin = {"tenantId": sandbox.tenant_id, "objectId": sandbox.principal("admin").object_id,
             "permissions": {"keys": ["all"]}}  # fmt: skip
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}, "accessPolicies": [admin],
             "enablePurgeProtection": True}  # fmt: skip
    from sandbox import scenarios

    path = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-victim/providers/Microsoft.KeyVault/vaults/{name}"
    )
    scenarios.arm(sandbox.running.sandbox, "PUT", path, {"location": "westeurope", "properties": props},
                  api_version="2023-07-01")  # fmt: skip
    vault = sandbox.client(KeyVaultManagementClient).vaults.get("rg-victim", name)
    assert vault.properties.enable_rbac_authorization is None
    key = sandbox.client(KeyVaultManagementClient).keys.create_if_not_exist(
        "rg-victim", name, "k-victim", {"properties": {"kty": "RSA"}}
    )
    return vault, key


def _policy_holders(sandbox, name="kv-victim-ap"):
    vault = sandbox.client(KeyVaultManagementClient).vaults.get("rg-victim", name)
    return {p.object_id for p in vault.properties.access_policies}


def test_no_access_policy_across_resource_groups_on_the_intruders_say_so(estate):
    sandbox, _, _, azure = estate
    _, key = _access_policy_vault(sandbox)
    des = _intruder_des(sandbox, key.properties.key_uri_with_version)
    report = scan(Scope((sandbox.subscription_id,)), POLICIES, apply=True, settings=Settings(), azure=azure)
    (result,) = report.results
    assert result.status == "pending-approval" and result.change.operation.path.endswith("/accessPolicies/add")
    assert "rg-intruder" in result.change.summary and "approver" in result.change.summary
    assert des.identity.principal_id not in _policy_holders(sandbox)


def test_an_operator_pairing_adds_get_wrap_unwrap_for_the_sets_own_identity_only(estate):
    sandbox, _, _, azure = estate
    _, key = _access_policy_vault(sandbox)
    des = _intruder_des(sandbox, key.properties.key_uri_with_version)
    sub = f"/subscriptions/{sandbox.subscription_id}"
    allow = {f"{sub}/resourceGroups/rg-victim": (f"{sub}/resourceGroups/rg-intruder",)}
    settings = replace(Settings(), plan=PlanSettings(key_access_allow=allow))
    before = _policy_holders(sandbox)
    report = scan(Scope((sandbox.subscription_id,)), POLICIES, apply=True, settings=settings, azure=azure)
    assert [r.status for r in report.results] == ["applied"]
    assert _policy_holders(sandbox) == before | {des.identity.principal_id}  # nobody else, and no role at all
    vault = sandbox.client(KeyVaultManagementClient).vaults.get("rg-victim", "kv-victim-ap")
    (entry,) = [p for p in vault.properties.access_policies if p.object_id == des.identity.principal_id]
    assert sorted(entry.permissions["keys"]) == ["get", "unwrapKey", "wrapKey"] and not entry.permissions.get("secrets")
    assert _grants_to(sandbox, des.identity.principal_id) == []


def test_a_user_assigned_identity_from_another_group_waits_for_an_approver():
    """Whatever else uses that identity would use the key too: the set's owner cannot decide that alone."""
    from datetime import UTC, datetime

    from remediations.changes import APPROVAL, PlanContext
    from remediations.fixes import des_key_access

    sub = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590"
    vault_id = f"{sub}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kv-keys"
    key_url = "https://kv-keys.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"
    vault = {"id": vault_id, "properties": {"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47", "accessPolicies": []}}

    def des_using(identity_group):
        uai = f"{sub}/resourceGroups/{identity_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-x"
        return {
            "id": f"{sub}/resourceGroups/rg-keys/providers/Microsoft.Compute/diskEncryptionSets/des-keys",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {uai: {"principalId": "6c0e7d52-91a4"}}},
            "properties": {"activeKey": {"sourceVault": {"id": vault_id}, "keyUrl": key_url}},
            "cryptward": {"keyVault": vault},
        }

    (change,) = des_key_access.plan(des_using("rg-shared"), {}, PlanContext(now=datetime.now(UTC)))
    assert APPROVAL in change.requires and "id-x" in change.summary and "rg-shared" in change.summary
    (change,) = des_key_access.plan(des_using("rg-keys"), {}, PlanContext(now=datetime.now(UTC)))
    assert change.requires == ()
