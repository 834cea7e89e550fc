"""The compliance report's VM section: the advisor's EAH-or-ADE advice (remediations/engine/advisor.py, the seed's
comparison table) for every VM and scale set read, with what protects each today. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediations.engine.advisor import Advice, advise, advise_scale_set, scale_set_ade, scale_set_linux
from remediations.resources import cryptward, get, name_of, vm_ade_trace


@dataclass(frozen=True)
class VmAdvice:
    """The advisor's answer for one VM, with what protects it today."""

    vm_id: str
    size: str
    os_type: str
    current: str  # "encryption at host", "Azure Disk Encryption (...)" or "none"
    disks: tuple[str, ...]  # "name: encryption type" per managed disk
    advice: Advice
    kind: str = "VM"  # or "scale set": its model's advice (remediations/engine/advisor.py advise_scale_set)

    @property
    def name(self) -> str:
        return name_of(self.vm_id)


def _protection(eah: bool, ade: str, where: str = "") -> str:
    """What protects a VM or a scale set's model today, in the report's words."""
    if eah:
        return f"encryption at host{where}"
    return f"Azure Disk Encryption ({ade})" if ade else "neither encryption at host nor Azure Disk Encryption"


def scale_set_advice(rid: str, vmss: Mapping[str, Any]) -> VmAdvice:
    vmp = get(vmss, "properties.virtualMachineProfile") or {}
    ade = scale_set_ade(vmss)
    eah = get(vmp, "securityProfile.encryptionAtHost") is True
    current = _protection(eah, f"{ade[0]}, VolumeType {ade[1] or 'unset'}" if ade else "", " (in the model)")
    des = get(vmp, "storageProfile.osDisk.managedDisk.diskEncryptionSet.id")
    instances = cryptward(vmss, "instances") or []
    behind = [str(i.get("name")) for i in instances if i.get("latestModelApplied") is False]
    # encryption at host in the model reaches a running instance only when it is deallocated and allocated again
    plain = [str(i.get("name")) for i in instances if i.get("encryptionAtHost") is False]
    model_eah = get(vmp, "securityProfile.encryptionAtHost") is True
    described = (
        f"model OS disk: {'disk encryption set ' + name_of(str(des)) if des else 'platform-managed key'}",
        f"{len(instances)} instance(s)"
        + (f", {len(behind)} on an older model ({', '.join(behind)})" if behind else "")
        + (
            f", {len(plain)} not yet encrypted at host until deallocated and started again ({', '.join(plain)})"
            if model_eah and plain
            else ""
        ),
    )
    return VmAdvice(
        vm_id=rid,
        size=str(get(vmss, "sku.name") or "unknown"),
        os_type="Linux" if scale_set_linux(vmss) else "Windows",
        current=current,
        disks=described,
        advice=advise_scale_set(vmss),
        kind="scale set",
    )


def vm_advice(bodies: Mapping[str, Mapping[str, Any]]) -> list[VmAdvice]:
    out = []
    for rid, vm in bodies.items():
        if str(vm.get("type", "")).lower() == "microsoft.compute/virtualmachinescalesets":
            out.append(scale_set_advice(rid, vm))
            continue
        if str(vm.get("type", "")).lower() != "microsoft.compute/virtualmachines":
            continue
        disks = [d for d in (cryptward(vm, "disks") or []) if isinstance(d, Mapping)]
        advice = advise(vm, disks, capabilities=cryptward(vm, "skuCapabilities"))
        trace = vm_ade_trace(vm)
        current = _protection(get(vm, "properties.securityProfile.encryptionAtHost") is True, trace or "")
        described = tuple(
            f"{name_of(str(d.get('id', '')))}: {get(d, 'properties.encryption.type') or 'unknown'}" for d in disks
        )
        if get(vm, "properties.storageProfile.osDisk.vhd.uri"):
            described = ("OS disk: an unmanaged VHD (no server-side encryption)", *described)
        out.append(
            VmAdvice(
                vm_id=rid,
                size=str(get(vm, "properties.hardwareProfile.vmSize") or "unknown"),
                os_type=str(get(vm, "properties.storageProfile.osDisk.osType") or "unknown"),
                current=current,
                disks=described,
                advice=advice,
            )
        )
    return sorted(out, key=lambda v: v.vm_id.lower())


__all__ = ["VmAdvice", "scale_set_advice", "vm_advice"]
