"""remediations/azure/prices.py against the sandbox's Retail Prices API (sandbox/providers/retailprices.py) over
HTTPS: the per-vault meter's row, what the request carries (no credential, nothing of the tenant), hostile answers
that give a reason and never a figure or a hang, the per-day keeping, the off switch and the cloud profile's
default."""

from datetime import date

import pytest

from remediations.azure import PUBLIC_PRICES, CloudProfile, Quote, RetailPrices
from remediations.errors import SettingsError

METER = {
    "serviceName": "Microsoft Defender for Cloud",
    "productName": "Microsoft Defender for Key Vault",
    "skuName": "Per node Std",
    "meterName": "Per node Std Node",
}
TODAY = date(2026, 12, 3)


@pytest.fixture
def api(sandbox):
    sandbox.reset()
    state = sandbox.admin("GET", "/_sandbox/retailprices")

    def make(**bounds):
        return RetailPrices(state["url"], ca_bundle=sandbox.ca, **bounds)

    make.url = state["url"]
    return make


def requests_seen(sandbox):
    return sandbox.admin("GET", "/_sandbox/retailprices")["requests"]


def hostile(sandbox, answer, **more):
    sandbox.admin("PUT", "/_sandbox/retailprices", {"answer": answer, **more})


def test_the_per_vault_meter_is_read_with_its_unit_currency_date_and_request(api, sandbox):
    got = api().quote(METER, "westeurope", TODAY)
    assert isinstance(got, Quote)
    assert (got.price, got.currency, got.unit, got.meter, got.region) == (0.00034, "USD", "1/Hour", METER["meterName"],
                                                                          "westeurope")  # fmt: skip
    assert got.read == "2026-12-03" and got.url.startswith(api.url + "?api-version=2023-01-01-preview&")
    assert "Standard+Transactions" not in got.url  # the legacy per-transaction meter is not the one asked for


def test_the_request_carries_no_credential_and_nothing_of_the_tenant(api, sandbox, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"  # a machine whose .netrc has a login for the host: requests would send it by default
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    api().quote(METER, "westeurope", TODAY)
    (seen,) = requests_seen(sandbox)
    assert "authorization" not in seen["headers"] and "cookie" not in seen["headers"]
    assert sandbox.subscription_id not in seen["url"] and sandbox.tenant_id not in seen["url"]
    assert "x-ms-client-request-id" not in seen["headers"]  # not an azure-core pipeline: no SDK headers either


def test_a_meter_with_no_row_in_the_region_gives_a_reason(api):
    got = api().quote(METER, "southindia", TODAY)
    meter = "meter 'Per node Std Node' of Microsoft Defender for Key Vault"
    assert got == f"the Retail Prices API gave no row for {meter} in southindia"


def test_filter_values_are_sent_as_asked_and_compared_exactly(api):
    # 2023-01-01-preview compares values case-sensitively (Learn): a wrongly cased meter matches nothing
    assert isinstance(api().quote({**METER, "meterName": "per node std node"}, "westeurope", TODAY), str)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("error500", "the Retail Prices API answered HTTP 500"),
        ("notJson", "the Retail Prices API did not answer JSON"),
        ("huge", "the Retail Prices API answered more than 2,000,000 bytes for one page"),
        ("negative", "the Retail Prices API gave no row with a valid price for meter"),
        ("endless", "the Retail Prices API gave more than 5 pages for one meter"),
    ],
)
def test_a_hostile_or_broken_answer_gives_a_reason_not_a_figure(api, sandbox, answer, why):
    hostile(sandbox, answer)
    got = api().quote(METER, "westeurope", TODAY)
    assert isinstance(got, str) and got.startswith(why)
    assert len(requests_seen(sandbox)) <= 5  # the pages are bounded


def test_a_slow_answer_is_given_up_on(api, sandbox):
    hostile(sandbox, "slow", delay=3)
    got = api(timeout=0.2, deadline=0.5).quote(METER, "westeurope", TODAY)
    assert got == "the Retail Prices API could not be reached (ReadTimeout)"


def test_a_next_page_on_another_origin_is_not_followed(api, sandbox):
    hostile(sandbox, "elsewhere")
    got = api().quote(METER, "westeurope", TODAY)
    assert got == "the Retail Prices API pointed its next page elsewhere (prices.example.net)"
    assert len(requests_seen(sandbox)) == 1


def test_a_figure_is_kept_for_the_day_and_read_again_the_next(api, sandbox):
    prices = api()
    first = prices.quote(METER, "westeurope", TODAY)
    assert prices.quote(METER, "westeurope", TODAY) == first and len(requests_seen(sandbox)) == 1
    prices.quote(METER, "westeurope", date(2026, 12, 4))
    assert len(requests_seen(sandbox)) == 2


def test_a_failure_is_asked_again_after_a_while(api, sandbox):
    hostile(sandbox, "error500")
    prices = api(retry_after=0)
    assert isinstance(prices.quote(METER, "westeurope", TODAY), str)
    hostile(sandbox, "normal")
    assert isinstance(prices.quote(METER, "westeurope", TODAY), Quote)


def test_off_asks_nothing(api, sandbox):
    got = RetailPrices(None).quote(METER, "westeurope", TODAY)
    assert got == "the Retail Prices API is not used in this cloud (CRYPTWARD_RETAIL_PRICES_URL)"
    assert requests_seen(sandbox) == []


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, PUBLIC_PRICES),  # public Azure: Microsoft's API
        ({"AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.usgovcloudapi.net/"}, None),  # a sovereign cloud: off
        ({"CRYPTWARD_RETAIL_PRICES_URL": "off"}, None),
        ({"AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:5/", "CRYPTWARD_RETAIL_PRICES_URL": "https://127.0.0.1:6/p"},
         "https://127.0.0.1:6/p"),
    ],
)  # fmt: skip
def test_the_cloud_profile_names_the_api(env, url):
    assert CloudProfile.from_env(env).retail_prices == url


def test_a_price_url_that_is_not_https_is_refused():
    with pytest.raises(SettingsError, match="CRYPTWARD_RETAIL_PRICES_URL"):
        CloudProfile.from_env({"CRYPTWARD_RETAIL_PRICES_URL": "http://prices.example/"})
