"""Microsoft.Compute/skus: the resource SKUs a subscription may use, with their capabilities, for the VM sizes the
sandbox knows (GET /subscriptions/{s}/providers/Microsoft.Compute/skus?$filter=location eq '{region}').

Shape: ComputeRP Skus/stable/2021-07-01 (skus.json, examples/skus/ListAvailableResourceSkusForARegion.json):
`resourceType`, `name`, `tier`, `size`, `family`, `locations`, `locationInfo`, `capabilities` [{name, value}] with
string values ("True", "4"), `restrictions`. "Only location filter is supported currently" (the pinned SDK's
`resource_skus.list` docstring). `EncryptionAtHostSupported` is the capability Microsoft Learn points to for the sizes
that support encryption at host ("Finding supported VM sizes", disks-enable-host-based-encryption-cli); which sizes
have it here follows the seed's comparison table (compute_vms.eah_supported), as the VM rule does. vCPUs and MemoryGB
are the sizes' published figures (Microsoft Learn size pages, recalled: unverified).
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.arm import ArmError, Call, ResourceType, register
from sandbox.providers.compute_vms import eah_supported

SKU_API = ("2017-09-01", "2019-04-01", "2021-07-01")
# size -> (family, vCPUs, MemoryGB)
SIZES: dict[str, tuple[str, int, float]] = {
    "Standard_A1_v2": ("standardAv2Family", 1, 2),
    "Standard_A2_v2": ("standardAv2Family", 2, 4),
    "Standard_B1s": ("standardBSFamily", 1, 1),
    "Standard_B1ms": ("standardBSFamily", 1, 2),
    "Standard_B2s": ("standardBSFamily", 2, 4),
    "Standard_B2ms": ("standardBSFamily", 2, 8),
    "Standard_D2_v2": ("standardDv2Family", 2, 7),
    "Standard_DS1_v2": ("standardDSv2Family", 1, 3.5),
    "Standard_DS2_v2": ("standardDSv2Family", 2, 7),
    "Standard_DS3_v2": ("standardDSv2Family", 4, 14),
    "Standard_D2_v3": ("standardDv3Family", 2, 8),
    "Standard_D4_v3": ("standardDv3Family", 4, 16),
    "Standard_D2s_v3": ("standardDSv3Family", 2, 8),
    "Standard_D4s_v3": ("standardDSv3Family", 4, 16),
    "Standard_D4_v4": ("standardDv4Family", 4, 16),
    "Standard_D4s_v4": ("standardDSv4Family", 4, 16),
    "Standard_D4ds_v4": ("standardDDSv4Family", 4, 16),
    "Standard_D2s_v5": ("standardDSv5Family", 2, 8),
    "Standard_D4s_v5": ("standardDSv5Family", 4, 16),
    "Standard_D8s_v5": ("standardDSv5Family", 8, 32),
    "Standard_E8_v3": ("standardEv3Family", 8, 64),
    "Standard_E4s_v3": ("standardESv3Family", 4, 32),
    "Standard_E4_v4": ("standardEv4Family", 4, 32),
    "Standard_E4s_v4": ("standardESv4Family", 4, 32),
    "Standard_E4ds_v4": ("standardEDSv4Family", 4, 32),
    "Standard_E4s_v5": ("standardESv5Family", 4, 32),
    "Standard_NC6": ("standardNCFamily", 6, 56),
    "Standard_NC6s_v3": ("standardNCSv3Family", 6, 112),
    "Standard_NV12": ("standardNVFamily", 12, 112),
    "Standard_H16r": ("standardHFamily", 16, 112),
}
REGIONS = ("westeurope", "northeurope", "uksouth", "eastus", "westus")
_FILTER = re.compile(r"^\s*location\s+eq\s+'(?P<loc>[^']+)'\s*$", re.I)


def sku(name: str, location: str) -> dict[str, Any]:
    family, cpus, memory = SIZES[name]
    caps = {"vCPUs": str(cpus), "MemoryGB": f"{memory:g}", "EncryptionAtHostSupported": str(eah_supported(name))}
    return {
        "resourceType": "virtualMachines",
        "name": name,
        "tier": name.split("_", 1)[0],
        "size": name.split("_", 1)[1],
        "family": family,
        "locations": [location],
        "locationInfo": [{"location": location, "zones": ["1", "2", "3"], "zoneDetails": []}],
        "capabilities": [{"name": k, "value": v} for k, v in caps.items()],
        "restrictions": [],
    }


@register
class ResourceSkus(ResourceType):
    """A provider-level list, not stored resources: GET only."""

    type = "Microsoft.Compute/skus"
    api_versions = SKU_API

    def list(self, call: Call) -> list[dict[str, Any]]:
        wanted = call.query.get("$filter")
        regions: tuple[str, ...] = REGIONS
        if wanted:
            m = _FILTER.match(wanted)
            if not m:  # the SDK: "Only location filter is supported currently"; Azure's exact answer: unverified
                raise ArmError(400, "InvalidParameter", f"The filter '{wanted}' is not supported.", target="$filter")
            regions = (m.group("loc").replace(" ", "").lower(),)
        return [sku(name, region) for region in regions for name in SIZES]
