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
KEYS_SUB = "00000000-0000-4000-8000-0000000c0de2"  # the estate's shared-keys subscription


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
    plan = vault.pop("defenderForKeyVault")  # the subscription's plan: off (Free) until someone turns it on
    assert (plan["name"], plan["properties"]["pricingTier"]) == ("KeyVaults", "Free")
    assert vault.pop("activityLogAlerts") == []  # the estate has no alert rules
    assert vault == {"locks": [], "diagnosticSettings": [], "encryptionSets": []}
    des = found["des-weu"]["cryptward"]
    assert des["keyVault"]["name"] == "kv-weu-disks" and "cryptward" not in des["keyVault"]
    assert des["keyVaultRoleAssignments"] == []
    principal = found["des-weu"]["identity"]["principalId"].lower()
    key_id = f"{des['keyVault']['id']}/keys/des-key"
    assert des["keyAccess"] == {"model": "rbac", "keyScope": key_id, "principals": [principal], "missing": [principal]}
    (user,) = found["kv-weu-disks"]["cryptward"]["encryptionSets"]  # what switching that vault would cut off
    assert (user["id"], user["principals"], user["keyRoles"]) == (found["des-weu"]["id"], [principal], [])
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
        "microsoft.compute/snapshots",
        "microsoft.compute/virtualmachines",
        "microsoft.authorization/locks",
        "microsoft.authorization/roleassignments",
    ]
    for kind in lists:
        # VMs: the model list, then `statusOnly=true` for the power states (a list may not expand instanceView)
        assert paths.count(f"{sub}/providers/{kind}") == (2 if kind.endswith("virtualmachines") else 1), kind
    diagnostics = [p for p in paths if p.endswith("/providers/microsoft.insights/diagnosticsettings")]
    keys = [p for p in paths if "/keys/" in p and "/providers/microsoft.authorization/" not in p]
    assert len(diagnostics) == 3  # one per vault: ARM has no cross-resource list of diagnostic settings
    # the keys' management-plane GETs show no rotation policy (they have none): the data plane is asked for the one
    # in scope (central-key's vault is outside it: read, not evaluated)
    named = sorted(p.rsplit("/", 2)[-2] if p.endswith("/rotationpolicy") else p.rsplit("/", 1)[-1] for p in keys)
    assert named == ["central-key", "des-key", "des-key"]
    # des-weu-central's vault is in another subscription: the subscriptions and that one's vaults are listed once,
    # and the role assignments at its key (outside the listed scope) once
    other = f"/subscriptions/{KEYS_SUB}/providers/microsoft.keyvault/vaults"
    assert (paths.count("/subscriptions"), paths.count(other)) == (1, 1)
    skus = [p for p in paths if p.endswith("/providers/microsoft.compute/skus")]
    assert len(skus) == 2  # the VM sizes' capabilities: one list per region (westeurope, northeurope)
    features = [p for p in paths if p.endswith("/features/encryptionathost")]
    assert len(features) == 1  # the subscription's EncryptionAtHost feature, once
    extensions = [p for p in paths if "/extensions/" in p]
    assert extensions == [p for p in paths if p.endswith("/vm-weu-ade/extensions/azurediskencryptionforlinux")]
    assert len(extensions) == 1  # a list names the ADE extension by id only: its settings name the vault
    # once for the subscription's 3 vaults: its Defender plan and its activity-log alert rules
    subscription_reads = [p for p in paths if "microsoft.security/" in p or "microsoft.insights/activitylogalerts" in p]
    assert sorted(subscription_reads) == [
        f"{sub}/providers/microsoft.insights/activitylogalerts",
        f"{sub}/providers/microsoft.security/pricings/keyvaults",
    ]
    # lists (VMs twice: the models, then statusOnly), diagnostic settings, keys (and their rotation policies), the
    # scale sets and images: one list each, then each scale set's instances (engine/scalesets.py); snapshots come
    # from the disks' list
    extra = [f"{sub}/providers/microsoft.compute/{kind}" for kind in ("virtualmachinescalesets", "images")]
    assert [paths.count(p) for p in extra] == [1, 1]
    instances = [p for p in paths if p.endswith("/virtualmachines") and "/virtualmachinescalesets/" in p]
    assert len(instances) == 2
    # lists (VMs twice: the models, then statusOnly), diagnostic settings, keys (and their rotation policies), the
    # other subscription, its key's role assignments (once per set using it: des-weu-central, des-weu-golden), SKUs,
    # the feature, the ADE extension (its vault was listed), the plan and the alert rules, then scale sets, images
    # and the scale sets' instances
    assert len(paths) == len(lists) + 1 + 3 + 3 + 2 + 2 + 2 + 1 + 1 + 2 + 2 + 2 == azure.calls["GET"]


def test_a_sets_vault_in_another_subscription_is_found_from_its_key_url(sandbox, azure_as, grant_custom_role):
    """DiskRP answers a set whose vault is in another subscription with its key URL alone (no sourceVault)."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)  # Reader on the keys subscription
    found = by_name(reading)
    central = found["des-weu-central"]
    assert "sourceVault" not in central["properties"]["activeKey"]
    assert central["cryptward"]["keyVault"]["name"] == "kv-central-keys"
    assert central["cryptward"]["keyVault"]["id"].split("/")[2] == KEYS_SUB
    assert "kv-central-keys" not in found  # read, not evaluated: it is outside the scope
    key = reading.related[f"{central['cryptward']['keyVault']['id']}/keys/central-key".lower()]
    # des-weu-golden (sandbox/scenarios_compute.py) uses the central key too
    assert sorted(s.rsplit("/", 1)[-1] for s in key["cryptward"]["diskEncryptionSets"]) == [
        "des-weu-central",
        "des-weu-golden",
    ]
    one = read_resource(azure_as("bot"), central["id"], ALL)
    assert one.resources[central["id"]]["cryptward"]["keyVault"]["name"] == "kv-central-keys"


def test_a_sets_vault_no_subscription_shows_is_recorded_as_unreadable(sandbox, azure_as, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("vault-owner")  # the bot's role, in the estate's subscription only
    reading = read_scope(azure_as("vault-owner"), Scope((sandbox.subscription_id,)), ALL)
    central = by_name(reading)["des-weu-central"]
    assert "keyVault" not in central.get("cryptward", {})
    assert "no key vault Cryptward can read serves" in reading.unreadable[central["id"].lower()]["keyvault"]


def test_a_disks_incremental_snapshots_are_read_with_the_disks(sandbox, azure_as):
    """A disk and its incremental snapshots must keep one disk encryption set (Learn disk-encryption#restrictions):
    disk-cmk needs to know them. One list per scope; a disk event lists its group's."""
    from azure.mgmt.compute import ComputeManagementClient

    sandbox.reset("estate")
    disk = rid(sandbox, RG["app"], "Microsoft.Compute/disks", "disk-weu-data")
    snapshots = sandbox.client(ComputeManagementClient).snapshots
    for name, incremental in (("snap-inc", True), ("snap-full", False)):
        body = {"creationData": {"createOption": "Copy", "sourceResourceId": disk}, "incremental": incremental}
        snapshots.begin_create_or_update(RG["app"], name, {"location": "westeurope", "properties": body}).result()
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,)), ALL)
    found = by_name(reading)
    inc = rid(sandbox, RG["app"], "Microsoft.Compute/snapshots", "snap-inc")
    assert found["disk-weu-data"]["cryptward"]["incrementalSnapshots"] == [inc]
    assert found["disk-weu-app-data"]["cryptward"]["incrementalSnapshots"] == []
    one = read_resource(azure_as("reader"), disk, ALL)
    assert one.resources[disk]["cryptward"]["incrementalSnapshots"] == [inc]


def test_disks_whose_snapshots_cannot_be_listed_cannot_be_fixed(sandbox, azure_as, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Compute/snapshots/read"])
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)
    disk = by_name(reading)["disk-weu-data"]
    assert "incrementalSnapshots" not in disk["cryptward"]
    assert reading.unreadable[disk["id"].lower()]["related"].startswith("AuthorizationFailed")


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
    # no statusOnly list for a group (it would read the whole subscription): one instance view per VM
    assert by_name(reading)["vm-weu-app"]["cryptward"]["powerState"] == "PowerState/running"


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
    block = reading.resources[vault]["cryptward"]
    assert block.pop("defenderForKeyVault")["properties"]["pricingTier"] == "Free"  # its subscription's plan
    assert block.pop("activityLogAlerts") == []
    assert block == {"locks": [], "diagnosticSettings": [], "encryptionSets": []}
    # and the list of the subscription's disk encryption sets (which use the vault), its plan and its alert rules
    assert azure.calls["GET"] == 6


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
        (  # a VM list names the extensions by id only: the block gives each its name
            {"id": "/vm/A", "resources": [{"id": "/vm/A/extensions/AzureDiskEncryptionForLinux"}]},
            set(),
            {
                "extensions": [
                    {"id": "/vm/A/extensions/AzureDiskEncryptionForLinux", "name": "AzureDiskEncryptionForLinux"}
                ]
            },
        ),
    ],
)
def test_what_a_vm_body_says_of_itself(vm, ade, block):
    assert vm_block(vm, ade) == block


def test_a_sweep_reads_each_vm_sizes_capabilities_from_azure_once_per_region(sandbox, azure_as):
    sandbox.reset("estate")
    since = len(sandbox.calls())
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,)), ALL)
    vms = [b for b in reading.resources.values() if b["type"] == "Microsoft.Compute/virtualMachines"]
    regions = {vm["location"] for vm in vms}
    sku_lists = [c for c in sandbox.calls(since) if c["path"].lower().endswith("/providers/microsoft.compute/skus")]
    assert len(sku_lists) == len(regions) < len(vms)  # cached per region
    for vm in vms:
        assert vm["cryptward"]["encryptionAtHostFeature"]["state"] == "Registered"  # the estate registered it
        caps = vm["cryptward"]["skuCapabilities"]
        assert caps["EncryptionAtHostSupported"] in ("True", "False") and caps["vCPUs"]


def test_sizes_whose_capabilities_cannot_be_read_say_why(sandbox, azure_as, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Compute/skus/read"])
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)
    vm = by_name(reading)["vm-weu-app"]["cryptward"]
    assert "skuCapabilities" not in vm and vm["skuUnreadable"].startswith("AuthorizationFailed")


# --- pace and parallel reads -----------------------------------------------------------------------------------------


def test_a_sweep_paces_its_reads_to_the_read_budget_and_meets_no_429(sandbox, azure_as):
    """With a small bucket (10 reads, refilled 30 a second: ARM's refill is 25), 40 vaults' diagnostic settings
    read 8 at a time would run into 429s; paced by the remaining-reads header they never do, and all are read."""
    sandbox.reset("estate")
    from azure.mgmt.keyvault import KeyVaultManagementClient

    kv = sandbox.client(KeyVaultManagementClient)
    sku = {"family": "A", "name": "standard"}
    body = {"location": "westeurope", "properties": {"tenantId": sandbox.tenant_id, "sku": sku}}
    for i in range(40):
        kv.vaults.begin_create_or_update(RG["app"], f"kv-paced-{i:02}", body).result()
    sandbox.admin("PATCH", "/_sandbox/settings", {"read_budget": 10, "read_refill": 30.0})
    try:
        azure = azure_as("reader")
        since = len(sandbox.calls())
        reading = read_scope(azure, Scope((sandbox.subscription_id,)), ALL)
        reads = [c for c in sandbox.calls(since) if c["plane"] == "arm" and c["method"] == "GET"]
    finally:
        sandbox.admin("PATCH", "/_sandbox/settings", {"read_budget": 250, "read_refill": 25.0})
    assert [c for c in reads if c["status"] == 429] == []
    vaults = [b for b in reading.resources.values() if b["type"] == "Microsoft.KeyVault/vaults"]
    assert len(vaults) == 43 and all("diagnosticSettings" in v["cryptward"] for v in vaults)
    assert azure.budget.waited > 0  # it did wait for the refill


def test_two_subscriptions_are_read_together_each_with_its_own_lists(sandbox, azure_as):
    """The subscriptions of a scope are listed in parallel: every vault of both, each with its own locks."""
    from azure.mgmt.keyvault import KeyVaultManagementClient
    from azure.mgmt.resource.locks import ManagementLockClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    from sandbox.rbac import ROLES
    from sandbox.scenarios import add_subscription, assign
    from sandbox.state import SECOND_SUBSCRIPTION

    sandbox.reset("estate")
    sb = sandbox.running.sandbox
    add_subscription(sb, SECOND_SUBSCRIPTION, "Contoso Test")
    for who, role in (("admin", "Owner"), ("reader", "Reader")):
        assign(sb, f"/subscriptions/{SECOND_SUBSCRIPTION}", sb.directory.named(who), ROLES[role])

    def client(cls):
        return cls(sandbox.credential(), SECOND_SUBSCRIPTION, base_url=sandbox.base_url, connection_verify=sandbox.ca)

    client(ResourceManagementClient).resource_groups.create_or_update("rg-two", {"location": "westeurope"})
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    client(KeyVaultManagementClient).vaults.begin_create_or_update(
        "rg-two", "kv-two", {"location": "westeurope", "properties": props}
    ).result()
    client(ManagementLockClient).management_locks.create_or_update_at_resource_group_level(
        "rg-two", "keep-two", {"level": "CanNotDelete"}
    )
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id, SECOND_SUBSCRIPTION)), ALL)
    found = by_name(reading)
    assert {"kv-weu-app", "kv-weu-disks", "kv-neu-legacy", "kv-two"} <= set(found)
    assert [lock["name"] for lock in found["kv-two"]["cryptward"]["locks"]] == ["keep-two"]
    assert found["kv-weu-app"]["cryptward"]["locks"] == []
    assert "diagnosticSettings" in found["kv-two"]["cryptward"]


def test_a_vms_ade_vault_is_read_from_its_extensions_settings(sandbox, azure_as, grant_custom_role):
    """vm-weu-ade's ADE extension names kv-weu-app (KeyVaultResourceId): the VM's block says what the vault says."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)
    found = by_name(reading)
    block = found["vm-weu-ade"]["cryptward"]["adeKeyVault"]
    assert (block["name"], block["location"], block["properties"]) == (
        "kv-weu-app",
        "westeurope",
        {"enabledForDiskEncryption": None},
    )
    assert "adeKeyVault" not in found["vm-weu-app"]["cryptward"]  # no ADE: no block, nothing to say


def test_an_unreadable_ade_extension_decides_nothing(sandbox, azure_as, grant_custom_role):
    """Without extensions/read the VM's vault is unknown: recorded as unreadable, never guessed."""
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Compute/virtualMachines/extensions/read"])
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)
    vm = next(rid for rid in reading.resources if rid.endswith("/vm-weu-ade"))
    assert "adeKeyVault" not in reading.resources[vm]["cryptward"]
    assert "authorization" in reading.reasons(vm)["adekeyvault"].lower()


def test_one_subscriptions_spent_budget_does_not_slow_another(sandbox, azure_as):
    """ARM's read buckets are per subscription and principal: with a small bucket (12 reads, slow refill), the
    first subscription's reads spend its bucket, and the second's go on at once (no wait, no 429)."""
    from sandbox.rbac import ROLES
    from sandbox.scenarios import add_subscription, assign
    from sandbox.state import SECOND_SUBSCRIPTION

    sandbox.reset("estate")
    sb, first = sandbox.running.sandbox, sandbox.subscription_id
    add_subscription(sb, SECOND_SUBSCRIPTION, "Contoso Test")
    assign(sb, f"/subscriptions/{SECOND_SUBSCRIPTION}", sb.directory.named("reader"), ROLES["Reader"])
    azure = azure_as("reader")
    sandbox.admin("PATCH", "/_sandbox/settings", {"read_budget": 12, "read_refill": 0.1})
    try:
        since = len(sandbox.calls())
        for _ in range(12):  # the first subscription's bucket, spent
            azure.get(f"/subscriptions/{first}/resourcegroups", "2025-04-01")
        spent = azure.budget._buckets[f"subscription:{first}"]
        assert spent.tokens < 1  # this side's copy knows: a next read here would wait
        waited = azure.budget.waited
        for _ in range(10):
            azure.get(f"/subscriptions/{SECOND_SUBSCRIPTION}/resourcegroups", "2025-04-01")
        assert azure.budget.waited == waited  # the second subscription's reads did not wait
        calls = [c for c in sandbox.calls(since) if c["plane"] == "arm"]
    finally:
        sandbox.admin("PATCH", "/_sandbox/settings", {"read_budget": 250, "read_refill": 25.0})
    assert [c for c in calls if c["status"] == 429] == []
    assert len([c for c in calls if SECOND_SUBSCRIPTION in c["path"]]) == 10
