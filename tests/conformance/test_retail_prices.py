"""The sandbox's Retail Prices API (sandbox/providers/retailprices.py) against real answers recorded by others
(tests/conformance/retailprices/): the same request gets an answer of the same shape, and the recorded Key Vault rows
come back as recorded. Also Learn's rules the bot relies on: case-sensitive values from 2023-01-01-preview, paging by
NextPageLink, no credential needed."""

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.conformance.shapes import differences

HERE = Path(__file__).parent / "retailprices"
RECORDED = sorted(p.name for p in HERE.glob("*.json") if "body" in json.loads(p.read_text()))


@pytest.fixture
def prices(sandbox):
    sandbox.reset()
    url = sandbox.admin("GET", "/_sandbox/retailprices")["url"]
    with httpx.Client(verify=sandbox.ssl, timeout=30) as client:
        yield url, client


def _ask(prices, recorded_url: str) -> httpx.Response:
    url, client = prices
    return client.get(url, params=parse_qsl(urlsplit(recorded_url).query, keep_blank_values=True))


@pytest.mark.parametrize("name", RECORDED)
def test_the_sandbox_answers_a_recorded_request_in_the_recorded_shape(prices, name):
    rec = json.loads((HERE / name).read_text())
    r = _ask(prices, rec["request"]["url"])
    assert r.status_code == rec["status"]
    assert differences(rec["body"], r.json(), ignore=("$.NextPageLink",)) == []


def test_the_recorded_key_vault_rows_come_back_as_recorded(prices):
    rec = json.loads((HERE / "keyvault-westeurope.json").read_text())
    got = _ask(prices, rec["request"]["url"]).json()
    key = lambda i: i["meterName"]  # noqa: E731
    assert sorted(got["Items"], key=key) == sorted(rec["body"]["Items"], key=key)
    assert got["Count"] == len(rec["body"]["Items"]) and got["NextPageLink"] is None


def test_the_defender_meter_the_bot_asks_for_is_served_with_its_recorded_names(prices):
    meter = json.loads((HERE / "defender-keyvault-meter.json").read_text())["meter"]
    url, client = prices
    flt = " and ".join(f"{k} eq '{v}'" for k, v in meter.items()) + " and armRegionName eq 'westus2'"
    items = client.get(url, params={"api-version": "2023-01-01-preview", "$filter": flt}).json()["Items"]
    assert len(items) == 1 and all(items[0][k] == v for k, v in meter.items())


def test_filter_values_are_case_sensitive_from_2023_01_01_preview_only(prices):
    url, client = prices
    flt = "serviceName eq 'key vault' and armRegionName eq 'westeurope'"
    assert client.get(url, params={"api-version": "2023-01-01-preview", "$filter": flt}).json()["Items"] == []
    assert len(client.get(url, params={"$filter": flt}).json()["Items"]) == 5


def test_a_long_answer_pages_by_next_page_link(prices, sandbox):
    url, client = prices
    row = json.loads((HERE / "keyvault-westeurope.json").read_text())["body"]["Items"][0]
    sandbox.admin("PUT", "/_sandbox/retailprices", {"rows": [{**row, "meterId": str(i)} for i in range(250)]})
    seen, page, pages = [], client.get(url, params={"$filter": "serviceName eq 'Key Vault'"}).json(), 1
    while True:
        seen += [i["meterId"] for i in page["Items"]]
        assert page["Count"] == len(page["Items"])
        if not page["NextPageLink"]:
            break
        assert page["NextPageLink"].startswith(url + "?")
        page, pages = client.get(page["NextPageLink"]).json(), pages + 1
    assert seen == [str(i) for i in range(250)] and pages == 3


def test_only_the_apis_own_origin_serves_it(prices, sandbox):
    _, client = prices
    assert client.get(sandbox.base_url.rstrip("/") + "/api/retail/prices").status_code == 404
