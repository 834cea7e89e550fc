"""kv-defender's notice says what the plan costs, from the price the policy carries as data (page, date read, figure),
never a figure of its own."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediations.changes import PlanContext
from remediations.fixes.kv_defender import plan
from remediations.policy.loader import load_policies

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-0000000000aa"
VAULT = {
    "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1",
    "cryptward": {"defenderForKeyVault": {"properties": {"pricingTier": "Free"}}},
}
CTX = PlanContext(now=datetime(2026, 12, 3, tzinfo=UTC))


def shipped_price():
    (policy,) = [p for p in load_policies(ROOT / "policies") if p.id == "kv-defender"]
    assert policy.fix is not None
    return dict(policy.fix.parameters["price"])


def test_the_shipped_price_names_microsofts_page_and_the_date_it_was_read():
    price = shipped_price()
    assert price["page"] == "https://azure.microsoft.com/pricing/details/defender-for-cloud/"
    assert datetime.strptime(price["read"], "%Y-%m-%d")
    (change,) = plan(VAULT, {"price": price}, CTX)
    assert price["page"] in change.summary and price["read"] in change.summary
    assert "per key vault per month" in change.summary


@pytest.mark.parametrize("figure", [None, "9.99"])
def test_the_notice_quotes_the_figure_when_there_is_one_and_says_so_when_not(figure):
    price = {**shipped_price(), "perVaultPerMonth": figure, "currency": "USD"}
    (change,) = plan(VAULT, {"price": price}, CTX)
    if figure is None:
        assert "the figure was not read" in change.summary and "USD" not in change.summary
    else:
        assert f"USD {figure} per key vault per month" in change.summary
        assert f"read {price['read']}" in change.summary


def test_a_plan_already_on_plans_nothing():
    on = {**VAULT, "cryptward": {"defenderForKeyVault": {"properties": {"pricingTier": "Standard"}}}}
    assert plan(on, {"price": shipped_price()}, CTX) == []
