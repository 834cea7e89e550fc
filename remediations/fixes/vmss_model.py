"""Encryption at host and customer-managed keys for a VM scale set, written into the scale set's model only.

A scale set's upgrade policy decides what a model change does to its instances (Learn, "Upgrade policies for
Virtual Machine Scale Sets", https://learn.microsoft.com/azure/virtual-machine-scale-sets/
virtual-machine-scale-sets-upgrade-policy): Manual: "Nothing happens automatically to the existing virtual machines
when changes occur to the scale set model. New instances added to the scale set use the most update-to-date model";
Automatic: "The scale set might take down all virtual machines at the same time"; Rolling: "the scale set performs
updates in batches". Cryptward never restarts or reimages an instance, so it changes the model of a Manual scale
set only (a person approves it) and says which instances still run the old model (`latestModelApplied` false):
their owner upgrades them when it suits (`az vmss update-instances`), which restarts each. An Automatic or Rolling
scale set is reported with what its owner can do.

Encryption at host is not brought by an upgrade: "The encryption can be enabled on existing virtual machine scale
sets. However, only new VMs created after enabling the encryption are automatically encrypted. Existing VMs must be
deallocated and reallocated in order to be encrypted" (Learn include "virtual-machines-disks-encryption-at-host-
restrictions", MicrosoftDocs/azure-compute-docs 7c3a39c4, on "Use the Azure CLI to enable end-to-end encryption using
encryption at host"). So the notice names the instances not yet encrypted at host (each instance's
`securityProfile.encryptionAtHost`, as listed) and what their owner must do; Cryptward never deallocates one.

As for VMs: never encryption at host with Azure Disk Encryption in the model nor on a size Azure says lacks it
(the advisor decides), and the subscription's EncryptionAtHost feature first (vm_encryption_at_host.registration);
never a customer-managed key with ADE (Azure refuses SSE with CMK on ADE disks: Learn disk-encryption#restrictions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import APPROVAL, Change, Operation, PlanContext, Ref, SkipReason
from remediations.engine.advisor import advise_scale_set, scale_set_ade
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.fixes.disk_cmk import configured_set
from remediations.fixes.vm_encryption_at_host import registration
from remediations.policy import aliases
from remediations.resources import cryptward, get, name_of

API = aliases.API_VERSIONS[aliases.VMSS]
VMP = "properties.virtualMachineProfile"
EAH = f"{VMP}.securityProfile.encryptionAtHost"
OS_DES = f"{VMP}.storageProfile.osDisk.managedDisk.diskEncryptionSet.id"
UPGRADE = "https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-policy"


def _manual(vmss: Mapping[str, Any], what: str) -> None:
    """Raise FixDeclined unless the scale set's upgrade policy leaves its instances alone (Manual)."""
    mode = str(get(vmss, "properties.upgradePolicy.mode") or "Manual")
    if mode.lower() != "manual":
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"scale set {name_of(str(vmss['id']))} has the {mode} upgrade policy: a change to its model would make "
            f"Azure upgrade its instances itself, restarting them ({UPGRADE}), and Cryptward never restarts an "
            f"instance. Its owner can {what} in the model and roll it out when it suits.",
        )


def _waiting(vmss: Mapping[str, Any]) -> str:
    """Which instances the model change does not reach until their owner upgrades them. (Whether an upgrade moves an
    instance's existing disks to the model's disk encryption set is not documented: # unverified.)"""
    instances = cryptward(vmss, "instances")
    if instances is None:
        return "Its instances could not be listed; each keeps its current model until its owner upgrades it."
    names = [str(i.get("name") or i.get("instanceId")) for i in instances]
    behind = [str(i.get("name") or i.get("instanceId")) for i in instances if i.get("latestModelApplied") is False]
    if not names:
        return "It has no instances now; new ones get the new model."
    text = (
        f"Its {len(names)} instance(s) ({', '.join(names)}) keep running the old model, and new ones get the new "
        "model, until their owner upgrades them (az vmss update-instances), which restarts each."
    )
    if behind:
        text += f" Already behind the model before this change: {', '.join(behind)}."
    return text


def _unencrypted(vmss: Mapping[str, Any]) -> str:
    """Which instances a model change to encryption at host does not encrypt: all those running now that were not
    allocated with it, until each is deallocated and started again."""
    instances = cryptward(vmss, "instances")
    if instances is None:
        return (
            "Its instances could not be listed; an instance running now is encrypted at host only once it is "
            "deallocated and started again (az vmss deallocate, then az vmss start), which Cryptward never does."
        )
    plain = [str(i.get("name") or i.get("instanceId")) for i in instances if i.get("encryptionAtHost") is not True]
    if not plain:
        return "It has no instance without encryption at host now; new ones are made with it."
    return (
        f"New instances are made with it; the {len(plain)} running without it ({', '.join(plain)}) get it only once "
        "deallocated and started again (az vmss deallocate, then az vmss start, with their instance ids: an "
        "upgrade to the model is not enough), which their owner does when it suits; Cryptward never deallocates."
    )


@register("vmss-encryption-at-host", reads=("cryptward.instances",))
def plan_eah(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    rid, name = str(resource["id"]), name_of(str(resource["id"]))
    ade = scale_set_ade(resource)
    if ade:
        raise FixDeclined(
            SkipReason.ADE_HISTORY,
            f"scale set {name} has the {ade[0]} extension (Azure Disk Encryption); encryption at host and ADE "
            "cannot be combined",
        )
    advice = advise_scale_set(resource)
    if not advice.eah.available:
        raise FixDeclined(SkipReason.UNSUPPORTED, " ".join(advice.eah.reasons))
    _manual(resource, "turn on encryption at host")
    first = registration(rid, cryptward(resource, "encryptionAtHostFeature") or {})
    change = Change(
        resource_id=rid,
        summary=(
            f"Turn on encryption at host in the model of scale set {name} (upgrade policy Manual), so that its "
            f"instances' temporary disks and caches are encrypted too. {_unencrypted(resource)}"
        ),
        operation=Operation(
            "PATCH",
            rid,
            API,
            {"properties": {"virtualMachineProfile": {"securityProfile": {"encryptionAtHost": True}}}},
        ),
        before={EAH: get(resource, EAH)},
        after={EAH: True},
        requires=(APPROVAL,),
        needs=(Ref(rid, "vmss-encryption-at-host"),) if first else (),
    )
    return [change] if first is None else [first, change]


@register("vmss-cmk", reads=("cryptward.instances",))
def plan_cmk(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    rid, name = str(resource["id"]), name_of(str(resource["id"]))
    wanted = str(params["encryptionType"])
    ade = scale_set_ade(resource)
    if ade:
        raise FixDeclined(
            SkipReason.ADE_HISTORY,
            f"scale set {name} has the {ade[0]} extension (Azure Disk Encryption), and Azure cannot add a "
            "customer-managed key to ADE disks",
        )
    des_id = configured_set(resource, wanted, ctx)
    _manual(resource, "name a disk encryption set")
    storage = get(resource, f"{VMP}.storageProfile") or {}
    des = {"diskEncryptionSet": {"id": des_id}}
    profile: dict[str, Any] = {} if get(resource, OS_DES) else {"osDisk": {"managedDisk": des}}
    data = storage.get("dataDisks") or []
    luns = [str(d.get("lun")) for d in data if not get(d, "managedDisk.diskEncryptionSet.id")]
    parts = ["its OS disk" if "osDisk" in profile else "", f"its data disk(s) at LUN {', '.join(luns)}" if luns else ""]
    what = " and ".join(p for p in parts if p)
    if any(not get(d, "managedDisk.diskEncryptionSet.id") for d in data):
        # a set already named is the owner's choice and stays; an array is replaced whole by a PATCH, so each data
        # disk is sent with all it had
        profile["dataDisks"] = [
            d
            if get(d, "managedDisk.diskEncryptionSet.id")
            else {**d, "managedDisk": {**(d.get("managedDisk") or {}), **des}}
            for d in data
        ]
    return [
        Change(
            resource_id=rid,
            summary=(
                f"Name disk encryption set {name_of(des_id)} ({wanted}) for {what} in the model of "
                f"scale set {name} (upgrade policy Manual): disks made from the model from now on are encrypted "
                f"with its customer-managed key. {_waiting(resource)}"
            ),
            operation=Operation(
                "PATCH", rid, API, {"properties": {"virtualMachineProfile": {"storageProfile": profile}}}
            ),
            before={OS_DES: get(resource, OS_DES)},
            after={OS_DES: get(resource, OS_DES) or des_id},
            requires=(APPROVAL,),
            needs=(Ref(des_id, "des-key-access", required=False),),
        )
    ]
