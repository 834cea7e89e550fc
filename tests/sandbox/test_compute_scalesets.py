"""Microsoft.Compute/virtualMachineScaleSets and images through the real ComputeManagementClient: the model, its
upgrade policy, the instances' `latestModelApplied`, encryption at host's feature and size rules as for VMs, and
managed images with the disk encryption set of their OS disk."""

import pytest
from azure.core.exceptions import HttpResponseError

from tests.sandbox.test_compute import CMK, LOC, RG, Env, _refused
from tests.sandbox.test_features import FEATURE, arm


@pytest.fixture
def env(sandbox):
    return Env(sandbox)


EAH = {"properties": {"virtualMachineProfile": {"securityProfile": {"encryptionAtHost": True}}}}


def vmss(env, name, mode="Manual", size="Standard_D2s_v5", capacity=2, **vmp):
    body = {
        "location": LOC,
        "sku": {"name": size, "tier": "Standard", "capacity": capacity},
        "properties": {
            "upgradePolicy": {"mode": mode},
            "virtualMachineProfile": {
                "storageProfile": {
                    "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
                    "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
                },
                "osProfile": {"computerNamePrefix": name, "adminUsername": "azureuser", "adminPassword": "x"},
                **vmp,
            },
        },
    }
    return env.compute.virtual_machine_scale_sets.begin_create_or_update(RG, name, body).result()


def latest(env, name):
    return {i.instance_id: i.latest_model_applied for i in env.compute.virtual_machine_scale_set_vms.list(RG, name)}


def registered(sandbox):
    arm(sandbox, "POST", f"{FEATURE}/register")
    sandbox.advance(sandbox.admin("GET", "/_sandbox/settings")["feature_registration_seconds"] + 1)


def test_a_scale_set_is_served_with_its_model_and_instances(env):
    made = vmss(env, "vmss-web")
    assert (made.upgrade_policy.mode, made.sku.capacity, made.unique_id) == ("Manual", 2, made.unique_id)
    assert made.virtual_machine_profile.os_profile.admin_password is None
    assert [s.name for s in env.compute.virtual_machine_scale_sets.list(RG)] == ["vmss-web"]
    assert [s.name for s in env.compute.virtual_machine_scale_sets.list_all()] == ["vmss-web"]
    instances = list(env.compute.virtual_machine_scale_set_vms.list(RG, "vmss-web"))
    assert [(i.instance_id, i.name) for i in instances] == [("0", "vmss-web_0"), ("1", "vmss-web_1")]
    assert instances[0].id.endswith("/virtualMachineScaleSets/vmss-web/virtualMachines/0")
    assert latest(env, "vmss-web") == {"0": True, "1": True}


def test_encryption_at_host_needs_the_feature_and_a_size_that_supports_it(env, sandbox):
    vmss(env, "vmss-eah")
    update = EAH
    ops = env.compute.virtual_machine_scale_sets
    message = _refused(lambda: ops.begin_update(RG, "vmss-eah", update).result(), 400, "InvalidParameter")
    assert "'Microsoft.Compute/EncryptionAtHost' feature is not enabled for this subscription" in message
    registered(sandbox)
    vmss(env, "vmss-old", size="Standard_D2_v3")
    message = _refused(lambda: ops.begin_update(RG, "vmss-old", update).result(), 400, "InvalidParameter")
    assert "Encryption at host is not supported for VM size 'Standard_D2_v3'" in message
    assert ops.begin_update(RG, "vmss-eah", update).result().virtual_machine_profile.security_profile.encryption_at_host


@pytest.mark.parametrize(("mode", "after", "restarts"), [("Manual", False, 0), ("Rolling", True, 2)])
def test_a_model_change_reaches_instances_by_the_upgrade_policy(env, sandbox, mode, after, restarts):
    registered(sandbox)
    made = vmss(env, "vmss-up", mode=mode)
    update = EAH
    env.compute.virtual_machine_scale_sets.begin_update(RG, "vmss-up", update).result()
    assert latest(env, "vmss-up") == {"0": after, "1": after}
    assert sandbox.running.sandbox.state.meta_of(made.id).get("restarts", 0) == restarts
    if mode == "Manual":  # the owner's upgrade brings an instance to the model
        env.compute.virtual_machine_scale_sets.begin_update_instances(RG, "vmss-up", {"instanceIds": ["1"]}).result()
        assert latest(env, "vmss-up") == {"0": False, "1": True}


def eah_of(env, name):
    return {
        i.instance_id: i.security_profile.encryption_at_host
        for i in env.compute.virtual_machine_scale_set_vms.list(RG, name)
    }


@pytest.mark.parametrize("mode", ["Manual", "Automatic", "Rolling"])
def test_encryption_at_host_reaches_an_instance_only_when_it_is_deallocated_and_allocated_again(env, sandbox, mode):
    """Learn: "The encryption can be enabled on existing virtual machine scale sets. However, only new VMs created
    after enabling the encryption are automatically encrypted. Existing VMs must be deallocated and reallocated in
    order to be encrypted." Whatever the upgrade policy, an upgrade to the model is not that."""
    registered(sandbox)
    vmss(env, "vmss-realloc", mode=mode)
    ops = env.compute.virtual_machine_scale_sets
    ops.begin_update(RG, "vmss-realloc", EAH).result()  # accepted while the instances run
    if mode == "Manual":
        ops.begin_update_instances(RG, "vmss-realloc", {"instanceIds": ["0", "1"]}).result()
    assert latest(env, "vmss-realloc") == {"0": True, "1": True}
    assert eah_of(env, "vmss-realloc") == {"0": False, "1": False}
    ops.begin_deallocate(RG, "vmss-realloc", vm_instance_i_ds={"instanceIds": ["1"]}).result()
    ops.begin_start(RG, "vmss-realloc", vm_instance_i_ds={"instanceIds": ["1"]}).result()
    assert eah_of(env, "vmss-realloc") == {"0": False, "1": True}
    ops.begin_update(RG, "vmss-realloc", {"sku": {"capacity": 3}}).result()  # a new instance is made encrypted
    assert eah_of(env, "vmss-realloc") == {"0": False, "1": True, "2": True}


def test_an_instance_lists_the_disks_of_the_model_it_runs(env):
    """Shape as recorded (recordings/scalesets/cli-vmss-instances-list-2021-11-01.json): each instance's disks are
    named and have their managed disk's id; under a Manual policy an instance keeps the storage profile of the model
    it runs (a disk encryption set added to the model reaches it when its owner upgrades it)."""
    vault, key = env.vault()
    des = env.des("des-vmss", vault, key.properties.key_uri_with_version)
    vmss(env, "vmss-des", capacity=1)
    ops = env.compute.virtual_machine_scale_sets
    update = {"osDisk": {"createOption": "FromImage", "managedDisk": {"diskEncryptionSet": {"id": des.id}}}}
    ops.begin_update(RG, "vmss-des", {"properties": {"virtualMachineProfile": {"storageProfile": update}}}).result()

    def os_disk():
        (instance,) = env.compute.virtual_machine_scale_set_vms.list(RG, "vmss-des")
        assert instance.type == "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
        assert instance.storage_profile.os_disk.name.startswith("vmss-des_vmss-des_0_OsDisk_1_")
        assert instance.storage_profile.os_disk.managed_disk.id.endswith(instance.storage_profile.os_disk.name)
        assert instance.os_profile.computer_name == "vmss-des000000"
        return instance.storage_profile.os_disk.managed_disk

    assert os_disk().disk_encryption_set is None
    ops.begin_update_instances(RG, "vmss-des", {"instanceIds": ["0"]}).result()
    assert os_disk().disk_encryption_set.id.lower() == des.id.lower()


def test_an_image_keeps_the_disk_encryption_set_it_was_made_with(env):
    vault, key = env.vault()
    des = env.des("des-img", vault, key.properties.key_uri_with_version)
    disk = env.disk("disk-img", osType="Linux", encryption={"type": CMK, "diskEncryptionSetId": des.id})
    body = {
        "location": LOC,
        "properties": {
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "managedDisk": {"id": disk.id},
                    "diskEncryptionSet": {"id": des.id},
                }
            }
        },
    }
    image = env.compute.images.begin_create_or_update(RG, "img-cmk", body).result()
    assert image.storage_profile.os_disk.disk_encryption_set.id == des.id
    assert [i.name for i in env.compute.images.list_by_resource_group(RG)] == ["img-cmk"]
    body["properties"]["storageProfile"]["osDisk"].pop("diskEncryptionSet")
    with pytest.raises(HttpResponseError) as err:
        env.compute.images.begin_create_or_update(RG, "img-cmk", body).result()
    assert (err.value.status_code, err.value.error.code) == (409, "OperationNotAllowed")
