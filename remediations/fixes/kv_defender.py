"""Turn on the subscription's Microsoft Defender for Key Vault plan (pricingTier Standard).

The write is `PUT /subscriptions/{s}/providers/Microsoft.Security/pricings/KeyVaults` with
`{"properties": {"pricingTier": "Standard"}}` (azure-rest-api-specs, Microsoft.Security stable/2024-01-01,
Pricings_Update and PutPricingByName_example.json). Each vault's finding plans the write (the
change is the vault's, as the report counts it); once one is applied, the others find the plan on and write nothing.
It costs money: Defender for Cloud's recommendation "Microsoft Defender for Key Vault should be enabled" says that
once on, the subscription's vaults, present and future, are billed, and points to the pricing page (Learn,
recommendations-reference-data, read 2026-12-03). The price is data, the fix's `price` parameter in
policies/kv-defender/policy.yaml (page, date read, figure per vault per month, currency): the notice quotes the
figure with its page and date, or says the figure was not read and names the page. A person approves each change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext
from remediations.fixes import register
from remediations.resources import DEFENDER_BLOCK, PRICINGS_API, cryptward, defender_plan_id

PROPERTY = "properties.pricingTier"


def price_text(price: Mapping[str, Any]) -> str:
    """What the plan costs, as the policy's `price` parameter says it was read from Microsoft's pricing page."""
    page, read = price["page"], price["read"]
    figure = price.get("perVaultPerMonth")
    if figure is None:
        return (
            f"It is billed per key vault per month, for the vaults there now and those created later; the figure was "
            f"not read (checked {read}): see {page}."
        )
    return (
        f"It costs {price['currency']} {figure} per key vault per month, for the vaults there now and those created "
        f"later (Microsoft's pricing page {page}, read {read})."
    )


@register("kv-defender")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    sub = str(resource["id"]).split("/")[2]
    before = (cryptward(resource, DEFENDER_BLOCK) or {}).get("properties", {}).get("pricingTier")
    if before == "Standard":
        return []
    target = defender_plan_id(sub)
    return [
        Change(
            resource_id=str(resource["id"]),
            summary=(
                f"Turn on Microsoft Defender for Key Vault for subscription {sub} (plan KeyVaults, tier Standard): "
                "it raises alerts on unusual access to every key vault of the subscription. "
                + price_text(params["price"])
            ),
            operation=Operation("PUT", target, PRICINGS_API, {"properties": {"pricingTier": "Standard"}}),
            before={PROPERTY: before},
            after={PROPERTY: "Standard"},
        )
    ]
