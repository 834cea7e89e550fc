"""Microsoft.Compute/snapshots: full and incremental snapshots of managed disks, and their encryption.

Shapes as recorded (tests/conformance/recordings/snapshots, Cloud Custodian's cassette at 2020-09-30) and as DiskRP's
spec describes them (specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/2025-01-02/snapshot.json):
`creationData` with the source's `sourceUniqueId`, `incremental`, `encryption`, `diskState` Unattached,
`diskSizeBytes`, `uniqueId`; an incremental snapshot also carries `incrementalSnapshotFamilyId`.

The rule Azure states for snapshots and encryption (Learn, "Server-side encryption of Azure Disk Storage",
Restrictions, https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions): "A disk and all of its
associated incremental snapshots must have the same disk encryption set." Disks refuse an encryption change while
they have incremental snapshots (compute_disks.resolve_encryption). A full snapshot's encryption may change: recorded,
the Azure CLI's `az snapshot update --encryption-type EncryptionAtRestWithCustomerKey --disk-encryption-set ...` PUT
an empty platform-key snapshot back with a disk encryption set and Azure accepted it (202; test_disk_encryption_set_
snapshot.yaml, 2021-12-01).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register, tracked_location
from sandbox.providers import compute as c
from sandbox.providers.compute_disks import new_properties, resolve_encryption, sku_of, storage_body
from sandbox.state import new_id

_SKUS = {"Standard_LRS": "Standard", "Standard_ZRS": "Standard", "Premium_LRS": "Premium"}
_READ_ONLY = {
    "provisioningState",
    "timeCreated",
    "uniqueId",
    "diskState",
    "diskSizeBytes",
    "incrementalSnapshotFamilyId",
}
_FROM_SOURCE = ("osType", "hyperVGeneration")


def _same_encryption(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        str(a.get("type") or c.PLATFORM_KEY).lower() == str(b.get("type") or c.PLATFORM_KEY).lower()
        and str(a.get("diskEncryptionSetId") or "").lower() == str(b.get("diskEncryptionSetId") or "").lower()
    )


def _source(call: Call, cd: dict[str, Any]) -> dict[str, Any]:
    source_id = cd.get("sourceResourceId")
    if not source_id:
        raise c.missing_parameter("creationData.sourceResourceId")
    source = call.state.get(source_id)
    if source is None or str(source.get("type", "")).lower() not in (c.DISK_TYPE.lower(), c.SNAPSHOT_TYPE.lower()):
        # Shape as compute_disks' DES-not-found answer; the wording is # unverified.
        raise ArmError(404, "NotFound", f"The source resource '{source_id}' of the snapshot was not found.")
    return source


def _new(call: Call, location: str, req: dict[str, Any]) -> dict[str, Any]:
    snap_id, props = call.path.id, req.get("properties") or {}
    cd = copy.deepcopy(props.get("creationData") or {})
    option = cd.get("createOption")
    if option not in ("Copy", "CopyStart", "Empty"):
        # The sandbox makes empty snapshots and snapshots of its own disks and snapshots (Import/Upload need storage
        # it lacks). Empty: `az snapshot create --size-gb` made one in Azure
        # (tests/conformance/recordings/snapshots/cli-snapshot-get-des-2021-12-01.json).
        raise c.invalid_parameter(
            f"The value '{option}' of parameter 'creationData.createOption' is not valid.",
            "creationData.createOption",
        )
    incremental = bool(props.get("incremental"))
    if option == "Empty":
        if not props.get("diskSizeGB"):
            raise c.missing_parameter("diskSizeGB")  # an empty snapshot has no source to size it # unverified
        if incremental:  # an incremental snapshot is of a disk # unverified
            raise c.invalid_parameter("An incremental snapshot needs a source disk.", "incremental")
        source: dict[str, Any] = {"type": c.SNAPSHOT_TYPE, "properties": {}}
    else:
        source = _source(call, cd)
        cd["sourceUniqueId"] = source["properties"].get("uniqueId")
    sp = source["properties"]
    source_encryption = sp.get("encryption") or {"type": c.PLATFORM_KEY}
    requested = props.get("encryption") or copy.deepcopy(source_encryption)  # a copy keeps its source's # unverified
    if incremental and source["type"] == c.DISK_TYPE and not _same_encryption(requested, source_encryption):
        # Learn, disk-encryption#restrictions: "A disk and all of its associated incremental snapshots must have the
        # same disk encryption set." Code and target as DiskRP's encryption refusals; wording # unverified.
        raise c.invalid_parameter(
            f"Incremental snapshot '{call.path.name}' must have the encryption of its disk '{source['name']}' "
            f"({source_encryption.get('type')}, disk encryption set "
            f"'{source_encryption.get('diskEncryptionSetId') or 'none'}'). A disk and all of its associated "
            "incremental snapshots must have the same disk encryption set.",
            "encryption",
        )
    encryption = resolve_encryption(call, snap_id, location, requested, None, False)
    sku = sku_of((req.get("sku") or {}).get("name") or "Standard_LRS", _SKUS)
    size = int(props.get("diskSizeGB") or sp.get("diskSizeGB") or 30)
    own = {"creationData": cd, "encryption": encryption, "incremental": incremental, "diskState": "Unattached"}
    p = new_properties(call, props, _READ_ONLY, size, **own)
    for key in _FROM_SOURCE:
        if key not in p and sp.get(key) is not None:
            p[key] = sp[key]
    if incremental:
        family = sp.get("incrementalSnapshotFamilyId") if source["type"] == c.SNAPSHOT_TYPE else None
        p["incrementalSnapshotFamilyId"] = family or call.state.meta_of(source["id"]).setdefault(
            "snapshotFamily", new_id()
        )
    return storage_body(snap_id, c.SNAPSHOT_TYPE, location, sku, p, req.get("tags"))


@register
class Snapshots(ResourceType):
    type = c.SNAPSHOT_TYPE
    api_versions = c.DISK_API
    lro = frozenset({"PUT", "PATCH", "DELETE"})

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body or {}
        location = tracked_location(call, existing)
        body = _new(call, location, req) if existing is None else self._update(call, existing, req)
        call.state.put(body)
        return Answer(200, copy.deepcopy(body))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        body = self._update(call, existing, call.body or {})
        call.state.put(body)
        return Answer(200, copy.deepcopy(body))

    def _update(self, call: Call, existing: dict[str, Any], req: dict[str, Any]) -> dict[str, Any]:
        body, props = copy.deepcopy(existing), req.get("properties") or {}
        p = body["properties"]
        if props.get("encryption") is not None and not _same_encryption(props["encryption"], p["encryption"]):
            if p.get("incremental"):
                # Learn, disk-encryption#restrictions: the disk and its incremental snapshots share one set, and CMK
                # "can't be disabled on that disk or its snapshots". Code as DiskRP's state conflicts; # unverified.
                raise c.operation_not_allowed(
                    f"Cannot change the encryption of incremental snapshot {existing['name']}. A disk and all of its "
                    "associated incremental snapshots must have the same disk encryption set."
                )
            p["encryption"] = resolve_encryption(
                call, existing["id"], existing["location"], props["encryption"], None, False
            )
        for key, value in props.items():
            if key not in _READ_ONLY and key not in ("encryption", "creationData", "incremental") and value is not None:
                p[key] = value
        if req.get("tags") is not None:
            body["tags"] = req["tags"]
        return body

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        call.state.remove(existing["id"])
        return Answer(200)
