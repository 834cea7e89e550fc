"""The reader against the sandbox's estate, through the real SDK clients: the `cryptward` blocks the policies read,
one list call per type, only what the policies need, and what cannot be read recorded rather than guessed."""

from pathlib import Path

import pytest

from remediations.engine.reader import Needs, Scope, lock_block, read_resource, read_scope, type_of, vm_block
from remediations.errors import AzureAccessError
from remediations.policy.loader import load_policies

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
ALL = Needs.of(POLICIES)
RG = {"app": "rg-app-weu", "keys": "rg-keys-weu", "neu": "rg-app-neu"}


def rid(sandbox, group: str, kind: str, name: str) -> str:
    return f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{group}/providers/{kind}/{name}"


def by_name(reading):
    return {body["name"]: body for body in reading.resources.values()}


def test_a_sweep_fills_every_block_the_policies_read(sandbox, azure_as):
    sandbox.reset("estate")
    ade_disk = rid(sandbox, RG["app"], "Microsoft.Compute/disks", "disk-weu-ade")
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,)), ALL, ade_history=[ade_disk])
    found = by_name(reading)
    assert reading.unreadable == {}
    vault = found["kv-weu-app"]["cryptward"]
    assert vault == {"locks": [], "diagnosticSettings": []}
    des = found["des-weu"]["cryptward"]
    assert des["keyVault"]["name"] == "kv-weu-disks" and "cryptward" not in des["keyVault"]
    assert des["keyVaultRoleAssignments"] == []
    key = found["des-key"]
    assert key["type"] == "Microsoft.KeyVault/vaults/keys"
    assert key["cryptward"]["diskEncryptionSets"] == [found["des-weu"]["id"]]
    assert key["properties"]["attributes"]["created"]  # the management plane gives created/exp
    app, batch = found["vm-weu-app"]["cryptward"], found["vm-weu-batch"]["cryptward"]
    assert (app["powerState"], batch["powerState"]) == ("PowerState/running", "PowerState/deallocated")
    assert sorted(d["name"] for d in app["disks"]) == ["disk-weu-app-data", "disk-weu-app-os"]
    assert found["disk-weu-ade"]["cryptward"]["adeHistory"] is True
    assert "adeHistory" not in found["disk-weu-data"]["cryptward"]
    assert "short-key" not in found  # keys no disk encryption set uses are not read


def test_a_sweep_lists_each_type_once_and_reads_only_what_no_list_gives(sandbox, azure_as):
    sandbox.reset("estate")
    azure = azure_as("reader")
    since = len(sandbox.calls())
    read_scope(azure, Scope((sandbox.subscription_id,)), ALL)
    paths = [c["path"].lower() for c in sandbox.calls(since) if c["method"] == "GET" and c["path"] != "/msi/token"]
    sub = f"/subscriptions/{sandbox.subscription_id}".lower()
    lists = [
        "microsoft.keyvault/vaults",
        "microsoft.compute/diskencryptionsets",
        "microsoft.compute/disks",
        "microsoft.compute/virtualmachines",
        "microsoft.authorization/locks",
        "microsoft.authorization/roleassignments",
    ]
    for kind in lists:
        assert paths.count(f"{sub}/providers/{kind}") == 1, kind
    diagnostics = [p for p in paths if p.endswith("/providers/microsoft.insights/diagnosticsettings")]
    keys = [p for p in paths if "/keys/" in p]
    assert len(diagnostics) == 3  # one per vault: ARM has no cross-resource list of diagnostic settings
    # the key's management-plane GET shows no rotation policy (it has none): the data plane is asked (Reader may not)
    assert [p.rsplit("/", 1)[-1] for p in keys] == ["des-key", "rotationpolicy"]
    assert len(paths) == len(lists) + 3 + 2 == azure.calls["GET"]


def test_only_what_the_policies_need_is_read(sandbox, azure_as):
    sandbox.reset("estate")
    azure = azure_as("reader")
    lock_policy = [p for p in POLICIES if p.id == "kv-delete-lock"]
    reading = read_scope(azure, Scope((sandbox.subscription_id,)), Needs.of(lock_policy))
    assert azure.calls["GET"] == 2  # the vaults and the locks
    assert {b["type"] for b in reading.resources.values()} == {"Microsoft.KeyVault/vaults"}
    assert all(set(b["cryptward"]) == {"locks"} for b in reading.resources.values())


def test_a_resource_group_scope_reads_that_group(sandbox, azure_as):
    sandbox.reset("estate")
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,), RG["app"]), ALL)
    assert {b["id"].split("/")[4] for b in reading.resources.values()} == {RG["app"]}
    assert "kv-weu-app" in by_name(reading) and "vm-weu-app" in by_name(reading)


def test_locks_apply_from_above(sandbox, azure_as):
    sandbox.reset("estate")
    from azure.mgmt.resource.locks import ManagementLockClient

    locks = sandbox.client(ManagementLockClient, "admin").management_locks
    locks.create_or_update_at_resource_group_level(RG["keys"], "keep", {"level": "CanNotDelete"})
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,)), ALL)
    found = by_name(reading)
    assert [lock["name"] for lock in found["kv-weu-disks"]["cryptward"]["locks"]] == ["keep"]
    assert [lock["name"] for lock in found["des-key"]["cryptward"]["locks"]] == ["keep"]  # a key is in the vault
    assert found["kv-weu-app"]["cryptward"]["locks"] == []


def test_what_cannot_be_read_is_recorded_not_guessed(sandbox, azure_as, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Authorization/locks/read", "Microsoft.KeyVault/vaults/keys/read"])
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)
    found = by_name(reading)
    vault_id = found["kv-weu-app"]["id"]
    assert reading.unreadable[vault_id.lower()]["locks"].startswith("AuthorizationFailed")
    assert "locks" not in found["kv-weu-app"]["cryptward"]
    assert "des-key" not in found
    key_id = f"{found['des-weu']['cryptward']['keyVault']['id']}/keys/des-key".lower()
    assert reading.unreadable[key_id]["related"].startswith("AuthorizationFailed")


def test_an_unlistable_scope_raises(sandbox, azure_as):
    from remediations.errors import AzureAccessError

    sandbox.reset("estate")
    with pytest.raises(AzureAccessError) as e:
        read_scope(azure_as("intruder"), Scope((sandbox.subscription_id,)), ALL)
    assert e.value.code == "AuthorizationFailed"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv", "Microsoft.KeyVault/vaults"),
        (
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/kv/keys/k",
            "Microsoft.KeyVault/vaults/keys",
        ),
        ("/subscriptions/s/resourceGroups/g/providers/microsoft.compute/DISKS/d", "Microsoft.Compute/disks"),
        ("/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/x", None),
    ],
)
def test_type_of(path, kind):
    assert type_of(path) == kind


def test_scope_contains_only_its_own_resources():
    scope = Scope(("AAAA",), "rg-App")
    assert scope.contains("/subscriptions/aaaa/resourceGroups/RG-APP/providers/Microsoft.KeyVault/vaults/kv")
    assert not scope.contains("/subscriptions/aaaa/resourceGroups/rg-app2/providers/Microsoft.KeyVault/vaults/kv")
    assert not scope.contains("/subscriptions/bbbb/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv")


# --- one resource (an event) -----------------------------------------------------------------------------------------


def test_one_vault_reads_the_vault_its_locks_and_its_diagnostic_settings(sandbox, azure_as):
    sandbox.reset("estate")
    azure = azure_as("reader")
    vault = rid(sandbox, RG["app"], "Microsoft.KeyVault/vaults", "kv-weu-app")
    reading = read_resource(azure, vault, ALL)
    assert list(reading.resources) == [vault]
    assert reading.resources[vault]["cryptward"] == {"locks": [], "diagnosticSettings": []}
    assert azure.calls["GET"] == 3


def test_one_key_learns_which_sets_use_it(sandbox, azure_as):
    sandbox.reset("estate")
    key = rid(sandbox, RG["keys"], "Microsoft.KeyVault/vaults", "kv-weu-disks/keys/des-key")
    reading = read_resource(azure_as("reader"), key, ALL)
    (body,) = reading.resources.values()
    assert [s.rsplit("/", 1)[-1] for s in body["cryptward"]["diskEncryptionSets"]] == ["des-weu"]


def test_one_disk_reads_its_vm(sandbox, azure_as):
    sandbox.reset("estate")
    disk = rid(sandbox, RG["app"], "Microsoft.Compute/disks", "disk-weu-app-os")
    reading = read_resource(azure_as("reader"), disk, ALL)
    assert list(reading.resources) == [disk]
    vm = reading.related[reading.resources[disk]["managedBy"].lower()]
    assert vm["cryptward"]["powerState"] == "PowerState/running"


def test_one_unreadable_resource_is_a_stub_with_the_reason(sandbox, azure_as):
    sandbox.reset("estate")
    vault = rid(sandbox, RG["app"], "Microsoft.KeyVault/vaults", "kv-weu-app")
    reading = read_resource(azure_as("intruder"), vault, ALL)
    assert reading.resources == {vault: {"id": vault, "type": "Microsoft.KeyVault/vaults"}}
    assert reading.unreadable[vault.lower()][""].startswith("AuthorizationFailed")


# --- the verdicts (pure) ---------------------------------------------------------------------------------------------

GROUP = "/subscriptions/s/resourceGroups/rg"
VAULT = f"{GROUP}/providers/Microsoft.KeyVault/vaults/kv"
LOCKS = [
    {"id": "/subscriptions/s/providers/Microsoft.Authorization/locks/on-sub"},
    {"id": f"{GROUP}/providers/Microsoft.Authorization/locks/on-group"},
    {"id": f"{VAULT}/providers/Microsoft.Authorization/locks/on-vault"},
    {"id": f"{VAULT}/keys/k/providers/Microsoft.Authorization/locks/on-key"},
    {"id": "/subscriptions/s/resourceGroups/other/providers/Microsoft.Authorization/locks/elsewhere"},
]


@pytest.mark.parametrize(
    ("resource_id", "names"),
    [
        (VAULT, ["on-sub", "on-group", "on-vault"]),
        (f"{VAULT}/keys/k", ["on-sub", "on-group", "on-vault", "on-key"]),
        (f"{GROUP}/providers/Microsoft.Compute/disks/d", ["on-sub", "on-group"]),
    ],
)
def test_a_resource_gets_the_locks_at_its_scope_and_above(resource_id, names):
    block = lock_block(LOCKS, None, resource_id)
    assert isinstance(block, list) and [lock["id"].rsplit("/", 1)[1] for lock in block] == names


def test_locks_not_listed_leave_the_block_unfilled_with_the_reason():
    error = AzureAccessError(403, "AuthorizationFailed", "no")
    assert lock_block(None, error, VAULT) is error
    assert lock_block(None, None, VAULT) == "the locks were not listed"
    assert lock_block([], error, VAULT) == []


@pytest.mark.parametrize(
    ("vm", "ade", "block"),
    [
        ({"id": "/vm/A"}, set(), {}),
        ({"id": "/vm/A"}, {"/vm/a"}, {"adeHistory": True}),
        (
            {
                "id": "/vm/A",
                "properties": {
                    "instanceView": {
                        "statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}]
                    }
                },
                "resources": [{"name": "AzureDiskEncryption"}],
            },
            set(),
            {"powerState": "PowerState/running", "extensions": [{"name": "AzureDiskEncryption"}]},
        ),
    ],
)
def test_what_a_vm_body_says_of_itself(vm, ade, block):
    assert vm_block(vm, ade) == block
