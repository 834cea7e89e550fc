"""What Cryptward reads of a vault's subscription: its Microsoft Defender for Key Vault plan (policy kv-defender).

The plan is the subscription's `Microsoft.Security/pricings/KeyVaults` (azure-rest-api-specs, Microsoft.Security
stable/2024-01-01 pricings.json, Pricings_Get): one GET per subscription, whatever the number of vaults, given to each
vault as `cryptward.defenderForKeyVault` (`{id, name, properties: {pricingTier, ...}}`). A plan that cannot be read is
recorded as unreadable: nothing is decided on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remediations.azure import Azure
from remediations.errors import AzureAccessError
from remediations.resources import DEFENDER_BLOCK, PRICINGS_API, defender_plan_id

BLOCK = DEFENDER_BLOCK


@dataclass
class Plans:
    """The Key Vault plan of each subscription read so far (lower-cased id), or why it could not be read."""

    read: dict[str, dict[str, Any] | str] = field(default_factory=dict)

    def of(self, azure: Azure, resource_id: str) -> dict[str, Any] | str:
        sub = resource_id.split("/")[2]
        key = sub.lower()
        if key not in self.read:
            try:
                self.read[key] = dict(azure.get(defender_plan_id(sub), PRICINGS_API))
            except AzureAccessError as e:
                self.read[key] = f"{e.code}: {e.message}".rstrip(": ")
        return self.read[key]


__all__ = ["BLOCK", "Plans"]
