"""Named scenarios the sandbox can be seeded with (`python -m sandbox seed NAME`, POST /_sandbox/seed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
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
    return {"scenario": name, **SCENARIOS[name](sb)}


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


@scenario("estate")
def estate(sb: Sandbox) -> dict[str, Any]:
    """A realistic, non-compliant estate across two regions (on top of `empty`): what the demo and the end-to-end
    tests remediate. Every resource is created through ARM as the administrator, so the operations log (and the
    events made from it) shows how it came to be."""
    if not sb.state.subscriptions:
        empty(sb)
    sub = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"
    tenant = sb.state.tenant_id
    admin = sb.directory.named("admin")
    made: dict[str, list[str]] = {
        "vaults": [],
        "keys": [],
        "diskEncryptionSets": [],
        "disks": [],
        "virtualMachines": [],
    }

    def rg(name: str, location: str) -> str:
        arm(sb, "PUT", f"{sub}/resourceGroups/{name}", {"location": location}, api_version=RES_API)
        return f"{sub}/resourceGroups/{name}"

    def vault(group: str, name: str, location: str, **props: Any) -> str:
        body = {
            "location": location,
            "properties": {"tenantId": tenant, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []}
            | props,
        }
        arm(sb, "PUT", f"{group}/providers/Microsoft.KeyVault/vaults/{name}", body, api_version=KV_API)
        made["vaults"].append(f"{group}/providers/Microsoft.KeyVault/vaults/{name}")
        return made["vaults"][-1]

    def key(vault_id: str, name: str, size: int = 2048, kty: str = "RSA") -> dict[str, Any]:
        body = {"properties": {"kty": kty, "keySize": size}}
        out = arm(sb, "PUT", f"{vault_id}/keys/{name}", body, api_version=KV_API)
        made["keys"].append(f"{vault_id}/keys/{name}")
        return dict(out)

    def disk(group: str, name: str, location: str, size: int = 64, **props: Any) -> str:
        body = {
            "location": location,
            "sku": {"name": "Premium_LRS"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": size} | props,
        }
        arm(sb, "PUT", f"{group}/providers/Microsoft.Compute/disks/{name}", body, api_version=COMPUTE_API)
        made["disks"].append(f"{group}/providers/Microsoft.Compute/disks/{name}")
        return made["disks"][-1]

    def vm(group: str, name: str, location: str, size: str, os_disk: str | None, data: list[str], **extra: Any) -> str:
        storage: dict[str, Any] = {
            "dataDisks": [{"lun": i, "createOption": "Attach", "managedDisk": {"id": d}} for i, d in enumerate(data)]
        }
        if os_disk:
            storage["osDisk"] = {"osType": "Linux", "createOption": "Attach", "managedDisk": {"id": os_disk}}
        body = {"location": location, "properties": {"hardwareProfile": {"vmSize": size}, "storageProfile": storage}}
        body["properties"] |= extra
        arm(sb, "PUT", f"{group}/providers/Microsoft.Compute/virtualMachines/{name}", body, api_version=VM_API)
        made["virtualMachines"].append(f"{group}/providers/Microsoft.Compute/virtualMachines/{name}")
        return made["virtualMachines"][-1]

    ops = rg("rg-ops", "westeurope")
    arm(
        sb,
        "PUT",
        f"{ops}/providers/Microsoft.OperationalInsights/workspaces/law-cryptward",
        {"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}},
        api_version="2023-09-01",
    )
    weu, neu = rg("rg-app-weu", "westeurope"), rg("rg-app-neu", "northeurope")
    keys_weu = rg("rg-keys-weu", "westeurope")

    # Vaults: one with nothing (no purge protection, lock, tags, diagnostics), one on access policies with public
    # access, and the disk-encryption vault without purge protection that a DES uses.
    vault(weu, "kv-weu-app", "westeurope")
    vault(
        neu,
        "kv-neu-legacy",
        "northeurope",
        enableRbacAuthorization=False,
        accessPolicies=[
            {"tenantId": tenant, "objectId": admin.object_id, "permissions": {"keys": ["all"], "secrets": ["all"]}}
        ],
    )
    des_vault = vault(keys_weu, "kv-weu-disks", "westeurope", enabledForDiskEncryption=True)
    des_key = key(des_vault, "des-key")
    key(des_vault, "short-key", size=2048)

    # A DES without auto-rotation whose vault lacks purge protection; its identity has no access to the key yet.
    des_id = f"{keys_weu}/providers/Microsoft.Compute/diskEncryptionSets/des-weu"
    arm(
        sb,
        "PUT",
        des_id,
        {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"sourceVault": {"id": des_vault}, "keyUrl": des_key["properties"]["keyUriWithVersion"]},
            },
        },
        api_version=COMPUTE_API,
    )
    made["diskEncryptionSets"].append(des_id)

    # Disks on platform keys: unattached, on a running VM, on a deallocated VM; one that had ADE; one in the region
    # without a DES; and a legacy VM on an unmanaged VHD of a series that cannot use encryption at host.
    disk(weu, "disk-weu-data", "westeurope")
    os_running = disk(weu, "disk-weu-app-os", "westeurope", 32, osType="Linux")
    data_running = disk(weu, "disk-weu-app-data", "westeurope")
    os_batch = disk(weu, "disk-weu-batch-os", "westeurope", 32, osType="Linux")
    # A disk that was encrypted with ADE and later decrypted: Azure keeps encryptionSettingsCollection (enabled false)
    # on it, which is how the bot can tell; the sandbox also remembers the history.
    ade = disk(
        weu,
        "disk-weu-ade",
        "westeurope",
        encryptionSettingsCollection={"enabled": False, "encryptionSettingsVersion": "1.1"},
    )
    sb.state.meta_of(ade)["everHadADE"] = True
    disk(neu, "disk-neu-data", "northeurope")
    vm(weu, "vm-weu-app", "westeurope", "Standard_D4s_v5", os_running, [data_running])
    batch = vm(weu, "vm-weu-batch", "westeurope", "Standard_E4s_v5", os_batch, [])
    arm(sb, "POST", f"{batch}/deallocate", api_version=VM_API)
    vm(
        neu,
        "vm-neu-legacy",
        "northeurope",
        "Standard_D2_v3",
        None,
        [],
        storageProfile={
            "osDisk": {
                "osType": "Linux",
                "name": "legacy-os",
                "createOption": "Attach",
                "vhd": {"uri": "https://legacystore.blob.core.windows.net/vhds/legacy-os.vhd"},
            }
        },
    )

    # Keys past their rotation age: the sandbox clock cannot run backwards, so the key versions are backdated.
    for entry in sb.state.table("keyvault.keys").values():
        for version in entry["versions"]:
            version["attributes"]["created"] -= 120 * 86400
            version["attributes"]["updated"] -= 120 * 86400
    return {"subscriptions": [DEFAULT_SUBSCRIPTION], **made}
