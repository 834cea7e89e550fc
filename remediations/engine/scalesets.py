"""What the reader reads for scale sets, snapshots and images, and adds to their `cryptward` blocks.

- scale sets: one list per subscription or group (ComputeRP VirtualMachineScaleSets_ListAll / _List), then per scale
  set its instances (VirtualMachineScaleSetVMs_List: `latestModelApplied` says which still run an older model), its
  size's capabilities and its subscription's EncryptionAtHost feature, as for VMs (`machines`);
- snapshots: the list the reader made for the disks, or one list (DiskRP Snapshots_List / _ListByResourceGroup);
- images: one list (ComputeRP Images_List / _ListByResourceGroup);
- a snapshot's or image's source disk (or snapshot): from what was read, else one GET, for `sourceEncryption`.

The reader calls `read_scope` after its own sweep and `read_one` for one resource of these types (an event).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from remediations.azure import Azure
from remediations.engine import machines
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import get

VMSS, SNAPSHOT, IMAGE, DISK = aliases.VMSS, aliases.SNAPSHOT, aliases.IMAGE, aliases.DISK
KINDS = (VMSS, SNAPSHOT, IMAGE)
RELATED = "related"
API = aliases.API_VERSIONS
_PATHS = {VMSS: "virtualMachineScaleSets", SNAPSHOT: "snapshots", IMAGE: "images"}


def _cw(body: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = body.setdefault(aliases.CRYPTWARD, {})
    return block


def _list(azure: Azure, sub: str, group: str | None, kind: str) -> dict[str, dict[str, Any]]:
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{group}" if group else "")
    path = f"{scope}/providers/Microsoft.Compute/{_PATHS[kind]}"
    return {str(b["id"]).lower(): dict(b) for b in azure.list(path, API[kind])}


def read_scope(
    azure: Azure,
    subscriptions: Iterable[str],
    group: str | None,
    types: Iterable[str],
    found: Any,
    reading: Any,
    keep: Callable[[dict[str, Any]], None],
    step: Callable[[str], None],
) -> None:
    """The scale sets, snapshots and images of the scope of the `types` the policies read, their blocks filled;
    each body goes to `keep` (the reader's: in scope, locks). A list that fails raises, as the reader's own do."""
    wanted = [k for k in KINDS if k in set(types)]
    bodies: dict[str, dict[str, Any]] = {}
    for sub in subscriptions:
        for kind in wanted:
            if kind == SNAPSHOT and isinstance(found.snapshots, dict):
                bodies.update({k: v for k, v in found.snapshots.items() if k.split("/")[2] == sub.lower()})
                continue
            if kind == SNAPSHOT and isinstance(found.snapshots, AzureAccessError):
                continue  # the reader could not list them: recorded on the disks they bind (`related`)
            step(f"{_PATHS[kind]} in {sub}")
            bodies.update(_list(azure, sub, group, kind))
    _fill(azure, bodies.values(), found, reading, keep)


def read_one(azure: Azure, resource_id: str, kind: str, found: Any, reading: Any, keep: Any) -> None:
    """One scale set, snapshot or image (raises AzureAccessError when it cannot be read)."""
    body = dict(azure.get(resource_id, API[kind]))
    _fill(azure, [body], found, reading, keep)


def _fill(azure: Azure, bodies: Iterable[dict[str, Any]], found: Any, reading: Any, keep: Any) -> None:
    for body in bodies:
        kind = str(body.get("type", "")).lower()
        reading.related[str(body["id"]).lower()] = body
        if kind == VMSS.lower():
            _scale_set(azure, body, found, reading)
        else:
            _source(azure, body, found, reading)
        keep(body)


def _scale_set(azure: Azure, vmss: dict[str, Any], found: Any, reading: Any) -> None:
    rid = str(vmss["id"])
    try:
        _cw(vmss)["instances"] = [
            {
                "instanceId": str(i.get("instanceId") or str(i.get("id", "")).rsplit("/", 1)[-1]),
                "name": str(i.get("name") or ""),
                "latestModelApplied": get(i, "properties.latestModelApplied"),
                # what the instance was allocated with: a model change does not reach it before it is deallocated
                # and allocated again (Learn, encryption at host restrictions; fixes/vmss_model.py)
                "encryptionAtHost": get(i, "properties.securityProfile.encryptionAtHost"),
            }
            for i in azure.list(f"{rid}/virtualMachines", API[VMSS])
        ]
    except AzureAccessError as e:
        reading.missing(rid, "instances", e)
    as_vm = {"id": rid, "location": vmss.get("location"), "properties": {"hardwareProfile": {"vmSize": sku(vmss)}}}
    _cw(vmss).update(machines.sku_block(azure, as_vm, found.skus))
    feature = machines.feature_block(azure, vmss, found.features)
    if isinstance(feature, AzureAccessError):
        reading.missing(rid, RELATED, feature)
    else:
        _cw(vmss)["encryptionAtHostFeature"] = feature


def sku(vmss: dict[str, Any]) -> str:
    return str(get(vmss, "sku.name") or "")


def source_id(body: dict[str, Any]) -> str:
    """What a snapshot or image was made from: a disk or snapshot id ('' when it names none)."""
    if str(body.get("type", "")).lower() == SNAPSHOT.lower():
        return str(get(body, "properties.creationData.sourceResourceId") or "")
    osd = get(body, "properties.storageProfile.osDisk") or {}
    return str(get(osd, "managedDisk.id") or get(osd, "snapshot.id") or "")


def _source(azure: Azure, body: dict[str, Any], found: Any, reading: Any) -> None:
    """`sourceEncryption`: the source's `properties.encryption` (a source that no longer exists leaves it out: the
    policy then has nothing to compare with)."""
    sid = source_id(body)
    if not sid:
        return
    source = found.disks.get(sid.lower()) or reading.related.get(sid.lower())
    if source is None:
        kind = SNAPSHOT if "/snapshots/" in sid.lower() else DISK
        try:
            source = dict(azure.get(sid, API[kind]))
            reading.related[sid.lower()] = source
        except AzureAccessError as e:
            if not e.absent:
                reading.missing(str(body["id"]), RELATED, e)
            return
    _cw(body)["sourceEncryption"] = dict(get(source, "properties.encryption") or {"type": PLATFORM_KEY})


PLATFORM_KEY = "EncryptionAtRestWithPlatformKey"

__all__ = ["KINDS", "read_one", "read_scope", "sku", "source_id"]
