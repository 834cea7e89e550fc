"""What Cryptward reads of a vault's subscription, once per subscription however many vaults it holds.

- `cryptward.defenderForKeyVault` (policy kv-defender): the subscription's `Microsoft.Security/pricings/KeyVaults`
  plan (azure-rest-api-specs, Microsoft.Security stable/2024-01-01 pricings.json, Pricings_Get);
- `cryptward.activityLogAlerts` (policy kv-admin-alerts): the subscription's activity-log alert rules
  (`Microsoft.Insights/activityLogAlerts`, ActivityLogAlerts_ListBySubscriptionId, 2020-10-01).

What cannot be read is recorded as unreadable for each vault: nothing is decided on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from remediations.azure import Azure
from remediations.errors import AzureAccessError
from remediations.resources import ALERTS_API, ALERTS_BLOCK, DEFENDER_BLOCK, PRICINGS_API, defender_plan_id

BLOCK = DEFENDER_BLOCK


def _plan(azure: Azure, sub: str) -> Any:
    return dict(azure.get(defender_plan_id(sub), PRICINGS_API))


def _alerts(azure: Azure, sub: str) -> Any:
    path = f"/subscriptions/{sub}/providers/Microsoft.Insights/activityLogAlerts"
    return [dict(a) for a in azure.list(path, ALERTS_API)]


READS: dict[str, Callable[[Azure, str], Any]] = {DEFENDER_BLOCK: _plan, ALERTS_BLOCK: _alerts}


@dataclass
class Subscriptions:
    """What was read of each subscription so far, by block then lower-cased subscription id (or why not)."""

    read: dict[tuple[str, str], Any] = field(default_factory=dict)

    def of(self, azure: Azure, block: str, resource_id: str) -> Any:
        """The block's value for the subscription of `resource_id`; a str: why it could not be read."""
        sub = resource_id.split("/")[2]
        key = (block, sub.lower())
        if key not in self.read:
            try:
                self.read[key] = READS[block](azure, sub)
            except AzureAccessError as e:
                self.read[key] = f"{e.code}: {e.message}".rstrip(": ")
        return self.read[key]


def fill(azure: Azure, vault: dict[str, Any], wanted: set[str], reads: Subscriptions) -> dict[str, str]:
    """Add the subscription blocks in `wanted` (lower-cased names) to the vault's `cryptward` block; returns the
    blocks that could not be read, with why."""
    missing: dict[str, str] = {}
    for block in READS:
        if block.lower() not in wanted:
            continue
        value = reads.of(azure, block, str(vault["id"]))
        if isinstance(value, str):
            missing[block] = value
        else:
            vault.setdefault("cryptward", {})[block] = value
    return missing


__all__ = ["BLOCK", "READS", "Subscriptions", "fill"]
