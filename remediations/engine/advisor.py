"""Which end-to-end encryption suits a VM: encryption at host (EAH) or Azure Disk Encryption (ADE). Pure.

    advice = advise(vm, disks, needs=Needs(file_restore=True))
    advice.recommended          # "encryption-at-host", "azure-disk-encryption" or None
    advice.summary              # sentences for the VM's owner

The rules are the seed's comparison table ("Encryption At Host"): EAH is not available on the Dv3, Dv2, Av2, Ev3,
NC, NV and H series; ADE is not available without a local temporary disk (Dv4, Dsv4, Ev4, Esv4), below 2 GB of
memory (8 GB for Linux encrypting OS and data disks), on basic sizes and custom Linux images, or with disks already
encrypted with customer-managed keys (ADE needs platform-managed keys); ADE VMs restore only as whole disks, in the
same region, and cannot move between subscriptions or regions. The two are mutually exclusive.

When the reader has the size's capabilities from the Resource SKUs API (`EncryptionAtHostSupported`, `MemoryGB`,
`MaxResourceVolumeMB`), they override the tables here: Azure decides. The tables are the fallback when the SKU list
could not be read (`cryptward.skuUnreadable`), and the advice then says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediations.resources import cryptward, get, vm_ade_trace

EAH = "encryption-at-host"
ADE = "azure-disk-encryption"

# (family, version) pairs as the seed names the series: Dv3 is D..._v3 (Dsv3 is its own series, not listed).
EAH_UNSUPPORTED = {("D", 3), ("D", 2), ("A", 2), ("E", 3), ("NC", None), ("NV", None), ("H", None)}
# (family, features, version) of the series with no local temporary disk.
NO_TEMP_DISK = {("D", "", 4), ("D", "s", 4), ("E", "", 4), ("E", "s", 4)}
# Memory (GB) of small sizes, for when the SKU capabilities were not read.
MEMORY_GB = {
    "basic_a0": 0.75, "basic_a1": 1.75, "standard_a0": 0.75, "standard_a1": 1.75, "standard_a1_v2": 2.0,
    "standard_a2_v2": 4.0, "standard_b1ls": 0.5, "standard_b1s": 1.0, "standard_b1ms": 2.0, "standard_b2s": 4.0,
    "standard_b2ms": 8.0, "standard_d1_v2": 3.5, "standard_ds1_v2": 3.5, "standard_f1": 2.0, "standard_f2s_v2": 4.0,
    "standard_d2_v3": 8.0, "standard_d2s_v3": 8.0, "standard_d2_v4": 8.0, "standard_d2s_v4": 8.0,
}  # fmt: skip
_SIZE = re.compile(r"^(standard|basic)_([a-z]+?)(\d+)(?:-\d+)?([a-z]*)(?:_v(\d+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Series:
    tier: str  # standard | basic
    family: str  # D, DS, NC, ...
    features: str  # s, ds, m, r, ... (lower case)
    version: int | None

    @property
    def name(self) -> str:
        return f"{self.family}{self.features}{f'v{self.version}' if self.version else ''}"


def series(vm_size: str) -> Series | None:
    """'Standard_D4s_v3' -> Series('standard', 'D', 's', 3); None for a size this parser does not know."""
    m = _SIZE.match(vm_size)
    if not m:
        return None
    tier, family, _, features, version = m.groups()
    return Series(tier.lower(), family.upper(), features.lower(), int(version) if version else None)


@dataclass(frozen=True)
class Needs:
    """What the owner needs from backup and placement (ADE limits these)."""

    file_restore: bool = False  # restore single files or folders from Azure Backup
    cross_region_restore: bool = False  # restore to the paired region
    move: bool = False  # move the VM to another subscription or region


@dataclass(frozen=True)
class Option:
    name: str
    available: bool
    reasons: tuple[str, ...]  # why not (when unavailable), or what to know (when available)


@dataclass(frozen=True)
class Advice:
    eah: Option
    ade: Option
    recommended: str | None
    summary: str


def _eah(vm: Mapping[str, Any], found: Series | None, caps: Mapping[str, Any], ade_trace: str | None) -> Option:
    why: list[str] = []
    size = str(get(vm, "properties.hardwareProfile.vmSize") or "unknown")
    supported = caps.get("EncryptionAtHostSupported")
    unread = cryptward(vm, "skuUnreadable")
    source = f" (the seed's table decided: Azure's Resource SKUs list could not be read: {unread})" if unread else ""
    if supported is not None:
        if str(supported).lower() != "true":
            why.append(f"Azure reports (Resource SKUs) that size {size} does not support encryption at host.")
    elif found and (found.family, found.version) in EAH_UNSUPPORTED and "s" not in found.features:
        why.append(
            f"The {found.name} series ({size}) does not support encryption at host; resize to a newer series{source}."
        )
    if ade_trace:
        why.append(f"Encryption at host and ADE are mutually exclusive, and {ade_trace}.")
    if why:
        return Option(EAH, False, tuple(why))
    notes = ["It needs the VM deallocated once to turn on, and the EncryptionAtHost feature on the subscription."]
    if supported is None and unread:
        notes.append(f"Its size counts as supported by the seed's table{source}.")
    return Option(EAH, True, tuple(notes))


def _memory(vm_size: str, caps: Mapping[str, Any], memory_gb: float | None) -> float | None:
    if memory_gb is not None:
        return memory_gb
    if caps.get("MemoryGB") is not None:
        return float(caps["MemoryGB"])
    return MEMORY_GB.get(vm_size.lower())


def _ade(vm: Mapping[str, Any], disks: Sequence[Mapping[str, Any]], found: Series | None, **kw: Any) -> Option:
    caps, needs, memory = kw["caps"], kw["needs"], kw["memory"]
    why: list[str] = []
    notes: list[str] = []
    size = str(get(vm, "properties.hardwareProfile.vmSize") or "unknown")
    linux = str(get(vm, "properties.storageProfile.osDisk.osType") or "").lower() == "linux"
    if get(vm, "properties.securityProfile.encryptionAtHost") is True:
        why.append("Encryption at host is already on, and ADE cannot be combined with it.")
    if found and found.tier == "basic":
        why.append(f"ADE does not support basic sizes such as {size}.")
    no_temp = caps.get("MaxResourceVolumeMB") is not None and float(caps["MaxResourceVolumeMB"]) == 0
    if no_temp or (found and (found.family, found.features, found.version) in NO_TEMP_DISK):
        why.append(f"Size {size} has no local temporary disk, which ADE needs.")
    if memory is not None and memory < 2:
        why.append(f"Size {size} has {memory:g} GB of memory; ADE needs at least 2 GB.")
    elif memory is not None and linux and memory < 8:
        notes.append(f"With {memory:g} GB of memory, ADE on Linux can encrypt data disks only (OS disks need 8 GB).")
    elif memory is None:
        notes.append(f"The memory of size {size} is unknown here; ADE needs 2 GB (8 GB for Linux OS disks).")
    if linux and get(vm, "properties.storageProfile.imageReference.id"):
        why.append("The VM runs a custom Linux image, which ADE does not support.")
    elif linux:
        notes.append("ADE supports most, not all, versions of Ubuntu, RHEL, CentOS and SLES; check the distribution.")
    cmk = [
        d for d in disks if str(get(d, "properties.encryption.type") or "").endswith(("CustomerKey", "CustomerKeys"))
    ]
    if cmk or _vm_disk_sets(vm):
        why.append("Its disks are encrypted with a customer-managed key; ADE needs platform-managed keys.")
    if needs.file_restore:
        why.append("Azure Backup cannot restore single files or folders of an ADE VM, only whole disks.")
    if needs.cross_region_restore:
        why.append("Azure Backup cannot restore an ADE VM to another region.")
    if needs.move:
        why.append("An ADE VM cannot be moved to another subscription or region.")
    return Option(ADE, not why, tuple(why or notes))


def _vm_disk_sets(vm: Mapping[str, Any]) -> list[Any]:
    disks = [get(vm, "properties.storageProfile.osDisk"), *(get(vm, "properties.storageProfile.dataDisks") or [])]
    return [get(d, "managedDisk.diskEncryptionSet.id") for d in disks if get(d, "managedDisk.diskEncryptionSet.id")]


def advise(
    vm: Mapping[str, Any],
    disks: Sequence[Mapping[str, Any]] = (),
    *,
    needs: Needs = Needs(),  # frozen, so sharing the default is safe
    memory_gb: float | None = None,
    capabilities: Mapping[str, Any] | None = None,
) -> Advice:
    """Which of EAH and ADE can protect this VM (`disks`: the GET bodies of its managed disks), and why."""
    caps = capabilities or {}
    size = str(get(vm, "properties.hardwareProfile.vmSize") or "")
    found = series(size)
    ade_trace = vm_ade_trace(vm)
    eah = _eah(vm, found, caps, ade_trace)
    ade = _ade(vm, disks, found, caps=caps, needs=needs, memory=_memory(size, caps, memory_gb))
    if ade_trace and ade.available:
        recommended, lead = ADE, f"Keep Azure Disk Encryption: {ade_trace}, and the two cannot be combined."
    elif eah.available:
        recommended, lead = EAH, "Use encryption at host: it also encrypts temporary disks and caches, costs the VM "
        lead += "no CPU, and keeps every Azure Backup restore option and customer-managed keys on its disks."
    elif ade.available:
        recommended, lead = ADE, "Use Azure Disk Encryption: encryption at host is not available for this VM."
    else:
        recommended, lead = None, "Neither encryption at host nor Azure Disk Encryption can protect this VM as it is."
    reasons = [*(r for r in eah.reasons if not eah.available), *(r for r in ade.reasons if not ade.available)]
    return Advice(eah, ade, recommended, " ".join([lead, *reasons]))


# --- scale sets ------------------------------------------------------------------------------------------------------

ADE_EXTENSIONS = ("azurediskencryption", "azurediskencryptionforlinux")
LINUX_OS_ADE = (
    "ADE cannot encrypt the OS disk of a Linux scale set (the seed's comparison table, VM scale sets: \"Encryption "
    'of OS drive in Linux scale set not supported"; Learn, azure-disk-encryption-vmss: Linux scale sets support '
    "data disk encryption only)."
)


def scale_set_ade(vmss: Mapping[str, Any]) -> tuple[str, str] | None:
    """The Azure Disk Encryption extension in a scale set's model, as (type, VolumeType); None when there is none."""
    for ext in get(vmss, "properties.virtualMachineProfile.extensionProfile.extensions") or []:
        if str(get(ext, "properties.type") or "").lower() in ADE_EXTENSIONS:
            return str(get(ext, "properties.type")), str(get(ext, "properties.settings.VolumeType") or "")
    return None


def scale_set_linux(vmss: Mapping[str, Any]) -> bool:
    vmp = get(vmss, "properties.virtualMachineProfile") or {}
    os_type = str(get(vmp, "storageProfile.osDisk.osType") or "").lower()
    return os_type == "linux" or (not os_type and get(vmp, "osProfile.linuxConfiguration") is not None)


def as_vm(vmss: Mapping[str, Any]) -> dict[str, Any]:
    """A scale set's model in a VM's shape, for the VM rules: size from `sku.name`, storage and security profiles,
    the Azure Disk Encryption extension as a VM extension (`cryptward.extensions`)."""
    vmp = get(vmss, "properties.virtualMachineProfile") or {}
    storage = dict(vmp.get("storageProfile") or {})
    os_disk = dict(storage.get("osDisk") or {})
    os_disk.setdefault("osType", "Linux" if scale_set_linux(vmss) else "Windows")
    storage["osDisk"] = os_disk
    block = dict(vmss.get("cryptward") or {})
    ade = scale_set_ade(vmss)
    if ade:
        block["extensions"] = [{"name": ade[0], "properties": {"type": ade[0]}}]
    return {
        "id": vmss.get("id"),
        "location": vmss.get("location"),
        "properties": {
            "hardwareProfile": {"vmSize": get(vmss, "sku.name")},
            "storageProfile": storage,
            "securityProfile": vmp.get("securityProfile") or {},
        },
        "cryptward": block,
    }


def advise_scale_set(vmss: Mapping[str, Any], *, needs: Needs = Needs()) -> Advice:
    """`advise` for a scale set's model; ADE on a Linux scale set covers its data disks only (the seed)."""
    advice = advise(as_vm(vmss), needs=needs, capabilities=cryptward(vmss, "skuCapabilities"))
    if not scale_set_linux(vmss):
        return advice
    ade = Option(ADE, advice.ade.available, (*advice.ade.reasons, LINUX_OS_ADE))
    return Advice(advice.eah, ade, advice.recommended, f"{advice.summary} {LINUX_OS_ADE}")
