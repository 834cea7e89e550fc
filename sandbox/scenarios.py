"""Named scenarios the sandbox can be seeded with (`python -m sandbox seed NAME`, POST /_sandbox/seed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sandbox.state import DEFAULT_SUBSCRIPTION

if TYPE_CHECKING:
    from sandbox.server import Sandbox

SCENARIOS: dict[str, Callable[[Sandbox], dict[str, Any]]] = {}


def scenario(name: str) -> Callable[[Callable[[Sandbox], dict[str, Any]]], Callable[[Sandbox], dict[str, Any]]]:
    def deco(fn: Callable[[Sandbox], dict[str, Any]]) -> Callable[[Sandbox], dict[str, Any]]:
        SCENARIOS[name] = fn
        return fn

    return deco


def seed(sb: Sandbox, name: str) -> dict[str, Any]:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid: {sorted(SCENARIOS)}")
    made = {"scenario": name, **SCENARIOS[name](sb)}
    for fn in sb.hooks.seeded:
        fn(sb, name)
    return made


def add_subscription(sb: Sandbox, sub_id: str, name: str) -> dict[str, Any]:
    body = {
        "id": f"/subscriptions/{sub_id}",
        "authorizationSource": "RoleBased",
        "subscriptionId": sub_id,
        "tenantId": sb.state.tenant_id,
        "displayName": name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "managedByTenants": [],
        "tags": {},
    }
    sb.state.subscriptions[sub_id.lower()] = body
    return body


def custom_role(doc: Mapping[str, Any], subscription: str) -> dict[str, Any]:
    """The PUT body of a custom role made from a role document of infra/ (roleName, description, actions,
    notActions, dataActions, notDataActions), assignable in `subscription`."""
    return {
        "properties": {
            "roleName": doc["roleName"],
            "description": doc["description"],
            "type": "CustomRole",
            "permissions": [{k: doc[k] for k in ("actions", "notActions", "dataActions", "notDataActions")}],
            "assignableScopes": [f"/subscriptions/{subscription}"],
        }
    }


def assign(sb: Sandbox, scope: str, principal: Any, role_guid: str) -> dict[str, Any]:
    """A role assignment written straight into state (scenarios only; the API path is authorization.py)."""
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal.object_id}|{role_guid}".lower()))
    sub = scope.split("/")[2] if scope.startswith("/subscriptions/") else DEFAULT_SUBSCRIPTION
    body = {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
            "principalId": principal.object_id,
            "principalType": principal.kind,
            "scope": scope,
            "createdOn": sb.state.clock.iso(),
            "updatedOn": sb.state.clock.iso(),
            "createdBy": None,
            "updatedBy": None,
            "condition": None,
            "conditionVersion": None,
            "description": None,
            "delegatedManagedIdentityResourceId": None,
        },
    }
    return sb.state.put(body)


@scenario("empty")
def empty(sb: Sandbox) -> dict[str, Any]:
    """One subscription; the administrator is Owner, the reader Reader; the bot has no role yet."""
    from sandbox.rbac import ROLES

    sub = add_subscription(sb, DEFAULT_SUBSCRIPTION, "Contoso Production")
    d = sb.directory
    assign(sb, sub["id"], d.named("admin"), ROLES["Owner"])
    assign(sb, sub["id"], d.named("reader"), ROLES["Reader"])
    return {"subscriptions": [DEFAULT_SUBSCRIPTION]}


def arm(sb: Sandbox, method: str, path: str, body: Any = None, *, api_version: str, who: str = "admin") -> Any:
    """One ARM request made inside the sandbox as a named principal, through the same handler HTTP requests use:
    validation, RBAC, locks and the operations log all apply. Returns the answer body; raises ArmError."""
    from sandbox import arm as core

    principal = sb.directory.named(who)
    path_info = core.parse_path(path, method)
    rt = core.lookup(path_info)
    call = core.Call(
        state=sb.state,
        path=path_info,
        method=method,
        base_url=sb.base_url,
        url=f"{sb.base_url}{path}?api-version={api_version}",
        api_version=core.check_api_version(rt, path_info, api_version),
        query={"api-version": api_version},
        principal=principal,
        claims=sb.directory.claims(principal),
        correlation_id=str(uuid.uuid4()),
        body=body,
        sandbox=sb,
    )
    answer = sb.handle(call, rt)
    if answer.status == 202 and method in ("PUT", "PATCH"):
        return sb.state.get(path_info.id)
    return answer.body


KV_API, COMPUTE_API, VM_API, RES_API = "2026-05-15", "2026-03-02", "2026-04-01", "2025-04-01"
REGIONS = ("westeurope", "northeurope")


MADE = ("vaults", "keys", "diskEncryptionSets", "disks", "virtualMachines")
Answers = dict[str, Any]  # the answer to each step so far, by path


@dataclass(frozen=True)
class Step:
    """One ARM request of a scenario, made as the administrator. `body` may be a function of the answers so far
    (a key's versioned URL is known once the key exists); `made` names the list of the result the path goes into;
    `facts` are sandbox-only facts to set on the resource once it exists (`/_sandbox/meta`)."""

    method: str
    path: str
    api_version: str
    body: Any = None
    made: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def play(sb: Sandbox, steps: list[Step]) -> dict[str, list[str]]:
    """Make each step's request in order, through the same handler HTTP requests use; the paths made, by kind."""
    answers: Answers = {}
    made: dict[str, list[str]] = {kind: [] for kind in MADE}
    for step in steps:
        body = step.body(answers) if callable(step.body) else step.body
        answers[step.path] = arm(sb, step.method, step.path, body, api_version=step.api_version)
        if step.made:
            made[step.made].append(step.path)
        if step.facts:
            sb.state.meta_of(step.path).update(step.facts)
    return made


@scenario("estate")
def estate(sb: Sandbox) -> dict[str, Any]:
    """A realistic, non-compliant estate across two regions (on top of `empty`): what the demo and the end-to-end
    tests remediate. Every resource is created through ARM as the administrator, so the operations log (and the
    events made from it) shows how it came to be."""
    if not sb.state.subscriptions:
        empty(sb)
    shared_keys(sb)
    sub = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"
    admin = sb.directory.named("admin").object_id
    made = play(sb, [*estate_steps(sub, sb.state.tenant_id, admin), *central_key_steps(sub, sb.state.tenant_id)])
    scenarios_compute.play_estate(sb, sub, KEYS_SUBSCRIPTION)  # scale sets, a snapshot, an image (issue 20)
    # Keys past their rotation age: the sandbox clock cannot run backwards, so the key versions are backdated.
    for entry in sb.state.table("keyvault.keys").values():
        for version in entry["versions"]:
            version["attributes"]["created"] -= 120 * 86400
            version["attributes"]["updated"] -= 120 * 86400
    # ... and the EncryptionAtHost feature finished registering before Microsoft.Compute was registered again.
    for entry in sb.state.table("features").values():
        if isinstance(entry, dict) and entry.get("state") == "Registering":
            entry["readyAt"] -= 86400
    return {"subscriptions": [DEFAULT_SUBSCRIPTION, KEYS_SUBSCRIPTION], **made}


KEYS_SUBSCRIPTION = "00000000-0000-4000-8000-0000000c0de2"


def shared_keys(sb: Sandbox) -> None:
    """A second subscription holding a central key vault: the administrator is Owner, the reader and the bot are
    Readers (the bot reads a vault serving a set in its scope; it writes nothing there)."""
    from sandbox.rbac import ROLES

    sub = add_subscription(sb, KEYS_SUBSCRIPTION, "Contoso Shared Keys")
    d = sb.directory
    assign(sb, sub["id"], d.named("admin"), ROLES["Owner"])
    for name in ("reader", "bot"):
        assign(sb, sub["id"], d.named(name), ROLES["Reader"])


def central_key_steps(sub: str, tenant: str) -> list[Step]:
    """A central vault (purge protection on, RBAC) in the shared-keys subscription, in West Europe, and a set of the
    estate using its key by key URL alone: Microsoft allows a vault of another subscription in the set's region
    (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions), and DiskRP's example sends no
    sourceVault for it (DiskEncryptionSet_Create_WithKeyVaultFromADifferentSubscription.json)."""
    group = f"/subscriptions/{KEYS_SUBSCRIPTION}/resourceGroups/rg-keys-central"
    vault = _vault_id(group, "kv-central-keys")

    def body(answers: Answers) -> dict[str, Any]:
        key_url = answers[f"{vault}/keys/central-key"]["properties"]["keyUriWithVersion"]
        return {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {"encryptionType": "EncryptionAtRestWithCustomerKey", "activeKey": {"keyUrl": key_url}},
        }

    des = f"{sub}/resourceGroups/rg-keys-weu/providers/Microsoft.Compute/diskEncryptionSets/des-weu-central"
    return [
        _group(group, "westeurope"),
        _vault(group, "kv-central-keys", "westeurope", tenant, enablePurgeProtection=True),
        _key(vault, "central-key"),
        Step("PUT", des, COMPUTE_API, body, made="diskEncryptionSets"),
    ]


def estate_steps(sub: str, tenant: str, admin_object_id: str) -> list[Step]:
    """The estate's requests, in order: groups and a workspace, vaults and keys, a DES, disks, VMs."""
    groups = {name: f"{sub}/resourceGroups/{name}" for name in ("rg-ops", "rg-app-weu", "rg-app-neu", "rg-keys-weu")}
    workspace = f"{groups['rg-ops']}/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
    law = {"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}
    return [
        _group(groups["rg-ops"], "westeurope"),
        Step("PUT", workspace, "2023-09-01", law),
        _group(groups["rg-app-weu"], "westeurope"),
        _group(groups["rg-app-neu"], "northeurope"),
        _group(groups["rg-keys-weu"], "westeurope"),
        *_vaults_and_keys(groups, tenant, admin_object_id),
        *_disk_encryption_set(groups["rg-keys-weu"]),
        *_disks(groups),
        *_vms(groups),
        *_encryption_at_host_feature(sub),
    ]


def _encryption_at_host_feature(sub: str) -> list[Step]:
    """The administrator enabled encryption at host for the subscription (Microsoft Learn's prerequisite: register the
    Microsoft.Compute/EncryptionAtHost feature, then Microsoft.Compute again so that it propagates)."""
    feature = f"{sub}/providers/Microsoft.Features/providers/Microsoft.Compute/features/EncryptionAtHost"
    return [
        Step("POST", f"{feature}/register", "2021-07-01"),
        Step("POST", f"{sub}/providers/Microsoft.Compute/register", RES_API),
    ]


def _group(path: str, location: str) -> Step:
    return Step("PUT", path, RES_API, {"location": location})


def _vaults_and_keys(groups: dict[str, str], tenant: str, admin_object_id: str) -> list[Step]:
    """One vault with nothing (no purge protection, lock, tags, diagnostics), one on access policies with public
    access, and the disk-encryption vault without purge protection that a DES uses, with two keys."""
    admin = {"tenantId": tenant, "objectId": admin_object_id, "permissions": {"keys": ["all"], "secrets": ["all"]}}
    legacy = {"enableRbacAuthorization": False, "accessPolicies": [admin]}
    disks_vault = _vault_id(groups["rg-keys-weu"], "kv-weu-disks")
    return [
        _vault(groups["rg-app-weu"], "kv-weu-app", "westeurope", tenant),
        _vault(groups["rg-app-neu"], "kv-neu-legacy", "northeurope", tenant, **legacy),
        _vault(groups["rg-keys-weu"], "kv-weu-disks", "westeurope", tenant, enabledForDiskEncryption=True),
        _key(disks_vault, "des-key"),
        _key(disks_vault, "short-key", size=2048),
    ]


def _vault_id(group: str, name: str) -> str:
    return f"{group}/providers/Microsoft.KeyVault/vaults/{name}"


def _vault(group: str, name: str, location: str, tenant: str, **props: Any) -> Step:
    base = {"tenantId": tenant, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []}
    body = {"location": location, "properties": base | props}
    return Step("PUT", _vault_id(group, name), KV_API, body, made="vaults")


def _key(vault_id: str, name: str, size: int = 2048, kty: str = "RSA") -> Step:
    return Step("PUT", f"{vault_id}/keys/{name}", KV_API, {"properties": {"kty": kty, "keySize": size}}, made="keys")


def _disk_encryption_set(keys_group: str) -> list[Step]:
    """A DES without auto-rotation whose vault lacks purge protection; its identity has no access to the key yet."""
    vault = _vault_id(keys_group, "kv-weu-disks")

    def body(answers: Answers) -> dict[str, Any]:
        key_url = answers[f"{vault}/keys/des-key"]["properties"]["keyUriWithVersion"]
        return {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"sourceVault": {"id": vault}, "keyUrl": key_url},
            },
        }

    des = f"{keys_group}/providers/Microsoft.Compute/diskEncryptionSets/des-weu"
    return [Step("PUT", des, COMPUTE_API, body, made="diskEncryptionSets")]


def _disks(groups: dict[str, str]) -> list[Step]:
    """Disks on platform keys: unattached, on a running VM, on a deallocated VM; one that had ADE; one in the region
    without a DES. Azure keeps encryptionSettingsCollection (enabled false) on a disk that was encrypted with ADE and
    later decrypted, which is how the bot can tell; the sandbox also remembers the history."""
    weu, neu = groups["rg-app-weu"], groups["rg-app-neu"]
    ade = {"encryptionSettingsCollection": {"enabled": False, "encryptionSettingsVersion": "1.1"}}
    return [
        _disk(weu, "disk-weu-data", "westeurope"),
        _disk(weu, "disk-weu-app-os", "westeurope", 32, osType="Linux"),
        _disk(weu, "disk-weu-app-data", "westeurope"),
        _disk(weu, "disk-weu-batch-os", "westeurope", 32, osType="Linux"),
        replace(_disk(weu, "disk-weu-ade", "westeurope", **ade), facts={"everHadADE": True}),
        _disk(weu, "disk-weu-adevm-os", "westeurope", 32, osType="Linux"),
        _disk(neu, "disk-neu-data", "northeurope"),
    ]


def _disk_id(group: str, name: str) -> str:
    return f"{group}/providers/Microsoft.Compute/disks/{name}"


def _disk(group: str, name: str, location: str, size: int = 64, **props: Any) -> Step:
    body = {
        "location": location,
        "sku": {"name": "Premium_LRS"},
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size} | props,
    }
    return Step("PUT", _disk_id(group, name), COMPUTE_API, body, made="disks")


def _vms(groups: dict[str, str]) -> list[Step]:
    """A running VM, a deallocated one, and a legacy VM on an unmanaged VHD of a series that cannot use encryption
    at host."""
    weu, neu = groups["rg-app-weu"], groups["rg-app-neu"]
    legacy_os = {
        "osType": "Linux",
        "name": "legacy-os",
        "createOption": "Attach",
        "vhd": {"uri": "https://legacystore.blob.core.windows.net/vhds/legacy-os.vhd"},
    }
    app_os, app_data = _disk_id(weu, "disk-weu-app-os"), _disk_id(weu, "disk-weu-app-data")
    batch = _vm(weu, "vm-weu-batch", "westeurope", "Standard_E4s_v5", _disk_id(weu, "disk-weu-batch-os"), [])
    return [
        _vm(weu, "vm-weu-app", "westeurope", "Standard_D4s_v5", app_os, [app_data]),
        batch,
        Step("POST", f"{batch.path}/deallocate", VM_API),
        _vm(neu, "vm-neu-legacy", "northeurope", "Standard_D2_v3", None, [], storageProfile={"osDisk": legacy_os}),
        *_ade_vm(weu, groups["rg-app-weu"]),
    ]


def _ade_vm(group: str, app_group: str) -> list[Step]:
    """A VM encrypted with Azure Disk Encryption whose extension names key vault kv-weu-app, which is not enabled
    for disk encryption (vm-ade-key-vault). The settings are those `az vm encryption enable` sends (a recorded answer:
    tests/conformance/recordings/extensions/cli-vm-extension-get-ade-2024-11-01.json)."""
    vm = _vm(group, "vm-weu-ade", "westeurope", "Standard_D4s_v5", _disk_id(group, "disk-weu-adevm-os"), [])
    vault = _vault_id(app_group, "kv-weu-app")
    settings = {
        "KeyVaultURL": "https://kv-weu-app.vault.azure.net/",
        "VolumeType": "Data",
        "EncryptionOperation": "EnableEncryption",
        "KeyEncryptionKeyURL": None,
        "KeyEncryptionAlgorithm": "RSA-OAEP",
        "KeyVaultResourceId": vault,
        "KekVaultResourceId": "",
    }
    props = {
        "publisher": "Microsoft.Azure.Security",
        "type": "AzureDiskEncryptionForLinux",
        "typeHandlerVersion": "1.1",
    }
    ext = {"location": "westeurope", "properties": props | {"autoUpgradeMinorVersion": True, "settings": settings}}
    return [vm, Step("PUT", f"{vm.path}/extensions/AzureDiskEncryptionForLinux", VM_API, ext)]


def _vm(group: str, name: str, location: str, size: str, os_disk: str | None, data: list[str], **extra: Any) -> Step:
    storage: dict[str, Any] = {
        "dataDisks": [{"lun": i, "createOption": "Attach", "managedDisk": {"id": d}} for i, d in enumerate(data)]
    }
    if os_disk:
        storage["osDisk"] = {"osType": "Linux", "createOption": "Attach", "managedDisk": {"id": os_disk}}
    body = {
        "location": location,
        "properties": {"hardwareProfile": {"vmSize": size}, "storageProfile": storage} | extra,
    }
    path = f"{group}/providers/Microsoft.Compute/virtualMachines/{name}"
    return Step("PUT", path, VM_API, body, made="virtualMachines")


# scenarios_legacy registers the "legacy" scenario; scenarios_compute gives the estate its scale sets (issue 20)
from sandbox import scenarios_compute, scenarios_legacy  # noqa: E402, F401
