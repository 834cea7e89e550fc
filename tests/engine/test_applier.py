"""The applier: verify semantics (pure), and each outcome against the sandbox through the real clients."""

from dataclasses import replace

import pytest

from remediations.changes import APPROVAL, DEALLOCATED, Change, Operation, Plan
from remediations.engine.applier import Result, apply, gate, holds, unmet, verified
from remediations.engine.reader import Scope

LOCKS_API, DISK_API = "2020-05-01", "2026-03-02"


# --- verify (pure) ---------------------------------------------------------------------------------------------------


def test_verify_follows_dotted_paths_selectors_and_list_subsets():
    body = {
        "properties": {
            "enablePurgeProtection": True,
            "accessPolicies": [{"objectId": "ABC", "permissions": {"keys": ["get", "wrapKey", "unwrapKey", "list"]}}],
            "logs": [{"categoryGroup": "audit", "enabled": True, "retentionPolicy": {"days": 0}}],
            "workspaceId": "/subscriptions/S/resourceGroups/OPS/providers/x",
        }
    }
    assert holds(body, {"properties.enablePurgeProtection": True})
    assert holds(body, {"properties.accessPolicies[objectId=abc].permissions.keys": ["get", "wrapKey", "unwrapKey"]})
    assert holds(body, {"properties.logs": [{"categoryGroup": "audit", "enabled": True}]})
    assert holds(body, {"properties.workspaceId": "/subscriptions/s/resourcegroups/ops/providers/x"})
    assert unmet(body, {"properties.enableRbacAuthorization": True}) == (
        "properties.enableRbacAuthorization = None (expected True)"
    )
    assert not holds(body, {"properties.accessPolicies[objectId=other].permissions.keys": ["get"]})
    assert not holds(body, {"properties.enablePurgeProtection": "true"})  # types differ: not the same value


def change(path: str, *, method="PUT", requires=(), depends_on=(), before=None, after=None, resource_id=None):
    return Change(
        resource_id=resource_id or path.split("/providers/Microsoft.Authorization")[0],
        summary="Lock it.",
        operation=Operation(method, path, LOCKS_API, {"properties": {"level": "CanNotDelete"}}),
        before=before if before is not None else {"properties.level": None},
        after=after or {"properties.level": "CanNotDelete"},
        requires=requires,
        depends_on=depends_on,
        policy_ids=("kv-delete-lock",),
        fixes=("kv-delete-lock",),
    )


@pytest.fixture
def vault(sandbox):
    sandbox.reset("estate")
    return (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu/providers/Microsoft.KeyVault/vaults/"
        "kv-weu-app"
    )


def lock_of(vault: str) -> str:
    return f"{vault}/providers/Microsoft.Authorization/locks/cryptward-cannot-delete"


def scope_of(sandbox, group=None):
    return Scope((sandbox.subscription_id,), group)


def test_applies_then_finds_it_already_compliant(sandbox, azure_as, vault):
    azure = azure_as("admin")
    plan = Plan((change(lock_of(vault)),))
    (first,) = apply(plan, azure, scope=scope_of(sandbox))
    assert (first.status, first.detail) == ("applied", "written and verified")
    since = len(sandbox.calls())
    (second,) = apply(plan, azure, scope=scope_of(sandbox))
    assert second.status == "already-compliant"
    assert [c["method"] for c in sandbox.calls(since) if c["path"] != "/msi/token"] == ["GET"]


def test_failures_carry_the_azure_error(sandbox, azure_as, vault):
    (result,) = apply(Plan((change(lock_of(vault)),)), azure_as("reader"), scope=scope_of(sandbox))
    assert (result.status, result.code) == ("failed", "AuthorizationFailed")


def test_approval_dependencies_and_scope(sandbox, azure_as, vault):
    azure = azure_as("admin")
    waiting = change(lock_of(vault), requires=(APPROVAL,))
    after = change(lock_of(vault).replace("cryptward-cannot-delete", "second"), depends_on=(waiting.id,))
    outside = change(lock_of(vault), resource_id=vault.replace("rg-app-weu", "rg-app-neu"))
    results = apply(Plan((waiting, after, outside)), azure, scope=scope_of(sandbox, "rg-app-weu"))
    assert [r.status for r in results] == ["pending-approval", "blocked", "refused"]
    (approved,) = apply(Plan((waiting,)), azure, scope=scope_of(sandbox), approved={waiting.id})
    assert approved.status == "applied"


def test_a_read_answered_by_arms_routing_404_is_not_an_absent_resource(sandbox, azure_as, vault):
    """404 InvalidResourceType says the route is unknown, not that the resource is missing: nothing is written on it."""
    azure = azure_as("admin")
    unknown = f"{vault}/providers/Microsoft.Insights/nopes/x"  # a served namespace, an unknown type
    lock = change(lock_of(vault))
    blind = replace(lock, operation=replace(lock.operation, read_path=unknown))
    since = len(sandbox.calls())
    (result,) = apply(Plan((blind,)), azure, scope=scope_of(sandbox))
    assert (result.status, result.code) == ("failed", "InvalidResourceType")
    assert [c["method"] for c in sandbox.calls(since) if c["path"] != "/msi/token"] == ["GET"]


def test_never_deletes(sandbox, azure_as, vault):
    (result,) = apply(Plan((change(lock_of(vault), method="DELETE"),)), azure_as("admin"), scope=scope_of(sandbox))
    assert result.status == "refused" and "DELETE" in result.detail


def test_a_change_that_weakens_a_setting_is_a_bug(sandbox, azure_as, vault):
    weak = change(
        lock_of(vault),
        before={"properties.enablePurgeProtection": True},
        after={"properties.enablePurgeProtection": False},
    )
    with pytest.raises(AssertionError, match="weaken"):
        apply(Plan((weak,)), azure_as("admin"), scope=scope_of(sandbox))


def test_a_disk_on_a_running_vm_waits_for_deallocation(sandbox, azure_as, vault):
    sub = sandbox.subscription_id
    disk = f"/subscriptions/{sub}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/disk-weu-app-data"
    batch = f"/subscriptions/{sub}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/disk-weu-batch-os"

    def tag(disk_id):
        return Change(
            resource_id=disk_id,
            summary="Tag the disk.",
            operation=Operation("PATCH", disk_id, DISK_API, {"tags": {"cmk": "next"}}),
            before={"tags.cmk": None},
            after={"tags.cmk": "next"},
            requires=(DEALLOCATED,),
        )

    results = apply(Plan((tag(disk), tag(batch))), azure_as("admin"), scope=scope_of(sandbox))
    assert [r.status for r in results] == ["pending-deallocation", "applied"]
    assert "vm-weu-app" in results[0].detail


# --- gate and verdict (pure) -----------------------------------------------------------------------------------------

SUB = "00000000-0000-0000-0000-000000000001"
SCOPE = Scope((SUB,), "rg-app")
VAULT_IN = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv"
VAULT_OUT = f"/subscriptions/{SUB}/resourceGroups/rg-other/providers/Microsoft.KeyVault/vaults/kv"


def test_gate_lets_a_write_in_scope_go_on():
    assert gate(change(lock_of(VAULT_IN)), {}, SCOPE, ()) is None


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"depends_on": ("other",)}, "blocked", "waits for: not in this run"),
        ({"requires": (APPROVAL,)}, "pending-approval", "a person must approve this change first"),
        ({"method": "DELETE"}, "refused", "Cryptward never sends DELETE requests"),
        (
            {"path": lock_of(VAULT_OUT)},
            "refused",
            f"{VAULT_OUT} is outside the scope /subscriptions/{SUB}/resourcegroups/rg-app",
        ),
    ],
)
def test_gate_stops_a_change_before_azure_is_asked(kwargs, status, detail):
    result = gate(change(kwargs.pop("path", lock_of(VAULT_IN)), **kwargs), {}, SCOPE, ())
    assert result is not None
    assert (result.status, result.detail) == (status, detail)


@pytest.mark.parametrize(
    ("dependency", "blocked"), [("applied", False), ("already-compliant", False), ("failed", True)]
)
def test_gate_waits_for_a_dependency_until_it_holds(dependency, blocked):
    first = change(lock_of(VAULT_IN))
    second = change(f"{VAULT_IN}/keys/k", depends_on=(first.id,), requires=(APPROVAL,))
    result = gate(second, {first.id: Result(first, dependency)}, SCOPE, {second.id})
    assert (result is not None) is blocked
    if result is not None:
        assert (result.status, result.detail) == ("blocked", "waits for: Lock it. (failed)")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"properties": {"level": "CanNotDelete"}}, "applied", None),
        ({"properties": {"level": "ReadOnly"}}, "failed", "VerificationFailed"),
        (None, "failed", "VerificationFailed"),
    ],
)
def test_verified_checks_the_body_after_the_write(body, status, code):
    result = verified(change(lock_of(VAULT_IN)), body)
    assert (result.status, result.code) == (status, code)


def test_a_role_definition_id_is_verified_by_its_guid_in_whatever_form_arm_answers():
    """azure-specs examples/authorization/RoleAssignments_CreateForResource.json: sent in the subscription form,
    answered in the tenant form."""
    guid = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
    sent = (
        f"/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    )
    answered = {
        "properties": {"roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{guid.upper()}"}
    }
    assert holds(answered, {"properties.roleDefinitionId": sent})
    other = {"properties": {"roleDefinitionId": answered["properties"]["roleDefinitionId"].replace("E147", "F147")}}
    assert unmet(other, {"properties.roleDefinitionId": sent})


# --- a change needing a role too young to be in effect (issue 15, item 4) -------------------------------------------


def test_a_key_access_refusal_waits_while_azure_says_the_role_is_younger_than_the_window(sandbox, azure_as):
    import uuid
    from datetime import timedelta

    from azure.mgmt.authorization import AuthorizationManagementClient

    from remediations.engine.applier import FAILED, WAITING, waiting_for_role
    from tests import keyworld

    world = keyworld.make(sandbox)
    auth = sandbox.client(AuthorizationManagementClient)
    role = f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
    body = {"roleDefinitionId": role + keyworld.ENCRYPTION_USER, "principalId": world.des_principal}
    body["principalType"] = "ServicePrincipal"
    made = auth.role_assignments.create(world.key_scope, str(uuid.uuid4()), {"properties": body})
    encrypt = Change(
        resource_id=world.disk_id,
        summary="Encrypt it.",
        operation=Operation(
            "PATCH",
            world.disk_id,
            DISK_API,
            {"properties": {"encryption": {"type": keyworld.CMK, "diskEncryptionSetId": world.des_id}}},
        ),
        before={"properties.encryption.type": None},
        after={"properties.encryption.type": keyworld.CMK},
    )
    admin = azure_as("admin")
    (failed,) = apply(Plan((encrypt,)), admin, scope=Scope((sandbox.subscription_id,)))  # no window: fails
    assert (failed.status, failed.code) == (FAILED, "KeyVaultAccessForbidden")
    created = made.created_on
    young = waiting_for_role(failed, {}, admin, 600, now=created + timedelta(seconds=100))
    assert young is not None and (young.status, young.code, round(young.retry_after)) == (WAITING, failed.code, 500)
    assert "takes up to 10 minutes" in young.detail
    assert waiting_for_role(failed, {}, admin, 600, now=created + timedelta(seconds=600)) is None  # window over
    assert waiting_for_role(failed, {}, admin, 0, now=created) is None  # no window, no waiting
    (again,) = apply(Plan((encrypt,)), admin, scope=Scope((sandbox.subscription_id,)), role_propagation_seconds=600)
    assert again.status == WAITING  # just granted, by Azure's own createdOn


# --- independent changes written together, paced by the write budget (issue 21) --------------------------------------


def vaults(sandbox, n: int) -> list[str]:
    """`n` new vaults in rg-app-weu of the estate."""
    from azure.mgmt.keyvault import KeyVaultManagementClient

    sandbox.reset("estate")
    kv = sandbox.client(KeyVaultManagementClient)
    body = {
        "location": "westeurope",
        "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
    }
    return [kv.vaults.begin_create_or_update("rg-app-weu", f"kv-par-{i:02}", body).result().id for i in range(n)]


def spans(calls, method="PUT"):
    """(start, end, path) of each answered write, from the call log: its end time and how long it took."""
    from datetime import datetime, timedelta

    out = []
    for c in calls:
        if c["method"] == method and c["status"] is not None:
            end = datetime.fromisoformat(c["time"].replace("Z", "+00:00"))
            out.append((end - timedelta(milliseconds=c["latencyMs"]), end, c["path"].lower()))
    return out


def test_independent_changes_are_written_at_once(sandbox, azure_as):
    """The sandbox holds each lock PUT 400 ms (its `slow` fault): with 4 workers the call log shows them overlap."""
    ids = vaults(sandbox, 4)
    sandbox.admin(
        "POST", "/_sandbox/faults", {"rules": [{"kind": "slow", "method": "PUT", "path": "/locks/", "delayMs": 400}]}
    )
    since = len(sandbox.calls())
    results = apply(Plan(tuple(change(lock_of(v)) for v in ids)), azure_as("admin"), scope=scope_of(sandbox), workers=4)
    sandbox.admin("POST", "/_sandbox/faults", {"rules": []})
    assert [r.status for r in results] == ["applied"] * 4
    puts = spans(sandbox.calls(since))
    assert len(puts) == 4
    overlapping = [(a, b) for a in puts for b in puts if a < b and a[0] < b[1] and b[0] < a[1]]
    assert overlapping, puts


def test_under_concurrency_a_change_waits_for_its_dependency_and_its_target(sandbox, azure_as):
    """Same slow writes, 8 workers: a second lock on the same vault starts after the first ends, a change depending on
    it too; an independent one runs beside the first; results come in plan order."""
    a, b, c = vaults(sandbox, 3)
    first = change(lock_of(a))
    same_target = change(lock_of(a).replace("cryptward-cannot-delete", "second"))
    dependent = change(lock_of(b), depends_on=(first.id,))
    free = change(lock_of(c))
    sandbox.admin(
        "POST", "/_sandbox/faults", {"rules": [{"kind": "slow", "method": "PUT", "path": "/locks/", "delayMs": 400}]}
    )
    since = len(sandbox.calls())
    plan = Plan((first, same_target, dependent, free))
    results = apply(plan, azure_as("admin"), scope=scope_of(sandbox), workers=8)
    sandbox.admin("POST", "/_sandbox/faults", {"rules": []})
    assert [r.change.id for r in results] == [x.id for x in plan.changes]
    assert [r.status for r in results] == ["applied"] * 4
    put = {p: (s, e) for s, e, p in spans(sandbox.calls(since))}
    assert put[same_target.operation.path.lower()][0] >= put[first.operation.path.lower()][1]
    assert put[dependent.operation.path.lower()][0] >= put[first.operation.path.lower()][1]
    assert put[free.operation.path.lower()][0] < put[first.operation.path.lower()][1]  # beside the first


def test_a_weakening_change_stops_the_run_once_what_runs_has_finished(sandbox, azure_as, caplog):
    ids = vaults(sandbox, 4)
    weak = change(
        lock_of(ids[2]),
        before={"properties.enablePurgeProtection": True},
        after={"properties.enablePurgeProtection": False},
    )
    plan = Plan((change(lock_of(ids[0])), change(lock_of(ids[1])), weak, change(lock_of(ids[3]))))
    since = len(sandbox.calls())
    with pytest.raises(AssertionError, match=r"weaken.*2 change\(s\) had finished"):
        apply(plan, azure_as("admin"), scope=scope_of(sandbox), workers=2)
    written = {c["path"].lower() for c in sandbox.calls(since) if c["method"] == "PUT"}
    assert written == {lock_of(ids[0]).lower(), lock_of(ids[1]).lower()}  # nothing after the weakening one
    assert "cryptward apply stopped" in caplog.text


def test_writes_are_paced_to_the_write_budget_and_meet_no_429(sandbox, azure_as):
    """A bucket of 10 writes refilled 10 a second (ARM's refill; Learn, "Understand how Azure Resource Manager
    throttles requests"): 30 locks written 8 at a time would meet 429s; paced by the remaining-writes header, none."""
    ids = vaults(sandbox, 30)
    sandbox.admin("PATCH", "/_sandbox/settings", {"write_budget": 10, "write_refill": 10.0})
    try:
        azure = azure_as("admin")
        since = len(sandbox.calls())
        results = apply(Plan(tuple(change(lock_of(v)) for v in ids)), azure, scope=scope_of(sandbox), workers=8)
        puts = [c for c in sandbox.calls(since) if c["method"] == "PUT"]
    finally:
        sandbox.admin("PATCH", "/_sandbox/settings", {"write_budget": 200, "write_refill": 10.0})
    assert [r.status for r in results] == ["applied"] * 30
    assert [c for c in puts if c["status"] == 429] == [] and len(puts) == 30
    assert azure.write_budget.waited > 0  # it did wait for the refill


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("EncryptionAtRestWithPlatformAndCustomerKeys", "EncryptionAtRestWithCustomerKey"),
        ("EncryptionAtRestWithCustomerKey", "EncryptionAtRestWithPlatformKey"),
        ("EncryptionAtRestWithPlatformAndCustomerKeys", "SomethingElse"),
    ],
)
def test_a_weaker_encryption_type_is_a_weakening(sandbox, azure_as, vault, before, after):
    snapshot = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/"
    snapshot += "snapshots/snap-weu-golden"
    weak = Change(
        resource_id=snapshot,
        summary="Encrypt it.",
        operation=Operation("PATCH", snapshot, DISK_API, {"properties": {"encryption": {"type": after}}}),
        before={"properties.encryption.type": before},
        after={"properties.encryption.type": after},
        policy_ids=("snapshot-cmk",),
        fixes=("snapshot-cmk",),
    )
    with pytest.raises(AssertionError, match=r"weaken properties\.encryption\.type"):
        apply(Plan((weak,)), azure_as("admin"), scope=scope_of(sandbox))


@pytest.mark.parametrize("after", ["EncryptionAtRestWithCustomerKey", "EncryptionAtRestWithPlatformAndCustomerKeys"])
def test_a_platform_key_moved_to_a_customer_key_is_no_weakening(after):
    from remediations.engine.applier import _assert_not_weakening

    stronger = Change(
        resource_id="/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/x",
        summary="Encrypt it.",
        operation=Operation("PATCH", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/x",
                            DISK_API, {}),
        before={"properties.encryption.type": "EncryptionAtRestWithPlatformKey"},
        after={"properties.encryption.type": after},
    )  # fmt: skip
    _assert_not_weakening(stronger)  # raises if it were
