"""Turn on `enabledForDiskEncryption` on the key vault a VM's Azure Disk Encryption uses.

Only for a vault in the VM's subscription and region: Azure Disk Encryption needs both (Microsoft Learn, "Create and
configure a key vault for Azure Disk Encryption", https://learn.microsoft.com/azure/virtual-machines/linux/disk-
encryption-key-vault: "Azure Disk Encryption needs the key vault and the VMs to be co-located in the same region";
"The key vault and VMs must be in the same subscription", as the Learn include disk-encryption-key-vault quotes it),
so a vault elsewhere is reported, never changed. The flag lets the platform retrieve the vault's secrets and unwrap
its keys for disk encryption (KeyVaultRP, VaultProperties.enabledForDiskEncryption) and the vault is named by the
VM's owner: the policy runs in approve mode, so a person who can see both decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import VAULT_API, cryptward, name_of

PROPERTY = "properties.enabledForDiskEncryption"


@register("vm-ade-key-vault")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vm_id, vm = str(resource["id"]), name_of(str(resource["id"]))
    vault = cryptward(resource, "adeKeyVault") or {}
    vault_id = str(vault.get("id") or "")
    if not vault_id:
        raise FixDeclined(SkipReason.CANNOT_READ, f"the key vault of VM {vm}'s Azure Disk Encryption was not read")
    sub = vm_id.split("/")[2].lower()
    elsewhere = []
    if vault_id.split("/")[2].lower() != sub:
        elsewhere.append(f"subscription {vault_id.split('/')[2]}")
    if str(vault.get("location") or "").lower() != str(resource.get("location") or "").lower():
        elsewhere.append(f"region {vault.get('location')}")
    if elsewhere:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"key vault {name_of(vault_id)} is in {' and '.join(elsewhere)}, not VM {vm}'s: Azure Disk Encryption "
            "needs a vault in the VM's subscription and region, and a vault cannot be moved; the VM's owner "
            "re-encrypts it with a vault beside it.",
        )
    before = (vault.get("properties") or {}).get("enabledForDiskEncryption")
    if before is True:
        return []
    return [
        Change(
            resource_id=vm_id,
            summary=(
                f"Allow Azure Disk Encryption to use key vault {name_of(vault_id)} (enabledForDiskEncryption), "
                f"which VM {vm} encrypts its volumes with; this lets the platform retrieve the vault's secrets and "
                "unwrap its keys for disk encryption."
            ),
            operation=Operation("PATCH", vault_id, VAULT_API, {"properties": {"enabledForDiskEncryption": True}}),
            before={PROPERTY: before},
            after={PROPERTY: True},
        )
    ]
