"""Where a disk encryption set's key vault and a disk's set may be: a vault of another subscription serves a set
(key URL only), a vault of another region does not; a disk uses a set of its own subscription and region."""

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.rbac import ROLES
from sandbox.scenarios import add_subscription, assign
from tests.sandbox.test_compute import CMK, LOC, RG, Env, _refused

KEYS_SUB = "00000000-0000-4000-8000-0000000c0de2"


class Shared:
    """A second subscription, where the administrator is Owner, with a group and vaults of its own."""

    def __init__(self, sandbox):
        sb = sandbox.running.sandbox
        add_subscription(sb, KEYS_SUB, "Contoso Shared Keys")
        assign(sb, f"/subscriptions/{KEYS_SUB}", sb.directory.named("admin"), ROLES["Owner"])
        kwargs = {"base_url": sandbox.base_url, "connection_verify": sandbox.ca}
        cred = sandbox.credential("admin")
        self.sb = sandbox
        self.kvm = KeyVaultManagementClient(cred, KEYS_SUB, **kwargs)
        self.compute = ComputeManagementClient(cred, KEYS_SUB, **kwargs)
        ResourceManagementClient(cred, KEYS_SUB, **kwargs).resource_groups.create_or_update(RG, {"location": LOC})

    def vault(self, name, location=LOC):
        admin = self.sb.principal("admin").object_id
        props = {
            "tenantId": self.sb.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": False,
            "accessPolicies": [{"tenantId": self.sb.tenant_id, "objectId": admin, "permissions": {"keys": ["all"]}}],
        }
        vault = self.kvm.vaults.begin_create_or_update(RG, name, {"location": location, "properties": props}).result()
        key = self.kvm.keys.create_if_not_exist(RG, name, "des-key", {"properties": {"kty": "RSA", "keySize": 2048}})
        return vault, key


@pytest.fixture
def env(sandbox):
    return Env(sandbox)


@pytest.fixture
def shared(sandbox):
    return Shared(sandbox)


def _des_body(key_url, source=None, location=LOC):
    active = {"keyUrl": key_url} | ({"sourceVault": {"id": source}} if source else {})
    return {"location": location, "identity": {"type": "SystemAssigned"}, "properties": {"activeKey": active}}


def test_a_vault_of_another_subscription_serves_a_set_given_only_the_key_url(env, shared):
    # DiskRP example DiskEncryptionSet_Create_WithKeyVaultFromADifferentSubscription: keyUrl only, answered so.
    _, key = shared.vault("kv-central")
    url = key.properties.key_uri_with_version
    des = env.compute.disk_encryption_sets.begin_create_or_update(RG, "des-central", _des_body(url)).result()
    assert (des.active_key.key_url, des.active_key.source_vault) == (url, None)
    got = env.sb.running.sandbox.state.get(des.id)  # the stored answer: the key URL alone, as in the example
    assert got["properties"]["activeKey"] == {"keyUrl": url}


def test_a_source_vault_of_another_subscription_is_refused(env, shared):
    vault, key = shared.vault("kv-central")
    body = _des_body(key.properties.key_uri_with_version, source=vault.id)
    message = _refused(
        lambda: env.compute.disk_encryption_sets.begin_create_or_update(RG, "d", body), 400, "InvalidParameter"
    )
    assert "another subscription" in message


def test_a_vault_of_another_region_is_refused_in_either_subscription(env, shared):
    _, far_key = shared.vault("kv-north", location="northeurope")
    body = _des_body(far_key.properties.key_uri_with_version)
    message = _refused(
        lambda: env.compute.disk_encryption_sets.begin_create_or_update(RG, "d", body), 400, "InvalidParameter"
    )
    assert "same region" in message
    local_far = env.kvm.vaults.begin_create_or_update(
        RG,
        "kv-neu-local",
        {"location": "northeurope", "properties": {**_props(env), "enableRbacAuthorization": False}},
    ).result()
    key = env.kvm.keys.create_if_not_exist(RG, local_far.name, "k", {"properties": {"kty": "RSA", "keySize": 2048}})
    body = _des_body(key.properties.key_uri_with_version, source=local_far.id)
    _refused(lambda: env.compute.disk_encryption_sets.begin_create_or_update(RG, "d", body), 400, "InvalidParameter")
    # the same vault serves a set of its own region
    ok = env.compute.disk_encryption_sets.begin_create_or_update(
        RG, "des-neu", _des_body(key.properties.key_uri_with_version, location="northeurope")
    ).result()
    assert ok.active_key.source_vault.id.lower() == local_far.id.lower()  # same subscription: filled in


def _props(env):
    admin = env.sb.principal("admin").object_id
    return {
        "tenantId": env.sb.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [{"tenantId": env.sb.tenant_id, "objectId": admin, "permissions": {"keys": ["all"]}}],
    }


def test_a_disk_uses_a_set_of_its_own_subscription_only(env, shared, sandbox):
    vault, key = shared.vault("kv-central")
    des = shared.compute.disk_encryption_sets.begin_create_or_update(
        RG, "des-shared", _des_body(key.properties.key_uri_with_version)
    ).result()
    shared.kvm.vaults.update_access_policy(
        RG,
        vault.name,
        "add",
        {
            "properties": {
                "accessPolicies": [
                    {
                        "tenantId": sandbox.tenant_id,
                        "objectId": des.identity.principal_id,
                        "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
                    }
                ]
            }
        },
    )
    encryption = {"type": CMK, "diskEncryptionSetId": des.id}
    message = _refused(lambda: env.disk("disk-cross", encryption=encryption), 400, "InvalidParameter")
    assert "same subscription" in message
    disk = env.disk("disk-pmk")
    _refused(
        lambda: env.compute.disks.begin_update(RG, disk.name, {"properties": {"encryption": encryption}}).result(),
        400,
        "InvalidParameter",
    )
