"""Microsoft.Compute/images: managed images, minimally: made from a managed disk or a snapshot, with the disk
encryption set of their OS disk.

Shape: ComputeRP spec (Azure/azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/
ComputeRP/stable/2025-04-01/examples/imageExamples/Image_CreateFromAManagedDisk.json and
Image_Create_FromAManagedDiskWithDiskEncryptionSet.json): `properties.storageProfile.osDisk {osType, osState,
managedDisk {id} | snapshot {id}, diskEncryptionSet {id}, storageAccountType, caching}`, `dataDisks`,
`hyperVGeneration`, `provisioningState`. The seed: "Data held in Managed Disks, Snapshots or Images is automatically
encrypted ... using a platform-managed key" unless a customer-managed key is chosen (the disk encryption set).
An image's encryption is set when it is made: the sandbox refuses changing it (ComputeRP's ImageUpdate allows
`storageProfile`, but whether an existing image's encryption can change is # unverified: refused to be safe).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register, tracked_location
from sandbox.providers import compute as c

IMAGE_TYPE = "Microsoft.Compute/images"


def _des(image: dict[str, Any]) -> str:
    osd = ((image.get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}
    return str((osd.get("diskEncryptionSet") or {}).get("id") or "").lower()


@register
class Images(ResourceType):
    type = IMAGE_TYPE
    api_versions = c.VM_API

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body or {}
        location = tracked_location(call, existing)
        props = copy.deepcopy(req.get("properties") or {})
        osd = (props.get("storageProfile") or {}).get("osDisk")
        if not osd:
            raise c.missing_parameter("storageProfile.osDisk")
        source = (osd.get("managedDisk") or osd.get("snapshot") or {}).get("id")
        if source and call.state.get(source) is None:
            raise ArmError(404, "NotFound", f"Resource {source} could not be found.")  # unverified text
        des = (osd.get("diskEncryptionSet") or {}).get("id")
        if des and call.state.get(des) is None:
            raise ArmError(404, "NotFound", f"Disk encryption set {des} could not be found.")  # unverified text
        body = {
            "id": call.path.id,
            "name": call.path.name,
            "type": IMAGE_TYPE,
            "location": c.norm_location(location),
            "properties": {**props, "provisioningState": "Succeeded"},
        }
        if existing is not None and _des(existing) != _des(body):
            raise c.operation_not_allowed(f"Changing the disk encryption set of image {call.path.name} is not allowed.")
        body["properties"].setdefault("hyperVGeneration", "V1")
        if req.get("tags") is not None:
            body["tags"] = req["tags"]
        call.state.put(body)
        return Answer(200 if existing else 201, copy.deepcopy(body))
