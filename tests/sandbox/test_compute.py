"""Microsoft.Compute in the sandbox through the real ComputeManagementClient: disks, disk encryption sets, VMs,
and the encryption rules Azure enforces on them."""

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import DiskEncryptionSetUpdate, KeyForDiskEncryptionSet
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

RG = "rg-compute"
LOC = "westeurope"
PMK = "EncryptionAtRestWithPlatformKey"
CMK = "EncryptionAtRestWithCustomerKey"
DOUBLE = "EncryptionAtRestWithPlatformAndCustomerKeys"


class Env:
    """A resource group, and helpers to make vaults, keys, DES, disks and VMs in it as `admin`."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.compute = sandbox.client(ComputeManagementClient)
        self.kvm = sandbox.client(KeyVaultManagementClient)
        sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOC})
        self.rg_id = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{RG}"

    def vault(self, name="kv-compute", purge=False, location=LOC):
        admin = self.sb.principal("admin").object_id
        props = {
            "tenantId": self.sb.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": False,
            "accessPolicies": [{"tenantId": self.sb.tenant_id, "objectId": admin, "permissions": {"keys": ["all"]}}],
        }
        if purge:
            props["enablePurgeProtection"] = True
        vault = self.kvm.vaults.begin_create_or_update(RG, name, {"location": location, "properties": props}).result()
        key = self.kvm.keys.create_if_not_exist(RG, name, "des-key", {"properties": {"kty": "RSA", "keySize": 2048}})
        return vault, key

    def grant(self, vault_name, object_id):
        policy = {
            "tenantId": self.sb.tenant_id,
            "objectId": object_id,
            "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
        }
        self.kvm.vaults.update_access_policy(RG, vault_name, "add", {"properties": {"accessPolicies": [policy]}})

    def des(self, name, vault, key_url, grant=True, location=LOC, **props):
        body = {
            "location": location,
            "identity": {"type": "SystemAssigned"},
            "properties": {"activeKey": {"sourceVault": {"id": vault.id}, "keyUrl": key_url}, **props},
        }
        des = self.compute.disk_encryption_sets.begin_create_or_update(RG, name, body).result()
        if grant:
            self.grant(vault.name, des.identity.principal_id)
        return des

    def disk(self, name, size=32, sku="Premium_LRS", location=LOC, **props):
        body = {
            "location": location,
            "sku": {"name": sku},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size, **props},
        }
        return self.compute.disks.begin_create_or_update(RG, name, body).result()

    def vm(self, name, os_disk_id, size="Standard_D2s_v5", data_disks=(), **props):
        body = {
            "location": LOC,
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "osDisk": {"createOption": "Attach", "osType": "Linux", "managedDisk": {"id": os_disk_id}},
                    "dataDisks": list(data_disks),
                },
                **props,
            },
        }
        return self.compute.virtual_machines.begin_create_or_update(RG, name, body).result()

    def meta(self, resource_id, **facts):
        self.sb.admin("POST", "/_sandbox/meta", {"resourceId": resource_id, "facts": facts})


@pytest.fixture
def env(sandbox):
    return Env(sandbox)


def _refused(fn, status, code):
    with pytest.raises(HttpResponseError) as err:
        fn()
    assert (err.value.status_code, err.value.error.code) == (status, code), err.value.message
    return err.value.error.message


def _power(env, vm):
    view = env.compute.virtual_machines.instance_view(RG, vm)
    return next(s.code for s in view.statuses if s.code.startswith("PowerState/"))


def test_disk_create_get_list_update_delete_with_lro_answers(env):
    start = len(env.sb.calls())
    disk = env.disk("data1", size=100, tags={"team": "a"})
    assert (disk.disk_state, disk.encryption.type, disk.provisioning_state) == ("Unattached", PMK, "Succeeded")
    assert (disk.sku.name, disk.sku.tier, disk.tier, disk.disk_size_gb) == ("Premium_LRS", "Premium", "P10", 100)
    assert disk.unique_id and disk.time_created and disk.location == LOC and disk.managed_by is None
    put = [c for c in env.sb.calls(start) if c["method"] == "PUT" and c["path"].endswith("/disks/data1")]
    assert [c["status"] for c in put] == [202]
    assert any("/locations/westeurope/operations/" in c["path"] for c in env.sb.calls(start))
    env.disk("data2", size=10, sku="Standard_LRS")
    assert sorted(d.name for d in env.compute.disks.list_by_resource_group(RG)) == ["data1", "data2"]
    assert sorted(d.name for d in env.compute.disks.list()) == ["data1", "data2"]
    updated = env.compute.disks.begin_update(RG, "data1", {"properties": {"diskSizeGB": 200}, "tags": {"t": "1"}})
    disk = updated.result()
    assert (disk.disk_size_gb, disk.tier, disk.tags) == (200, "P15", {"t": "1"})
    _refused(lambda: env.compute.disks.begin_update(RG, "data1", {"properties": {"diskSizeGB": 50}}), 400, "BadRequest")
    env.compute.disks.begin_delete(RG, "data2").result()
    with pytest.raises(ResourceNotFoundError):
        env.compute.disks.get(RG, "data2")
    assert [c["status"] for c in env.sb.calls(start) if c["method"] == "DELETE"] == [202]


def test_lro_headers_on_the_wire(env, sandbox):
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    r = httpx.put(
        f"{sandbox.base_url}{env.rg_id}/providers/Microsoft.Compute/disks/raw?api-version=2025-01-02",
        json={"location": LOC, "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 8}},
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ssl,
    )
    assert r.status_code == 202
    # DiskRP's examples (Disk_Update_ChangeTier.json): Location is the disk itself; the status is the operation's
    disk_url = f"{sandbox.base_url}{env.rg_id}/providers/Microsoft.Compute/disks/raw?api-version=2025-01-02"
    assert "/operations/" in r.headers["Azure-AsyncOperation"] and r.headers["Location"] == disk_url
    r = httpx.get(r.headers["Azure-AsyncOperation"], headers={"Authorization": f"Bearer {token}"}, verify=sandbox.ssl)
    assert r.json()["status"] == "Succeeded"


def test_a_disk_says_updating_while_its_operation_runs(env, sandbox):
    env.disk("slow", size=8)
    sandbox.admin("PATCH", "/_sandbox/settings", {"lro_in_progress_polls": 2})
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{sandbox.base_url}{env.rg_id}/providers/Microsoft.Compute/disks/slow?api-version=2025-01-02"
    r = httpx.patch(url, json={"tags": {"t": "1"}}, headers=auth, verify=sandbox.ssl)
    assert r.status_code == 202 and r.headers["Location"] == url
    status = r.headers["Azure-AsyncOperation"]
    # the first read of the Location (the disk) answers 200 while the operation still runs: the state says so
    first = httpx.get(url, headers=auth, verify=sandbox.ssl)
    assert first.status_code == 200 and first.json()["properties"]["provisioningState"] == "Updating"
    assert httpx.get(status, headers=auth, verify=sandbox.ssl).json()["status"] == "InProgress"
    assert httpx.get(status, headers=auth, verify=sandbox.ssl).json()["status"] == "Succeeded"
    assert httpx.get(url, headers=auth, verify=sandbox.ssl).json()["properties"]["provisioningState"] == "Succeeded"


def test_des_identity_key_validation_and_delete(env, sandbox):
    vault, key = env.vault()
    des = env.des("des1", vault, key.properties.key_uri_with_version, grant=False)
    assert des.identity.type == "SystemAssigned" and des.identity.tenant_id == sandbox.tenant_id
    assert sandbox.running.sandbox.directory.by_object_id(des.identity.principal_id) is not None
    assert (des.encryption_type, des.previous_keys, des.provisioning_state) == (CMK, [], "Succeeded")
    assert des.active_key.source_vault.id.lower() == vault.id.lower()
    got = env.compute.disk_encryption_sets.get(RG, "des1")
    assert got.active_key.key_url == key.properties.key_uri_with_version
    assert [d.name for d in env.compute.disk_encryption_sets.list_by_resource_group(RG)] == ["des1"]
    assert [d.name for d in env.compute.disk_encryption_sets.list()] == ["des1"]
    missing = key.properties.key_uri_with_version.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    _refused(lambda: env.des("bad", vault, missing), 400, "InvalidParameter")
    _refused(lambda: env.des("bad", vault, key.properties.key_uri), 400, "InvalidParameter")  # versionless, no rotation
    other, _ = env.vault("kv-other")
    active = {"sourceVault": {"id": other.id}, "keyUrl": key.properties.key_uri_with_version}
    body = {"location": LOC, "identity": {"type": "SystemAssigned"}, "properties": {"activeKey": active}}
    _refused(lambda: env.compute.disk_encryption_sets.begin_create_or_update(RG, "bad", body), 400, "InvalidParameter")
    message = _refused(
        lambda: env.des("bad", vault, key.properties.key_uri, rotationToLatestKeyVersionEnabled=True),
        400,
        "InvalidParameter",
    )
    assert "purge protection" in message
    env.compute.disk_encryption_sets.begin_delete(RG, "des1").result()
    assert sandbox.running.sandbox.directory.by_object_id(des.identity.principal_id) is None


def test_cmk_disk_needs_des_key_access_and_des_in_use_cannot_go(env):
    vault, key = env.vault()
    des = env.des("des1", vault, key.properties.key_uri_with_version, grant=False)
    enc = {"type": CMK, "diskEncryptionSetId": des.id}
    message = _refused(lambda: env.disk("cmk", encryption=enc), 400, "KeyVaultAccessForbidden")
    assert "Please grant get, wrap and unwrap key permissions to disk encryption set 'des1'" in message
    env.grant(vault.name, des.identity.principal_id)
    disk = env.disk("cmk", encryption={"diskEncryptionSetId": des.id})  # type inferred from the DES
    assert (disk.encryption.type, disk.encryption.disk_encryption_set_id.lower()) == (CMK, des.id.lower())
    _refused(lambda: env.compute.disk_encryption_sets.begin_delete(RG, "des1"), 409, "OperationNotAllowed")
    # CMK -> platform key on an unattached disk is allowed (disks FAQ)
    disk = env.compute.disks.begin_update(RG, "cmk", {"properties": {"encryption": {"type": PMK}}}).result()
    assert disk.encryption.type == PMK and disk.encryption.disk_encryption_set_id is None
    env.compute.disk_encryption_sets.begin_delete(RG, "des1").result()


def test_disk_encryption_refusals(env):
    vault, key = env.vault()
    des = env.des("des1", vault, key.properties.key_uri_with_version)
    double = env.des("des2", vault, key.properties.key_uri_with_version, encryptionType=DOUBLE)
    north, north_key = env.vault("kv-compute-neu", location="northeurope")  # a set's vault is in its region
    far = env.des("des3", north, north_key.properties.key_uri_with_version, location="northeurope")
    _refused(lambda: env.disk("d", encryption={"type": CMK}), 400, "InvalidParameter")
    _refused(lambda: env.disk("d", encryption={"type": PMK, "diskEncryptionSetId": des.id}), 400, "InvalidParameter")
    _refused(lambda: env.disk("d", encryption={"type": CMK, "diskEncryptionSetId": des.id + "x"}), 404, "NotFound")
    _refused(lambda: env.disk("d", encryption={"type": CMK, "diskEncryptionSetId": far.id}), 400, "InvalidParameter")
    _refused(lambda: env.disk("d", encryption={"type": CMK, "diskEncryptionSetId": double.id}), 400, "InvalidParameter")
    _refused(lambda: env.disk("d", encryption={"type": DOUBLE, "diskEncryptionSetId": des.id}), 400, "InvalidParameter")
    assert env.disk("d2", encryption={"type": DOUBLE, "diskEncryptionSetId": double.id}).encryption.type == DOUBLE
    ade = env.disk("ade")
    env.meta(ade.id, everHadADE=True)  # a disk that once had Azure Disk Encryption
    cmk = {"properties": {"encryption": {"type": CMK, "diskEncryptionSetId": des.id}}}
    _refused(lambda: env.compute.disks.begin_update(RG, "ade", cmk), 400, "BadRequest")
    esc = {"enabled": True, "encryptionSettings": []}
    _refused(lambda: env.disk("d2", encryptionSettingsCollection=esc), 400, "BadRequest")  # ADE on a CMK disk


def test_vm_attach_power_states_and_disk_states(env):
    os_disk = env.disk("os1")
    start = len(env.sb.calls())
    data = [{"lun": 0, "createOption": "Empty", "diskSizeGB": 16, "name": "vm1-data0"}]
    vm = env.vm("vm1", os_disk.id, data_disks=data)
    assert [c["status"] for c in env.sb.calls(start) if c["method"] == "PUT"] == [201]
    assert vm.provisioning_state == "Succeeded" and vm.vm_id
    assert vm.storage_profile.os_disk.name == "os1"
    assert vm.storage_profile.data_disks[0].managed_disk.id.lower().endswith("/disks/vm1-data0")
    for name in ("os1", "vm1-data0"):
        disk = env.compute.disks.get(RG, name)
        assert (disk.disk_state, disk.managed_by.lower()) == ("Attached", vm.id.lower())
    got = env.compute.virtual_machines.get(RG, "vm1", expand="instanceView")
    assert "PowerState/running" in [s.code for s in got.instance_view.statuses]
    start = len(env.sb.calls())
    env.compute.virtual_machines.begin_deallocate(RG, "vm1").result()
    assert [c["status"] for c in env.sb.calls(start) if c["method"] == "POST"] == [202]
    assert _power(env, "vm1") == "PowerState/deallocated"
    assert env.compute.disks.get(RG, "os1").disk_state == "Reserved"
    env.compute.virtual_machines.begin_start(RG, "vm1").result()
    assert (_power(env, "vm1"), env.compute.disks.get(RG, "os1").disk_state) == ("PowerState/running", "Attached")
    env.compute.virtual_machines.begin_power_off(RG, "vm1").result()
    assert (_power(env, "vm1"), env.compute.disks.get(RG, "os1").disk_state) == ("PowerState/stopped", "Attached")
    env.compute.virtual_machines.begin_restart(RG, "vm1").result()  # from stopped: refused below only if deallocated
    assert [v.name for v in env.compute.virtual_machines.list(RG)] == ["vm1"]
    assert [v.name for v in env.compute.virtual_machines.list_all()] == ["vm1"]
    _refused(lambda: env.compute.disks.begin_delete(RG, "os1"), 409, "OperationNotAllowed")
    _refused(lambda: env.vm("vm2", os_disk.id), 409, "ConflictingUserInput")
    detach = {"properties": {"storageProfile": {"dataDisks": []}}}
    env.compute.virtual_machines.begin_update(RG, "vm1", detach).result()
    assert env.compute.disks.get(RG, "vm1-data0").disk_state == "Unattached"
    env.compute.virtual_machines.begin_delete(RG, "vm1").result()
    assert env.compute.disks.get(RG, "os1").managed_by is None


def test_disk_changes_refused_while_vm_running(env):
    vault, key = env.vault()
    des = env.des("des1", vault, key.properties.key_uri_with_version)
    os_disk = env.disk("os1", encryption={"type": CMK, "diskEncryptionSetId": des.id})
    env.vm("vm1", os_disk.id)
    assert env.compute.virtual_machines.get(RG, "vm1").storage_profile.os_disk.managed_disk.disk_encryption_set.id
    to_pmk = {"properties": {"encryption": {"type": PMK}}}
    message = _refused(lambda: env.compute.disks.begin_update(RG, "os1", to_pmk), 409, "OperationNotAllowed")
    assert "running VM" in message
    bigger = {"properties": {"diskSizeGB": 64}}
    message = _refused(lambda: env.compute.disks.begin_update(RG, "os1", bigger), 409, "OperationNotAllowed")
    assert message.startswith("Cannot resize disk os1 while it is attached to running VM")
    env.compute.virtual_machines.begin_deallocate(RG, "vm1").result()
    assert env.compute.disks.begin_update(RG, "os1", to_pmk).result().encryption.type == PMK
    assert env.compute.virtual_machines.get(RG, "vm1").storage_profile.os_disk.managed_disk.disk_encryption_set is None


def test_encryption_at_host_only_when_deallocated_and_supported(env):
    from tests.sandbox.test_features import enable_encryption_at_host

    enable_encryption_at_host(env.sb)
    env.vm("vm1", env.disk("os1").id)
    eah = {"properties": {"securityProfile": {"encryptionAtHost": True}}}
    message = _refused(lambda: env.compute.virtual_machines.begin_update(RG, "vm1", eah), 409, "OperationNotAllowed")
    assert "deallocated" in message
    env.compute.virtual_machines.begin_deallocate(RG, "vm1").result()
    vm = env.compute.virtual_machines.begin_update(RG, "vm1", eah).result()
    assert vm.security_profile.encryption_at_host is True
    old_size = {"securityProfile": {"encryptionAtHost": True}}
    _refused(lambda: env.vm("vm2", env.disk("os2").id, size="Standard_D2_v3", **old_size), 400, "InvalidParameter")
    assert env.vm("vm3", env.disk("os3").id, size="Standard_DS1_v2", **old_size).security_profile.encryption_at_host
    env.vm("vm4", env.disk("os4").id)
    env.meta(f"{env.rg_id}/providers/Microsoft.Compute/virtualMachines/vm4", ade=True, powerState="deallocated")
    _refused(lambda: env.compute.virtual_machines.begin_update(RG, "vm4", eah), 400, "BadRequest")


def test_des_auto_rotation_follows_a_new_key_version_within_the_hour(env, sandbox):
    vault, key = env.vault(purge=True)
    rotate = {"rotationToLatestKeyVersionEnabled": True}
    des = env.des("des1", vault, key.properties.key_uri_with_version, **rotate)  # versioned, as DiskRP requires
    stuck = env.des("des2", vault, key.properties.key_uri_with_version, **rotate)
    env.meta(stuck.id, autoRotationStuck=True)
    first = des.active_key.key_url
    assert first == key.properties.key_uri_with_version and des.rotation_to_latest_key_version_enabled
    env.disk("cmk", encryption={"type": CMK, "diskEncryptionSetId": des.id})
    client = KeyClient(
        vault.properties.vault_uri, sandbox.credential(), verify_challenge_resource=False, connection_verify=sandbox.ca
    )
    new_id = client.rotate_key("des-key").id
    assert env.compute.disk_encryption_sets.get(RG, "des1").active_key.key_url == first  # not yet
    sandbox.advance(3600)
    got = env.compute.disk_encryption_sets.get(RG, "des1")
    assert got.active_key.key_url == new_id and got.last_key_rotation_timestamp is not None
    assert [k.key_url for k in got.previous_keys] == [first]
    assert env.compute.disk_encryption_sets.get(RG, "des2").active_key.key_url == first  # the stuck one stays
    disk_id = f"{env.rg_id}/providers/Microsoft.Compute/disks/cmk"
    assert sandbox.running.sandbox.state.meta_of(disk_id)["keyUrl"] == new_id


def test_a_versionless_key_url_is_refused_with_or_without_auto_rotation(env):
    """DiskRP: "Version segment of the Url is required regardless of rotationToLatestKeyVersionEnabled value"."""
    vault, key = env.vault(purge=True)
    for rotate in (True, False):
        with pytest.raises(HttpResponseError) as refused:
            env.des(f"des-nover-{rotate}", vault, key.properties.key_uri, rotationToLatestKeyVersionEnabled=rotate)
        assert refused.value.status_code == 400 and refused.value.error.code == "InvalidParameter"
        assert "version" in refused.value.error.message
    des = env.des("des-ver", vault, key.properties.key_uri_with_version)
    with pytest.raises(HttpResponseError):
        patch = DiskEncryptionSetUpdate(
            active_key=KeyForDiskEncryptionSet(key_url=key.properties.key_uri),
            rotation_to_latest_key_version_enabled=True,
        )
        env.compute.disk_encryption_sets.begin_update(RG, "des-ver", patch).result()
    assert env.compute.disk_encryption_sets.get(RG, "des-ver").active_key.key_url == des.active_key.key_url


def test_legacy_unmanaged_vm_keeps_its_vhd_and_no_managed_disk(env):
    vhd = {"uri": "https://legacy.blob.core.windows.net/vhds/os.vhd"}
    body = {
        "location": LOC,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
            "storageProfile": {"osDisk": {"name": "os", "createOption": "Attach", "osType": "Windows", "vhd": vhd}},
            "osProfile": {"computerName": "legacy", "adminUsername": "u", "adminPassword": "not-returned"},
        },
    }
    vm = env.compute.virtual_machines.begin_create_or_update(RG, "legacy", body).result()
    assert vm.storage_profile.os_disk.vhd.uri == vhd["uri"] and vm.storage_profile.os_disk.managed_disk is None
    assert vm.os_profile.admin_password is None and vm.os_profile.windows_configuration.provision_vm_agent
    assert list(env.compute.disks.list()) == []


def test_a_des_with_a_user_assigned_identity_reaches_its_key_with_that_identity(env, sandbox):
    """The az CLI's recorded test (des/cli-des-get-system-and-user-assigned-2023-04-02.json and its vault) grants
    only the user-assigned identity; DiskRP refuses a set whose user-assigned identity cannot use the key."""
    vault, key = env.vault()
    uai_id = f"{env.rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-des"
    uai = sandbox.running.sandbox.directory.add_user_identity(uai_id)
    body = {
        "location": LOC,
        "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uai_id: {}}},
        "properties": {"activeKey": {"sourceVault": {"id": vault.id}, "keyUrl": key.properties.key_uri_with_version}},
    }
    create = env.compute.disk_encryption_sets.begin_create_or_update
    message = _refused(lambda: create(RG, "des-uai", body).result(), 400, "KeyVaultAccessForbidden")
    assert "des-uai" in message
    env.grant(vault.name, uai.object_id)
    des = create(RG, "des-uai", body).result()
    (entry,) = des.identity.user_assigned_identities.values()
    assert (entry.principal_id, entry.client_id) == (uai.object_id, uai.client_id)
    assert des.identity.principal_id and des.identity.principal_id != uai.object_id  # the system one has no access
    disk = env.disk("cmk-uai", encryption={"diskEncryptionSetId": des.id})  # the user-assigned identity suffices
    assert disk.encryption.type == CMK
