"""VM lists as ComputeRP answers them: `$expand=instanceView` only with a `$filter`, power states with
`statusOnly=true` (virtualMachine.json, VirtualMachines_List / VirtualMachines_ListAll)."""

import pytest
from azure.core.exceptions import HttpResponseError

from tests.sandbox.test_compute import RG, Env
from tests.sandbox.test_features import enable_encryption_at_host


@pytest.fixture
def env(sandbox):
    return Env(sandbox)


def test_a_vm_list_expands_the_instance_view_only_with_a_filter(env):
    env.vm("vm1", env.disk("os1").id)
    for listing in (
        lambda: env.compute.virtual_machines.list_all(expand="instanceView"),
        lambda: env.compute.virtual_machines.list(RG, expand="instanceView"),
    ):
        with pytest.raises(HttpResponseError) as err:
            list(listing())
        assert (err.value.status_code, err.value.error.code) == (400, "BadRequest")
        assert "only supported when Virtual Machine Scale Set resource filter is applied" in err.value.error.message
    assert [v.instance_view for v in env.compute.virtual_machines.list_all()] == [None]


def test_status_only_lists_every_vms_power_state(env):
    env.vm("vm1", env.disk("os1").id)
    env.vm("vm2", env.disk("os2").id)
    env.compute.virtual_machines.begin_deallocate(RG, "vm2").result()
    listed = {v.name: v for v in env.compute.virtual_machines.list_all(status_only="true")}
    power = {
        name: next(s.code for s in vm.instance_view.statuses if s.code.startswith("PowerState/"))
        for name, vm in listed.items()
    }
    assert power == {"vm1": "PowerState/running", "vm2": "PowerState/deallocated"}
    assert listed["vm1"].id.endswith("/virtualMachines/vm1")
    assert listed["vm1"].storage_profile is None  # the runtime status, not the model


ADE_LINUX = {
    "location": "westeurope",
    "properties": {
        "publisher": "Microsoft.Azure.Security",
        "type": "AzureDiskEncryptionForLinux",
        "typeHandlerVersion": "1.1",
        "autoUpgradeMinorVersion": True,
        "settings": {"EncryptionOperation": "EnableEncryption", "VolumeType": "All"},
        "protectedSettings": {"Passphrase": "never shown"},
    },
}


def test_vm_extensions_are_resources_listed_by_id_in_a_vm_list(env):
    enable_encryption_at_host(env.sb)
    vm = env.vm("vm1", env.disk("os1").id)
    exts = env.compute.virtual_machine_extensions
    made = exts.begin_create_or_update(RG, "vm1", "AzureDiskEncryptionForLinux", ADE_LINUX).result()
    assert (made.properties.publisher, made.properties.type, made.properties.provisioning_state) == (
        "Microsoft.Azure.Security",
        "AzureDiskEncryptionForLinux",
        "Succeeded",
    )
    assert made.id == f"{vm.id}/extensions/AzureDiskEncryptionForLinux"
    got = exts.get(RG, "vm1", "AzureDiskEncryptionForLinux")
    assert got.properties.protected_settings is None and got.properties.settings["VolumeType"] == "All"
    assert [e.name for e in exts.list(RG, "vm1").value] == ["AzureDiskEncryptionForLinux"]
    # a list carries only the extensions' ids (recorded at 2020-12-01 and 2024-11-01); a GET the whole bodies
    (listed,) = env.compute.virtual_machines.list_all()
    assert [(r.id, r.properties) for r in listed.resources] == [(made.id, None)]
    single = env.compute.virtual_machines.get(RG, "vm1")
    assert [r.properties.type for r in single.resources] == ["AzureDiskEncryptionForLinux"]
    exts.begin_delete(RG, "vm1", "AzureDiskEncryptionForLinux").result()
    assert env.compute.virtual_machines.get(RG, "vm1").resources is None
    # ADE once on the VM: encryption at host is refused for good ("currently or ever had" ADE)
    env.compute.virtual_machines.begin_deallocate(RG, "vm1").result()
    eah = {"properties": {"securityProfile": {"encryptionAtHost": True}}}
    with pytest.raises(HttpResponseError) as err:
        env.compute.virtual_machines.begin_update(RG, "vm1", eah).result()
    assert (err.value.status_code, err.value.error.code) == (400, "BadRequest")


def test_an_extension_needs_its_vm(env):
    with pytest.raises(HttpResponseError) as err:
        env.compute.virtual_machine_extensions.begin_create_or_update(RG, "nope", "x", ADE_LINUX).result()
    assert err.value.status_code == 404


def test_resource_skus_say_which_sizes_support_encryption_at_host(env):
    enable_encryption_at_host(env.sb)
    skus = list(env.compute.resource_skus.list(filter="location eq 'westeurope'"))
    vms = {s.name: s for s in skus if s.resource_type == "virtualMachines"}
    assert {"Standard_D4s_v5", "Standard_D4_v3", "Standard_DS1_v2"} <= set(vms)
    caps = {n: {c.name: c.value for c in s.capabilities} for n, s in vms.items()}
    assert caps["Standard_D4s_v5"]["EncryptionAtHostSupported"] == "True"
    assert caps["Standard_D4_v3"]["EncryptionAtHostSupported"] == "False"  # the seed's table: not Dv3
    assert caps["Standard_D4s_v5"]["vCPUs"] == "4"
    assert all(s.locations == ["westeurope"] for s in skus)
    assert vms["Standard_D4s_v5"].location_info[0].location == "westeurope"
    # the VM rule follows the SKU list: a size it says lacks the capability is refused
    eah = {"securityProfile": {"encryptionAtHost": True}}
    with pytest.raises(HttpResponseError) as err:
        env.vm("vm1", env.disk("os1").id, size="Standard_D4_v3", **eah)
    assert (err.value.status_code, err.value.error.code) == (400, "InvalidParameter")
