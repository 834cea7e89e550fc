"""What Azure Policy says of a real body: each Cryptward policy's verdict written from Microsoft's documented rules
(the built-in policy definitions in Azure/azure-policy and the Learn pages cited beside each rule), in plain Python
over the recorded JSON, NOT from Cryptward's policies or code. Part (b) of "Real Azure I/II" holds the engine to it.

A rule returns True (non-compliant), False (compliant), `UNREADABLE` (its input was not recorded: the bot must not
decide) or an `Undecided` with the reason no documented rule settles it (listed in the README, not asserted).

Azure Policy semantics used throughout (Learn, "Azure Policy definition structure policy rule",
https://learn.microsoft.com/azure/governance/policy/concepts/definition-structure-policy-rule):
- `exists: false` holds for an absent property; `notEquals` holds for an absent property (nothing equals it);
  `equals` on an absent property does not hold;
- string comparisons (`equals`, `notEquals`, `in`, `like`) are case-insensitive; `type` compares so too.

Sources (azure-policy paths at the commits the repository's find_files listed):
- KV_RBAC 12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5 "Azure Key Vault should use RBAC permission model" v1.0.1,
  built-in-policies/policyDefinitions/Key Vault/Should_Use_RBAC.json
  @ 8f5ad30e23561ea73b96c4aadb858ef43c1ce78e
- KV_DELETION 0b60c0b2-2dc2-4e1c-b5c9-abbed971de53 "Key vaults should have deletion protection enabled" v2.1.0,
  built-in-policies/policyDefinitions/Key Vault/Recoverable_Audit.json
  @ f7319d6eb87769be8ba87d4d6f7b37eafd992cb0
  (a copy is policies/builtin-kv-deletion-protection/definition.json)
- KV_SOFT_DELETE 1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d "Key vaults should have soft delete enabled" v3.1.0,
  built-in-policies/policyDefinitions/Key Vault/SoftDeleteMustBeEnabled_Audit.json
  @ d1e2e2f6ad2cb254c80fc51d18bf02f81e46c124
- KV_PUBLIC 405c5871-3e91-4644-8a63-58e19d68ff5b "Azure Key Vault should disable public network access" v1.0.0,
  built-in-policies/policyDefinitions/Key Vault/AzureKeyVaultPublicNetworkAccess_Audit.json
  @ 04a62e1558e865fde1e561a7df850ccc7f8f1c1f
- DISK_CMK 702dd420-7fcc-42c5-afe8-4026edd20fe0 "OS and data disks should be encrypted with a customer-managed
  key" v3.0.0,
  built-in-policies/policyDefinitions/Compute/OSAndDataDiskCMKRequired_Deny.json
  @ 0b49a62ee2c26f734ac85f7644176fbaa9addce6
- VM_EAH fc4d8e41-e223-45ea-9bf5-eada37891d87 "Virtual machines and virtual machine scale sets should have
  encryption at host enabled" v1.0.0 (for scale sets the alias
  Microsoft.Compute/virtualMachineScaleSets/virtualMachineProfile.securityProfile.encryptionAtHost),
  built-in-policies/policyDefinitions/Compute/HostBasedEncryptionRequired_Deny.json
  @ 04a62e1558e865fde1e561a7df850ccc7f8f1c1f
- VM_MANAGED 06a78e20-9358-41c9-923c-fb736d382a4d "Audit VMs that do not use managed disks" v1.0.0,
  built-in-policies/policyDefinitions/Compute/VMRequireManagedDisk_Audit.json
  @ 0ab9883215e0a65d4df270865fe828ea0149d407
- TAG 871b6d14-10aa-478d-b590-94f262ecfa99 "Require a tag on resources" (`tags[tagName]` exists false)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Undecided:
    why: str


Verdict = bool | str | Undecided
Rule = Callable[[Mapping[str, Any], "Estate"], Verdict]


class Estate:
    """The recorded bodies a verdict may consult (a DES's vault, its role assignments), by lower-cased id."""

    def __init__(self, bodies: Mapping[str, Mapping[str, Any]], assignments: list[Mapping[str, Any]]) -> None:
        self.bodies = {k.lower(): v for k, v in bodies.items()}
        self.assignments = assignments

    def get(self, rid: str | None) -> Mapping[str, Any] | None:
        return self.bodies.get(str(rid or "").lower().rstrip("/"))


def prop(body: Mapping[str, Any], path: str) -> Any:
    node: Any = body.get("properties") or {}
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = next((v for k, v in node.items() if k.lower() == part.lower()), None)
    return node


def _is(value: Any, expected: str) -> bool:
    """Azure Policy `equals`: case-insensitive, booleans compare as their JSON text."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return isinstance(value, str | int) and str(value).lower() == expected.lower()


def _recover(vault: Mapping[str, Any]) -> bool:
    return _is(prop(vault, "createMode"), "recover")


# --- key vaults -------------------------------------------------------------------------------------------------


def kv_rbac_authorization(vault: Mapping[str, Any], _: Estate) -> Verdict:
    # KV_RBAC: not recover, and enableRbacAuthorization `exists: false` or `equals: false`. Key Vault spec
    # (keyvault.json, VaultProperties.enableRbacAuthorization): "If null or not specified, the vault is created with
    # the default value of false" -> an absent property means access policies.
    if _recover(vault):
        return False
    value = prop(vault, "enableRbacAuthorization")
    return value is None or _is(value, "false")


def kv_purge_protection(vault: Mapping[str, Any], _: Estate) -> Verdict:
    # KV_DELETION's purge clauses: enablePurgeProtection `exists: false` or `equals: false`.
    if _recover(vault):
        return False
    value = prop(vault, "enablePurgeProtection")
    return value is None or _is(value, "false")


def builtin_kv_deletion_protection(vault: Mapping[str, Any], _: Estate) -> Verdict:
    # KV_DELETION in full, as evaluated on a body read at api-version >= 2019-09-01 (requestContext().apiVersion is
    # the version the resource was read with): enableSoftDelete `equals: false`, or purge protection absent/false.
    if _recover(vault):
        return False
    purge = prop(vault, "enablePurgeProtection")
    return _is(prop(vault, "enableSoftDelete"), "false") or purge is None or _is(purge, "false")


def kv_soft_delete_retention(vault: Mapping[str, Any], _: Estate) -> Verdict:
    # KV_SOFT_DELETE v3.1.0: enableSoftDelete `equals: false` or `exists: false` -> non-compliant. The retention
    # minimum is the policy's own parameter (90 days, its default) on softDeleteRetentionInDays with `less`; Key Vault
    # spec: softDeleteRetentionInDays ">=7 and <=90", default 90 when not given.
    if _recover(vault):
        return False
    soft = prop(vault, "enableSoftDelete")
    if soft is None or _is(soft, "false"):
        return True
    days = prop(vault, "softDeleteRetentionInDays")
    return isinstance(days, int) and days < 90


def kv_network_access(vault: Mapping[str, Any], _: Estate) -> Verdict:
    # KV_PUBLIC: publicNetworkAccess `notEquals: Disabled` (absent holds: Key Vault spec default "enabled"); the
    # Cryptward policy accepts an approved private endpoint instead ("Azure Key Vaults should use private link",
    # a6abeaec-4d90-4a02-805f-6b26c4d3fbe9, counts privateEndpointConnections with status Approved).
    if _is(prop(vault, "publicNetworkAccess"), "disabled"):
        return False
    pecs = prop(vault, "privateEndpointConnections") or []
    approved = [
        p
        for p in pecs
        if _is(((p.get("properties") or {}).get("privateLinkServiceConnectionState") or {}).get("status"), "approved")
    ]
    return not approved


def _missing_tag(body: Mapping[str, Any], name: str) -> bool:
    # TAG: `tags[name]` exists false (tag names are case-insensitive in ARM).
    tags = body.get("tags") or {}
    return not any(k.lower() == name.lower() for k in tags)


def kv_owner_tag(vault: Mapping[str, Any], _: Estate) -> Verdict:
    return _missing_tag(vault, "owner")


def kv_required_tags(vault: Mapping[str, Any], _: Estate) -> Verdict:
    return any(_missing_tag(vault, t) for t in ("owner", "environment"))


def not_recorded(_: Mapping[str, Any], __: Estate) -> Verdict:
    """kv-delete-lock reads the vault's locks, kv-diagnostic-setting its diagnostic settings, kv-access-review its role
    assignments and PIM instances, kv-item-expiry its secrets and keys: none was recorded."""
    return UNREADABLE


# --- disk encryption sets ---------------------------------------------------------------------------------------

# Built-in roles whose data actions include keys/wrapkey and keys/unwrapkey (Learn, "Azure built-in roles for
# Security", https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security): Key Vault
# Administrator, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto User.
KEY_ROLES = {
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "12338af0-0e69-4776-bea7-57ae8d297424",
}
_KEY_PERMISSIONS = {"get", "wrapkey", "unwrapkey"}


def _vault_of(des: Mapping[str, Any], estate: Estate) -> Mapping[str, Any] | None:
    return estate.get(prop(des, "activeKey.sourceVault.id"))


def _confidential(des: Mapping[str, Any]) -> bool:
    return _is(prop(des, "encryptionType"), "ConfidentialVmEncryptedWithCustomerKey")


def des_auto_rotation(des: Mapping[str, Any], _: Estate) -> Verdict:
    # DiskRP spec (diskRPCommon/diskEncryptionSet.json, EncryptionSetProperties.rotationToLatestKeyVersionEnabled):
    # "Set this flag to true to enable auto-updating of this disk encryption set to the latest key version";
    # absent = not enabled (`notEquals: true` holds).
    if _confidential(des):
        return False
    return not _is(prop(des, "rotationToLatestKeyVersionEnabled"), "true")


def des_encryption_type(des: Mapping[str, Any], _: Estate) -> Verdict:
    # The policy's parameter (default EncryptionAtRestWithCustomerKey); DiskRP spec: encryptionType is one of
    # EncryptionAtRestWithCustomerKey, EncryptionAtRestWithPlatformAndCustomerKeys,
    # ConfidentialVmEncryptedWithCustomerKey.
    if _confidential(des):
        return False
    return not _is(prop(des, "encryptionType"), "EncryptionAtRestWithCustomerKey")


def des_vault_location(des: Mapping[str, Any], estate: Estate) -> Verdict:
    # Another subscription is allowed: Microsoft's DiskRP example "Create a disk encryption set with key vault from a
    # different subscription" (Disk Encryption Sets - Create Or Update, REST reference). The same region is required:
    # "Azure Key Vaults may be used from a different subscription but must be in the same region as your disk
    # encryption set", Learn as quoted in issue 16 item 6 (the page itself was not re-read here).
    vault = _vault_of(des, estate)
    if vault is None:
        return UNREADABLE
    return str(vault.get("location", "")).replace(" ", "").lower() != str(des.get("location", "")).lower()


def des_key_access(des: Mapping[str, Any], estate: Estate) -> Verdict:
    # Learn, "Azure Key Vault security" / "Migrate to Azure RBAC" (https://learn.microsoft.com/azure/key-vault/
    # general/rbac-migration): a vault uses EITHER access policies OR Azure RBAC, per enableRbacAuthorization
    # (absent = false, Key Vault spec). A DES needs get, wrapKey and unwrapKey on its key (Learn, "Server-side
    # encryption of Azure Disk Storage": "grant the DiskEncryptionSet resource access to the key vault").
    identity = des.get("identity") or {}
    if str(identity.get("type", "")).lower() != "systemassigned":
        return Undecided(
            "a DES with a user-assigned identity: which identity DiskRP uses for the key is not documented "
            "precisely enough to decide from the body"
        )
    principal = str(identity.get("principalId") or "").lower()
    vault = _vault_of(des, estate)
    if vault is None:
        return UNREADABLE
    if _is(prop(vault, "enableRbacAuthorization"), "true"):
        vault_id = str(vault["id"]).lower()
        for ra in estate.assignments:
            p = ra.get("properties") or {}
            scope = str(p.get("scope") or "").lower().rstrip("/") or "/"
            above = scope == "/" or vault_id == scope or vault_id.startswith(scope + "/")
            role = str(p.get("roleDefinitionId", "")).lower().rsplit("/", 1)[-1]
            if above and role in KEY_ROLES and str(p.get("principalId", "")).lower() == principal:
                return False
        return True
    for entry in prop(vault, "accessPolicies") or []:
        if str(entry.get("objectId", "")).lower() != principal:
            continue
        keys = {str(k).lower() for k in (entry.get("permissions") or {}).get("keys") or []}
        if "all" in keys or keys >= _KEY_PERMISSIONS:
            return False
    return True


# --- disks and VMs ----------------------------------------------------------------------------------------------


def disk_cmk(disk: Mapping[str, Any], _: Estate) -> Verdict:
    # DISK_CMK: a disk whose encryption.diskEncryptionSetId `exists: false` is non-compliant. (Cryptward compares
    # the encryption type with its parameter; on a disk without a DES both rules agree, on one with a DES of the
    # other type they do not: Undecided.)
    if str(prop(disk, "securityProfile.securityType") or "").lower().startswith("confidentialvm"):
        return False
    des = prop(disk, "encryption.diskEncryptionSetId")
    if des is None:
        return True
    if not _is(prop(disk, "encryption.type"), "EncryptionAtRestWithCustomerKey"):
        return Undecided("a disk with a DES of the other encryption type: the built-in is satisfied, the policy not")
    return False


def vm_encryption_at_host(vm: Mapping[str, Any], _: Estate) -> Verdict:
    # VM_EAH: securityProfile.encryptionAtHost `notEquals: true` (absent holds).
    return not _is(prop(vm, "securityProfile.encryptionAtHost"), "true")


def vm_managed_disks(vm: Mapping[str, Any], _: Estate) -> Verdict:
    # VM_MANAGED: alias Microsoft.Compute/virtualMachines/osDisk.uri (properties.storageProfile.osDisk.vhd.uri)
    # `exists: true`; Cryptward's policy also counts data disks' vhd.uri (unmanaged data disks).
    storage = prop(vm, "storageProfile") or {}
    disks = [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]
    return any((d.get("vhd") or {}).get("uri") for d in disks)


def vm_ade_eah_exclusive(vm: Mapping[str, Any], _: Estate) -> Verdict:
    # Learn, "Server-side encryption of Azure Disk Storage", section Encryption at host, Restrictions
    # (https://learn.microsoft.com/azure/virtual-machines/disk-encryption): encryption at host can't be enabled on VMs
    # that currently or ever had Azure Disk Encryption enabled (quoted beside the rule in
    # sandbox/providers/compute_vms.py too). Only a VM WITH encryption at host can break it.
    if not _is(prop(vm, "securityProfile.encryptionAtHost"), "true"):
        return False
    return Undecided("a VM with encryption at host: whether it ever had ADE needs its history")


def vm_ade_key_vault(vm: Mapping[str, Any], known: Estate) -> Verdict:
    # Learn, "Create and configure a key vault for Azure Disk Encryption" (disk-encryption-key-vault): the vault ADE
    # uses must be enabled for disk encryption (VaultProperties.enabledForDiskEncryption) and in the VM's region and
    # subscription. Without ADE there is nothing to check; with it, the vault its extension's settings name
    # (KeyVaultResourceId), when recorded.
    names = {"azurediskencryption", "azurediskencryptionforlinux"}
    for ext in vm.get("resources") or []:
        kind = str((ext.get("properties") or {}).get("type") or str(ext.get("id", "")).rsplit("/", 1)[-1])
        if kind.lower() not in names:
            continue
        vault_id = ((ext.get("properties") or {}).get("settings") or {}).get("KeyVaultResourceId")
        vault = known.get(vault_id)
        if vault is None:
            return UNREADABLE
        same_sub = str(vault["id"]).split("/")[2].lower() == str(vm["id"]).split("/")[2].lower()
        same_region = str(vault.get("location", "")).lower() == str(vm.get("location", "")).lower()
        return not (_is(prop(vault, "enabledForDiskEncryption"), "true") and same_sub and same_region)
    return False


def vmss_encryption_at_host(vmss: Mapping[str, Any], _: Estate) -> Verdict:
    # VM_EAH, its scale-set branch: virtualMachineProfile.securityProfile.encryptionAtHost `notEquals: true`.
    return not _is(prop(vmss, "virtualMachineProfile.securityProfile.encryptionAtHost"), "true")


def vmss_cmk(vmss: Mapping[str, Any], _: Estate) -> Verdict:
    # DISK_CMK, its scale-set branch: the model's OS disk managedDisk.diskEncryptionSet.id `exists: false`, or any
    # data disk's.
    storage = prop(vmss, "virtualMachineProfile.storageProfile") or {}
    disks = [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]
    return any(not ((d.get("managedDisk") or {}).get("diskEncryptionSet") or {}).get("id") for d in disks)


def vmss_ade_linux_os(vmss: Mapping[str, Any], _: Estate) -> Verdict:
    # Learn, "Azure Disk Encryption for Virtual Machine Scale Sets" (disk-encryption-overview): on Linux scale sets
    # only data disks can be encrypted (VolumeType Data). Non-compliant: a Linux model whose
    # AzureDiskEncryptionForLinux extension asks for OS or All.
    if prop(vmss, "virtualMachineProfile.osProfile.linuxConfiguration") is None:
        return False
    for ext in prop(vmss, "virtualMachineProfile.extensionProfile.extensions") or []:
        props = ext.get("properties") or {}
        linux_ade = str(props.get("type", "")).lower() == "azurediskencryptionforlinux"
        if linux_ade and str((props.get("settings") or {}).get("VolumeType", "")).lower() in ("os", "all"):
            return True
    return False


RULES: dict[str, Rule] = {
    "kv-rbac-authorization": kv_rbac_authorization,
    "kv-purge-protection": kv_purge_protection,
    "builtin-kv-deletion-protection": builtin_kv_deletion_protection,
    "kv-soft-delete-retention": kv_soft_delete_retention,
    "kv-network-access": kv_network_access,
    "kv-owner-tag": kv_owner_tag,
    "kv-required-tags": kv_required_tags,
    "kv-delete-lock": not_recorded,
    "kv-diagnostic-setting": not_recorded,
    "kv-access-review": not_recorded,  # role assignments at the vault and PIM instances: not recorded
    "kv-item-expiry": not_recorded,  # the vault's secrets and keys lists: not recorded
    "des-auto-rotation": des_auto_rotation,
    "des-encryption-type": des_encryption_type,
    "des-vault-location": des_vault_location,
    "des-key-access": des_key_access,
    "disk-cmk": disk_cmk,
    "vm-encryption-at-host": vm_encryption_at_host,
    "vm-managed-disks": vm_managed_disks,
    "vm-ade-eah-exclusive": vm_ade_eah_exclusive,
    "vm-ade-key-vault": vm_ade_key_vault,
    # the subscription's Defender plan and activity-log alert rules: none was recorded
    "kv-defender": not_recorded,
    "kv-admin-alerts": not_recorded,
    "vmss-encryption-at-host": vmss_encryption_at_host,
    "vmss-cmk": vmss_cmk,
    "vmss-ade-linux-os": vmss_ade_linux_os,
}
