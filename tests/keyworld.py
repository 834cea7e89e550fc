"""A small world for the key access tests: an Azure RBAC vault with a key, a disk encryption set on it (no role yet),
and a platform-key disk the operator wants encrypted with that set; the subscription may sit under management
groups. Made as the admin through the real SDK clients."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations.changes import PlanSettings
from remediations.settings import Settings

RG, LOC = "rg-keyworld", "westeurope"
CMK = "EncryptionAtRestWithCustomerKey"
ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"  # Key Vault Crypto Service Encryption User


@dataclass
class KeyWorld:
    sandbox: Any
    vault_id: str
    key_scope: str
    des_id: str
    des_principal: str
    disk_id: str

    def settings(self, *, window: float = 600.0, **modes: str) -> Settings:
        plan = PlanSettings(disk_encryption_sets={LOC: {CMK: self.des_id}}, role_propagation_seconds=window)
        return Settings(plan=plan, modes=modes)

    def assign_key_role(self, scope: str) -> None:
        """The set's identity gets its key role at `scope` (written into the sandbox as a scenario does: in effect
        at once)."""
        from sandbox import scenarios

        sb = self.sandbox.running.sandbox
        scenarios.assign(sb, scope, sb.directory.by_object_id(self.des_principal), ENCRYPTION_USER)

    def custom_key_role(self, *blocks: tuple[list[str], list[str]], scope: str | None = None) -> str:
        """A custom role with these permission blocks (dataActions, notDataActions), made by the admin through
        AuthorizationManagementClient, assigned to the set's identity at `scope` (the key) as a scenario does (in
        effect at once); its GUID."""
        from azure.mgmt.authorization import AuthorizationManagementClient

        from sandbox import scenarios

        sub = f"/subscriptions/{self.sandbox.subscription_id}"
        guid = str(uuid.uuid4())
        perms = [{"actions": [], "notActions": [], "dataActions": d, "notDataActions": n} for d, n in blocks]
        props = {"roleName": f"Key user {guid[:8]}", "type": "CustomRole", "permissions": perms}
        role = {"properties": {**props, "assignableScopes": [sub]}}
        self.sandbox.client(AuthorizationManagementClient).role_definitions.create_or_update(sub, guid, role)
        sb = self.sandbox.running.sandbox
        scenarios.assign(sb, scope or self.key_scope, sb.directory.by_object_id(self.des_principal), guid)
        return guid

    def delete_key(self) -> None:
        """The set's key deleted out of band. The sandbox's data plane has no DELETE for keys: the key leaves its
        key store, after which its management-plane and data-plane GETs answer 404, as a deleted key's do."""
        from sandbox.providers import keyvault_store

        state = self.sandbox.running.sandbox.state
        del keyvault_store.keys(state)[keyvault_store.key_ref(self.vault_id, "k")]


def make(sandbox: Any) -> KeyWorld:
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOC})
    kvm, compute = sandbox.client(KeyVaultManagementClient), sandbox.client(ComputeManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}, "enableRbacAuthorization": True}
    props["enablePurgeProtection"] = True
    vault = kvm.vaults.begin_create_or_update(RG, "kv-keyworld", {"location": LOC, "properties": props}).result()
    key = kvm.keys.create_if_not_exist(RG, "kv-keyworld", "k", {"properties": {"kty": "RSA", "keySize": 3072}})
    active = {"sourceVault": {"id": vault.id}, "keyUrl": key.properties.key_uri_with_version}
    body = {"location": LOC, "identity": {"type": "SystemAssigned"}, "properties": {"activeKey": active}}
    des = compute.disk_encryption_sets.begin_create_or_update(RG, "des-keyworld", body).result()
    disk = {"location": LOC, "sku": {"name": "Premium_LRS"}}
    disk["properties"] = {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32}
    made = compute.disks.begin_create_or_update(RG, "disk-keyworld", disk).result()
    return KeyWorld(sandbox, vault.id, f"{vault.id}/keys/k", des.id, des.identity.principal_id, made.id)
