"""Turn on the subscription's Microsoft Defender for Key Vault plan, per key vault (pricingTier Standard, subPlan
PerKeyVault).

The write is `PUT /subscriptions/{s}/providers/Microsoft.Security/pricings/KeyVaults` with
`{"properties": {"pricingTier": "Standard", "subPlan": "PerKeyVault"}}` (azure-rest-api-specs, Microsoft.Security
stable/2024-01-01, Pricings_Update; ListPricings_example.json shows KeyVaults on `subPlan: PerKeyVault`; pricings.json:
"When not specified, full plan is applied", so the sub-plan is named: the price quoted is the plan switched on). Each
vault's finding plans the write (the change is the vault's, as the report counts it); once one is applied, the others
find the plan on and write nothing.

It costs money: Defender for Cloud's recommendation "Microsoft Defender for Key Vault should be enabled" says that
once on, the subscription's vaults, present and future, are billed (Learn, recommendations-reference-data, read
2026-12-03). The notice quotes the price of the plan's meter (the fix's `price.retail` parameter in
policies/kv-defender/policy.yaml) in the vault's region, as the Azure Retail Prices API gave it when the notice was
made (`ctx.prices`, read by remediations/engine/prices.py): figure, currency, Microsoft's unit as written, meter, date
read and the request as its citation. Without a row it says why and names the pricing page; a figure from the policy
(`perVaultPerMonth`, with its page and date) is quoted only if one was read from Microsoft. Either way the change
waits for a person's approval, whatever the policy's mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import APPROVAL, Change, Operation, PlanContext
from remediations.fixes import register
from remediations.resources import DEFENDER_BLOCK, PRICINGS_API, cryptward, defender_plan_id

NAME = "kv-defender"
TIER, SUB_PLAN = "properties.pricingTier", "properties.subPlan"
PLAN = "PerKeyVault"
API = "Microsoft's Azure Retail Prices API"


def price_text(price: Mapping[str, Any], quote: Mapping[str, Any] | str | None) -> str:
    """What the plan costs: the Retail Prices API's row (`quote`), else why not and the policy's own figure if it has
    one read from Microsoft's page, else the page to read."""
    billed = "It is billed for each key vault of the subscription, those there now and those created later"
    if isinstance(quote, Mapping):
        return (
            f"{billed}: {quote['currency']} {quote['price']:g} per {quote['unit']} (Microsoft's unit of measure) for "
            f"meter '{quote['meter']}' of {quote['product']} ({quote['service']}, sku '{quote['sku']}') in "
            f"{quote['region']}, in effect since {quote['effective']}, read {quote['read']} from {API}: {quote['url']}"
        )
    why = quote if isinstance(quote, str) else f"it was not asked of {API}"
    page, read, figure = price["page"], price["read"], price.get("perVaultPerMonth")
    if figure is None and quote is None:
        return f"{billed}; its price was not read from {API}. See {page} before approving."
    if figure is None:
        return f"{billed}; its price could not be read: {why}. See {page} before approving."
    return (
        f"{billed}; the current price could not be read ({why}); Microsoft's pricing page {page} gave "
        f"{price['currency']} {figure} per key vault per month when read {read}."
    )


@register(NAME)
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    sub = str(resource["id"]).split("/")[2]
    props = (cryptward(resource, DEFENDER_BLOCK) or {}).get("properties", {})
    before = props.get("pricingTier")
    if before == "Standard":
        return []
    region = str(resource.get("location") or "").lower().replace(" ", "")
    return [
        Change(
            resource_id=str(resource["id"]),
            summary=(
                f"Turn on Microsoft Defender for Key Vault for subscription {sub} (plan KeyVaults, tier Standard, "
                f"sub-plan {PLAN}): it raises alerts on unusual access to every key vault of the subscription. "
                + price_text(params["price"], ctx.prices.get((NAME, region)))
            ),
            operation=Operation(
                "PUT", defender_plan_id(sub), PRICINGS_API, {"properties": {"pricingTier": "Standard", "subPlan": PLAN}}
            ),
            before={TIER: before, SUB_PLAN: props.get("subPlan")},
            after={TIER: "Standard", SUB_PLAN: PLAN},
            requires=(APPROVAL,),  # it costs money: a person decides, in every mode
        )
    ]
