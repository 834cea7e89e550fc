"""vm-encryption-at-host against the sandbox, as the bot with its role: in a subscription without the EncryptionAtHost
feature it first asks for the feature's registration, waits while Azure registers it, and only then asks for the VM."""

from azure.mgmt.compute import ComputeManagementClient

from remediations.engine.reader import Scope
from remediations.engine.run import scan
from tests.engine.test_run import POLICIES, ids, settings_for, sweep
from tests.test_infra import _unregister_eah_feature

MODE = {"vm-encryption-at-host": "approve"}


VM = "vm-weu-batch"  # deallocated in the estate: nothing but the feature and an approval stands in its way


def _results(report, vm=VM):
    return {(r.change.operation.method, r.status) for r in report.results if r.change.resource_id.endswith(f"/{vm}")}


def test_without_the_feature_the_bot_registers_it_first_and_waits_for_it(sandbox, grant_custom_role, as_bot):
    sandbox.reset("estate")
    _unregister_eah_feature(sandbox)
    grant_custom_role("bot")
    first = sweep(sandbox, as_bot(), **MODE)
    # the registration waits for a person; the VM's change waits for the registration (no deallocation asked)
    assert _results(first) == {("POST", "pending-approval"), ("PATCH", "blocked")}
    (registration,) = [c for c in first.plan.changes if c.operation.method == "POST" and c.resource_id.endswith(VM)]
    assert registration.operation.path.endswith("/features/EncryptionAtHost/register")

    # a person approves the registration: it is sent; Azure registers the feature on its clock
    approved = approving(sandbox, as_bot(), registration.id)
    assert ("POST", "applied") in _results(approved)
    waiting = sweep(sandbox, as_bot(), **MODE)
    (skip,) = [s for s in waiting.plan.skipped if s.resource_id.endswith(VM) and s.policy_id == "vm-encryption-at-host"]
    assert skip.reason == "blocked" and "Registering" in skip.detail
    assert not [c for c in waiting.plan.changes if c.resource_id.endswith(VM)]

    # once Registered, the VM's change is planned as usual, and Azure takes it
    sandbox.advance(sandbox.admin("GET", "/_sandbox/settings")["feature_registration_seconds"] + 1)
    ready = sweep(sandbox, as_bot(), **MODE)
    (change,) = [c for c in ready.plan.changes if c.resource_id.endswith(VM)]
    assert change.operation.method == "PATCH" and change.depends_on == ()
    done = approving(sandbox, as_bot(), change.id)
    assert ("PATCH", "applied") in _results(done)
    vm = sandbox.client(ComputeManagementClient).virtual_machines.get("rg-app-weu", VM)
    assert vm.security_profile.encryption_at_host is True


def approving(sandbox, azure, change_id):
    """A sweep that applies the one change a person approved."""
    return scan(
        Scope((sandbox.subscription_id,)), POLICIES, apply=True, azure=azure, approved=(change_id,),
        settings=settings_for(sandbox, **MODE), ade_history=[ids(sandbox)["ade"]],
    )  # fmt: skip
