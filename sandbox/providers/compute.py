"""Microsoft.Compute, shared part: api-versions, Azure's error answers, the Key Vault contract and the links
between disks, disk encryption sets and VMs. The resource types live in compute_disks / compute_des / compute_vms.

Error codes and messages: each `refuse_*` helper says in its docstring whether the code/text was checked against
public material (Microsoft docs, error output quoted in public issues) or is a best reconstruction.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox.arm import ArmError
from sandbox.providers import keyvault

if TYPE_CHECKING:
    from sandbox.server import Sandbox
    from sandbox.state import State

# DiskRP (disks, diskEncryptionSets; DES exist from 2019-07-01). 2026-03-02 is azure-mgmt-compute 39's default;
# 2023-04-02 ... 2025-01-02 are what az CLI 2.9x sends.
DISK_API = (
    "2019-07-01",
    "2019-11-01",
    "2020-05-01",
    "2020-06-30",
    "2020-09-30",
    "2020-12-01",
    "2021-04-01",
    "2021-08-01",
    "2021-12-01",
    "2022-03-02",
    "2022-07-02",
    "2023-01-02",
    "2023-04-02",
    "2023-10-02",
    "2024-03-02",
    "2025-01-02",
    "2026-03-02",
)
# ComputeRP (virtualMachines). 2026-04-01 is the SDK default; 2025-04-01 / 2025-11-01 are the spec examples'.
VM_API = (
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-04-01",
)

DISK_TYPE = "Microsoft.Compute/disks"
DES_TYPE = "Microsoft.Compute/diskEncryptionSets"
VM_TYPE = "Microsoft.Compute/virtualMachines"
SNAPSHOT_TYPE = "Microsoft.Compute/snapshots"

PLATFORM_KEY = "EncryptionAtRestWithPlatformKey"
CUSTOMER_KEY = "EncryptionAtRestWithCustomerKey"
DOUBLE = "EncryptionAtRestWithPlatformAndCustomerKeys"
CMK_TYPES = (CUSTOMER_KEY, DOUBLE)
ENCRYPTION_TYPES = (PLATFORM_KEY, CUSTOMER_KEY, DOUBLE)
DES_TYPES = (CUSTOMER_KEY, DOUBLE, "ConfidentialVmEncryptedWithCustomerKey")

_SANDBOXES: dict[int, Sandbox] = {}


def install(sb: Sandbox) -> None:
    _SANDBOXES[id(sb.state)] = sb


def sandbox_of(state: State) -> Sandbox:
    return _SANDBOXES[id(state)]


def norm_location(location: str) -> str:
    return location.replace(" ", "").lower()


def subscription_of(resource_id: str) -> str:
    return resource_id.split("/")[2].lower()


def short_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


# -- errors ---------------------------------------------------------------------------------------------------


def invalid_parameter(message: str, target: str) -> ArmError:
    """CRP/DiskRP's parameter error: 400 InvalidParameter with a target (shape checked against public error output;
    the individual messages using it are reconstructions unless noted)."""
    return ArmError(400, "InvalidParameter", message, target=target)


def missing_parameter(name: str) -> ArmError:
    """ "Required parameter 'x' is missing (null)." is CRP's wording for a missing required property."""
    return invalid_parameter(f"Required parameter '{name}' is missing (null).", name)


def operation_not_allowed(message: str) -> ArmError:
    """409 OperationNotAllowed, the code DiskRP/CRP use for state conflicts (e.g. resizing a disk of a running VM,
    checked against Microsoft's troubleshooting doc quoting ChangeDiskSizeWhileAttachedNotAllowed)."""
    return ArmError(409, "OperationNotAllowed", message)


def key_vault_access_forbidden(key_url: str, des_name: str) -> ArmError:
    """Checked: code KeyVaultAccessForbidden and this text are quoted from Azure's answers in
    MicrosoftDocs/azure-docs#96319 and ansible-collections/azure#1676."""
    return ArmError(
        400,
        "KeyVaultAccessForbidden",
        f"Unable to access key vault resource '{key_url}' to enable encryption at rest. Please grant get, wrap and "
        f"unwrap key permissions to disk encryption set '{des_name}'. Please visit "
        "https://aka.ms/keyvaultaccessssecmk for more information.",
    )


# -- Key Vault (sandbox.providers.keyvault) ------------------------------------------------------------------------

_KEY_URL = re.compile(r"^https://[^/]+(?:/kv/[^/]+)?/keys/(?P<name>[^/?]+)(?:/(?P<ver>[^/?]*))?")


def parse_key_url(key_url: str) -> tuple[str, str | None] | None:
    """(key name, version or None) of a key URL, or None when it is not one."""
    m = _KEY_URL.match(key_url or "")
    if not m:
        return None
    return m.group("name"), (m.group("ver") or None)


def find_key(sb: Sandbox, key_url: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None] | None:
    return keyvault.find_key(sb, key_url)


def latest_version(entry: dict[str, Any]) -> dict[str, Any]:
    return keyvault.latest_version(entry)


def can_use_key(sb: Sandbox, object_id: str | None, vault: dict[str, Any], key_name: str) -> bool:
    """get + wrapKey + unwrapKey on the key: what a DES identity needs (Key Vault Crypto Service Encryption User)."""
    return bool(object_id) and keyvault.can_use_key(sb, object_id or "", vault, key_name)


def key_url_of(vault: dict[str, Any], key_name: str, version: str) -> str:
    base = str(vault["properties"]["vaultUri"])
    return f"{base if base.endswith('/') else base + '/'}keys/{key_name}/{version}"


def on_new_version(callback: Any) -> None:
    keyvault.on_new_version(callback)


# -- links ------------------------------------------------------------------------------------------------------


def power_state(state: State, vm_id: str) -> str:
    """running | stopped | deallocated (a sandbox fact, shown through the instance view)."""
    return str(state.meta_of(vm_id).get("powerState", "running"))


def vm_allocated(state: State, vm_id: str | None) -> bool:
    """Whether the VM holds compute (running or stopped-not-deallocated): what Azure means by 'running VM' when it
    refuses disk changes."""
    return bool(vm_id) and state.get(vm_id or "") is not None and power_state(state, vm_id or "") != "deallocated"


def disk_has_ade(state: State, disk: dict[str, Any]) -> bool:
    """The disk is, or ever was, encrypted with Azure Disk Encryption."""
    esc = disk.get("properties", {}).get("encryptionSettingsCollection") or {}
    return bool(esc.get("enabled")) or bool(state.meta_of(disk["id"]).get("everHadADE"))


def vm_disk_ids(vm: dict[str, Any]) -> list[str]:
    sp = vm.get("properties", {}).get("storageProfile", {})
    ids = [((sp.get("osDisk") or {}).get("managedDisk") or {}).get("id")]
    ids += [(d.get("managedDisk") or {}).get("id") for d in sp.get("dataDisks") or []]
    return [i for i in ids if i]


def vm_has_ade(state: State, vm: dict[str, Any]) -> bool:
    """ADE on the VM: the VM-level marker (meta `ade` / `everHadADE`), OS-disk encryptionSettings, or any disk."""
    meta = state.meta_of(vm["id"])
    if meta.get("ade") or meta.get("everHadADE"):
        return True
    os_disk = vm.get("properties", {}).get("storageProfile", {}).get("osDisk") or {}
    if (os_disk.get("encryptionSettings") or {}).get("enabled"):
        return True
    return any((d := state.get(i)) is not None and disk_has_ade(state, d) for i in vm_disk_ids(vm))


def incremental_snapshots(state: State, disk: dict[str, Any]) -> list[dict[str, Any]]:
    """The incremental snapshots taken of this disk (by its id and, when recorded, its uniqueId)."""
    wanted, unique = disk["id"].lower(), disk.get("properties", {}).get("uniqueId")
    out = []
    for snap in state.of_type(SNAPSHOT_TYPE):
        p = snap.get("properties", {})
        cd = p.get("creationData") or {}
        if not p.get("incremental") or str(cd.get("sourceResourceId") or "").lower() != wanted:
            continue
        if unique and cd.get("sourceUniqueId") and cd["sourceUniqueId"] != unique:
            continue  # a snapshot of an earlier disk of the same name
        out.append(snap)
    return out
