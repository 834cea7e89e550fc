"""The price a kv-defender notice quotes, end to end: the bot (its role, DefaultAzureCredential) scans a vault of the
sandbox's estate with the sandbox's Retail Prices API as its CRYPTWARD_RETAIL_PRICES_URL. The figure comes from the
API at notice time, with its unit and citation; a broken API is said plainly; the plan is never switched on without a
person's approval, whatever the mode; an audit-mode scan asks the API nothing."""

from pathlib import Path

import pytest

from remediations.azure import Azure
from remediations.engine.reader import Scope
from remediations.engine.run import scan, select
from remediations.policy.loader import load_policies
from remediations.settings import Settings

POLICIES = select(load_policies(Path(__file__).resolve().parents[2] / "policies"), ["kv-defender"])


@pytest.fixture
def bot(sandbox, grant_custom_role, monkeypatch):
    sandbox.reset("estate")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    monkeypatch.setenv("CRYPTWARD_RETAIL_PRICES_URL", sandbox.admin("GET", "/_sandbox/retailprices")["url"])
    made: list[Azure] = []
    yield lambda: made.append(Azure.from_env()) or made[-1]
    for azure in made:
        azure.close()


def vault_scan(sandbox, azure, mode, **kwargs):
    group = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu"
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/kv-weu-app"
    return scan(
        Scope((sandbox.subscription_id,)),
        POLICIES,
        settings=Settings(modes={"kv-defender": mode}),
        azure=azure,
        resource_id=vault,
        **kwargs,
    )


def price_requests(sandbox):
    return sandbox.admin("GET", "/_sandbox/retailprices")["requests"]


def plan_tier(sandbox):
    plan = f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Security/pricings/KeyVaults"
    return sandbox.running.sandbox.state.get(plan)


def test_the_notice_quotes_the_apis_figure_for_the_vaults_region_with_unit_and_citation(sandbox, bot):
    url = sandbox.admin("GET", "/_sandbox/retailprices")["url"]
    (change,) = vault_scan(sandbox, bot(), "approve").plan.changes
    assert "USD 0.00034 per 1/Hour (Microsoft's unit of measure) for meter 'Per node Std Node'" in change.summary
    assert "in westeurope" in change.summary and f"from Microsoft's Azure Retail Prices API: {url}?" in change.summary
    assert change.requires == ("approval",)
    (seen,) = price_requests(sandbox)
    assert "authorization" not in seen["headers"] and sandbox.subscription_id not in seen["url"]


def test_a_broken_api_is_said_plainly_and_remediate_mode_still_waits_for_approval(sandbox, bot):
    sandbox.admin("PUT", "/_sandbox/retailprices", {"answer": "error500"})
    report = vault_scan(sandbox, bot(), "remediate", apply=True)
    (change,) = report.plan.changes
    assert "its price could not be read: the Retail Prices API answered HTTP 500. See https://azure.microsoft.com/" in (
        change.summary
    )
    assert [r.status for r in report.results] == ["pending-approval"]
    assert plan_tier(sandbox) is None  # never written: the subscription's plan is still the default, Free


def test_once_approved_the_per_vault_plan_is_switched_on(sandbox, bot):
    azure = bot()
    (change,) = vault_scan(sandbox, azure, "approve").plan.changes
    report = vault_scan(sandbox, azure, "approve", apply=True, approved=[change.id])
    assert [r.status for r in report.results] == ["applied"]
    props = plan_tier(sandbox)["properties"]
    assert (props["pricingTier"], props["subPlan"]) == ("Standard", "PerKeyVault")
    assert len(price_requests(sandbox)) == 1  # the second scan's notice used the figure kept for the day


def test_an_audit_scan_asks_the_api_nothing(sandbox, bot):
    assert vault_scan(sandbox, bot(), "audit").plan.changes == ()
    assert price_requests(sandbox) == []
