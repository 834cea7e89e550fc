"""VM lists as ComputeRP answers them: `$expand=instanceView` only with a `$filter`, power states with
`statusOnly=true` (virtualMachine.json, VirtualMachines_List / VirtualMachines_ListAll)."""

import pytest
from azure.core.exceptions import HttpResponseError

from tests.sandbox.test_compute import RG, Env


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
