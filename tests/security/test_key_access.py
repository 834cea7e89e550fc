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

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
POLICIES = [p for p in load_policies(ROOT / "policies") if p.id == "des-key-access"]


@pytest.fixture
def estate(sandbox, grant_custom_role, monkeypatch):
    """rg-victim: a vault with key k-victim; rg-intruder: the intruder's own group, where it is Contributor."""
    sandbox.reset("empty")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    sub = sandbox.subscription_id
    rm = sandbox.client(ResourceManagementClient)
    for rg in ("rg-victim", "rg-intruder"):
        rm.resource_groups.create_or_update(rg, {"location": "westeurope"})
    intruder = sandbox.principal("intruder")
    sandbox.client(AuthorizationManagementClient).role_assignments.create(
        f"/subscriptions/{sub}/resourceGroups/rg-intruder",
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
            principal_id=intruder.object_id,
            principal_type=intruder.kind,
        ),
    )
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
