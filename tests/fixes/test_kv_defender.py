"""kv-defender's notice says what the plan costs from the Azure Retail Prices API's row read for the vault's region
(`ctx.prices`), never a figure of its own; without a row it says why and names Microsoft's page; the change always
waits for a person's approval and switches on the sub-plan whose price it quotes."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediations.changes import APPROVAL, PlanContext
from remediations.fixes.kv_defender import plan
from remediations.policy.loader import load_policies

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-0000000000aa"
VAULT = {
    "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1",
    "location": "westeurope",
    "cryptward": {"defenderForKeyVault": {"properties": {"pricingTier": "Free"}}},
}
NOW = datetime(2026, 12, 3, tzinfo=UTC)
URL = "https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&%24filter=..."
QUOTE = {
    "price": 0.00034,
    "currency": "USD",
    "unit": "1/Hour",
    "meter": "Per node Std Node",
    "product": "Microsoft Defender for Key Vault",
    "sku": "Per node Std",
    "service": "Microsoft Defender for Cloud",
    "region": "westeurope",
    "effective": "2024-01-01",
    "read": "2026-12-03",
    "url": URL,
}


def shipped_price():
    (policy,) = [p for p in load_policies(ROOT / "policies") if p.id == "kv-defender"]
    assert policy.fix is not None
    return dict(policy.fix.parameters["price"])


def one(price, prices):
    (change,) = plan(VAULT, {"price": price}, PlanContext(now=NOW, prices=prices))
    return change


def test_the_shipped_price_names_the_meter_microsofts_page_and_no_figure_of_its_own():
    price = shipped_price()
    assert price["retail"] == {
        "serviceName": "Microsoft Defender for Cloud",
        "productName": "Microsoft Defender for Key Vault",
        "skuName": "Per node Std",
        "meterName": "Per node Std Node",
    }
    assert price["page"] == "https://azure.microsoft.com/pricing/details/defender-for-cloud/"
    assert price["perVaultPerMonth"] is None  # no figure published by Microsoft was found to ship


def test_the_notice_quotes_the_apis_row_for_the_vaults_region_with_its_unit_and_citation():
    summary = one(shipped_price(), {("kv-defender", "westeurope"): QUOTE}).summary
    assert "USD 0.00034 per 1/Hour (Microsoft's unit of measure)" in summary
    assert "meter 'Per node Std Node' of Microsoft Defender for Key Vault" in summary and "in westeurope" in summary
    assert "read 2026-12-03 from Microsoft's Azure Retail Prices API: " + URL in summary
    assert "per month" not in summary  # the unit is Microsoft's, not turned into another


def test_another_regions_row_is_not_quoted():
    summary = one(shipped_price(), {("kv-defender", "westus2"): {**QUOTE, "region": "westus2"}}).summary
    assert "USD" not in summary and "its price was not read from Microsoft's Azure Retail Prices API" in summary


@pytest.mark.parametrize("why", ["the Retail Prices API answered HTTP 500", "the Retail Prices API is not used here"])
def test_without_a_row_the_notice_says_why_and_names_the_page(why):
    summary = one(shipped_price(), {("kv-defender", "westeurope"): why}).summary
    page = "https://azure.microsoft.com/pricing/details/defender-for-cloud/"
    assert f"its price could not be read: {why}. See {page} before approving." in summary
    assert "USD" not in summary


def test_a_figure_read_from_microsofts_page_is_quoted_with_its_page_and_date_when_the_api_gives_none():
    price = {**shipped_price(), "perVaultPerMonth": "9.99", "read": "2026-11-30"}
    summary = one(price, {("kv-defender", "westeurope"): "the Retail Prices API answered HTTP 500"}).summary
    assert "gave USD 9.99 per key vault per month when read 2026-11-30" in summary
    assert "(the Retail Prices API answered HTTP 500)" in summary


@pytest.mark.parametrize("prices", [{}, {("kv-defender", "westeurope"): QUOTE}])
def test_the_change_switches_on_the_per_vault_plan_and_always_waits_for_approval(prices):
    change = one(shipped_price(), prices)
    assert change.operation.body == {"properties": {"pricingTier": "Standard", "subPlan": "PerKeyVault"}}
    assert change.requires == (APPROVAL,)
    assert change.after == {"properties.pricingTier": "Standard", "properties.subPlan": "PerKeyVault"}


def test_a_plan_already_on_plans_nothing():
    on = {**VAULT, "cryptward": {"defenderForKeyVault": {"properties": {"pricingTier": "Standard"}}}}
    assert plan(on, {"price": shipped_price()}, PlanContext(now=NOW)) == []
