"""The estate's scale sets, snapshot and image (issue 20, items 5 and 6): one of each finding of
vmss-encryption-at-host, vmss-cmk, vmss-ade-linux-os, snapshot-cmk and image-cmk. Steps as the administrator, like
sandbox/scenarios.py's."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sandbox import rbac
from sandbox.scenarios import COMPUTE_API, KV_API, VM_API, Answers, Step, play

if TYPE_CHECKING:
    from sandbox.server import Sandbox

ROLE_API = "2022-04-01"
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"  # Key Vault Crypto Service Encryption User

ADE = {
    "name": "AzureDiskEncryptionForLinux",
    "properties": {
        "publisher": "Microsoft.Azure.Security",
        "type": "AzureDiskEncryptionForLinux",
        "typeHandlerVersion": "1.4",
        "settings": {"EncryptionOperation": "EnableEncryption", "VolumeType": "All"},
    },
}


def play_estate(sb: Sandbox, sub: str, keys_sub: str) -> None:
    """Play `steps`; the set's key role was granted long before the rest (the sandbox clock cannot run backwards, so
    its propagation is marked done, as the estate backdates its keys)."""
    all_steps = steps(sub, keys_sub)
    play(sb, all_steps[:3])
    sb.state.table(rbac.PROPAGATING).pop(all_steps[2].path.lower(), None)
    play(sb, all_steps[3:])


def steps(sub: str, keys_sub: str) -> list[Step]:
    """In rg-app-weu: a disk on a customer-managed key (des-weu-golden, compliant itself), a full snapshot of it on
    a platform key, an image of it without a disk encryption set; a Manual Linux scale set with neither encryption at
    host nor a disk encryption set; a Rolling Linux scale set whose ADE extension asks for the OS volume."""
    weu = f"{sub}/resourceGroups/rg-app-weu"
    des = f"{sub}/resourceGroups/rg-keys-weu/providers/Microsoft.Compute/diskEncryptionSets/des-weu-golden"
    disk = f"{weu}/providers/Microsoft.Compute/disks/disk-weu-golden"
    cmk = {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": des}
    disk_body = {
        "location": "westeurope",
        "sku": {"name": "Premium_LRS"},
        "properties": {
            "creationData": {"createOption": "Empty"},
            "diskSizeGB": 32,
            "osType": "Linux",
            "encryption": cmk,
        },
    }
    snapshot = {
        "location": "westeurope",
        "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": disk},
            "incremental": False,
            "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        },
    }
    image = {
        "location": "westeurope",
        "properties": {
            "storageProfile": {"osDisk": {"osType": "Linux", "osState": "Generalized", "managedDisk": {"id": disk}}}
        },
    }
    return [
        *_granted_set(keys_sub, des),
        Step("PUT", disk, COMPUTE_API, disk_body),
        Step("PUT", f"{weu}/providers/Microsoft.Compute/snapshots/snap-weu-golden", COMPUTE_API, snapshot),
        Step("PUT", f"{weu}/providers/Microsoft.Compute/images/img-weu-golden", VM_API, image),
        _scale_set(weu, "vmss-weu-web", "Manual"),
        _scale_set(weu, "vmss-weu-ade", "Rolling", extensionProfile={"extensions": [ADE]}),
    ]


def _granted_set(keys_sub: str, des: str) -> list[Step]:
    """A disk encryption set on the central vault's key (purge protection on, so it rotates to the latest key version)
    whose identity holds Key Vault Crypto Service Encryption User on the key: Azure checks a set's key access when a
    disk uses it. It complies with the set policies, so the estate's other findings stay as they were."""
    key = (
        f"/subscriptions/{keys_sub}/resourceGroups/rg-keys-central/providers/Microsoft.KeyVault/vaults/kv-central-keys"
    )
    key += "/keys/central-key"

    def set_body(answers: Answers) -> dict[str, Any]:
        return {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"keyUrl": answers[key]["properties"]["keyUriWithVersion"]},
                "rotationToLatestKeyVersionEnabled": True,
            },
        }

    def grant(answers: Answers) -> dict[str, Any]:
        role = f"/subscriptions/{keys_sub}/providers/Microsoft.Authorization/roleDefinitions/"
        principal = answers[des]["identity"]["principalId"]
        return {
            "properties": {
                "roleDefinitionId": role + CRYPTO_SERVICE_ENCRYPTION_USER,
                "principalId": principal,
                "principalType": "ServicePrincipal",
            }
        }

    name = uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|des-weu-golden")
    return [
        Step("GET", key, KV_API),  # its versioned URL
        Step("PUT", des, COMPUTE_API, set_body),
        Step("PUT", f"{key}/providers/Microsoft.Authorization/roleAssignments/{name}", ROLE_API, grant),
    ]


def _scale_set(group: str, name: str, mode: str, **profile: Any) -> Step:
    body = {
        "location": "westeurope",
        "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 2},
        "properties": {
            "upgradePolicy": {"mode": mode},
            "virtualMachineProfile": {
                "storageProfile": {
                    "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
                    "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
                },
                "osProfile": {
                    "computerNamePrefix": name,
                    "adminUsername": "azureuser",
                    "linuxConfiguration": {"disablePasswordAuthentication": True},
                },
                **profile,
            },
        },
    }
    return Step("PUT", f"{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}", VM_API, body)
