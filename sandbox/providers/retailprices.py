"""The Azure Retail Prices API (`GET https://prices.azure.com/api/retail/prices?$filter=...`) on its own origin.

Learn, "Azure Retail Prices overview" (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices):
unauthenticated; `$filter` with `eq` and `and` on the item fields; values are case-sensitive from api-version
2023-01-01-preview on ("In previous API versions, the filter values weren't case-sensitive"); `currencyCode='EUR'`
asks for another currency (USD is Microsoft's retail price, others for reference); the answer is `{BillingCurrency,
CustomerEntityId, CustomerEntityType, Items, NextPageLink, Count}`. Real answers recorded by others are in
tests/conformance/retailprices/ (an answer with items: TheCloudTheory/arm-estimator's saved Key Vault prices; an
empty one: Microsoft Q&A 348412), and tests/conformance/test_retail_prices.py holds this module to their shape.

In Azure the API has its own host; on loopback the sandbox gives it its own port (sandbox/listeners.py, as each vault
has), so the bot reaches it by the URL it is configured with, never by ARM's. The admin API
(`/_sandbox/retailprices`) gives that URL, the requests received (to prove what the bot sends) and lets a test make the
answers hostile (huge, not JSON, negative prices, 500, endless NextPageLink, slow).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from sandbox.arm import ArmError

if TYPE_CHECKING:
    from starlette.requests import Request

    from sandbox.server import Sandbox

HOST = "prices.azure.com"  # the listener's name (a vault's name cannot hold a dot, so no vault takes this port)
PATH = "/api/retail/prices"
PREVIEW = "2023-01-01-preview"  # Learn: case-sensitive filter values from this version on
# Microsoft Q&A 1188465 (2023-03-10): "NextPageLink ... e.g. ...&$skip=100", "If it's 100, then increment the skip":
# a page of 100 items. Learn's current page may say more per page. # unverified for today's API
PAGE = 100
ANSWERS = ("normal", "huge", "notJson", "negative", "endless", "elsewhere", "error500", "slow")

_DEFENDER = {
    # Names: infracost/infracost internal/resources/azure/security_center_subscription_pricing.go (commit fceec8c9),
    # addKeyVaultCostComponent; tests/conformance/retailprices/defender-keyvault-meter.json.
    "currencyCode": "USD",
    "tierMinimumUnits": 0.0,
    "serviceName": "Microsoft Defender for Cloud",
    "serviceFamily": "Security",
    "productName": "Microsoft Defender for Key Vault",
    "skuName": "Per node Std",
    "meterName": "Per node Std Node",
    # An hourly meter (infracost multiplies it by 730 h); the exact unit string is # unverified
    "unitOfMeasure": "1/Hour",
    # Derived, not recorded: infracost's golden output at commit da0a5862 gives $0.25 per key vault a month and
    # $3.23 for 13 vaults, i.e. 0.00034 a vault-hour at 730 h. # unverified as a row of the API
    "retailPrice": 0.00034,
    "unitPrice": 0.00034,
    "effectiveStartDate": "2024-01-01T00:00:00Z",  # unverified
    "type": "Consumption",
    "isPrimaryMeterRegion": True,  # unverified
    "armSkuName": "",
    # Ids of the sandbox's own making (the real ones were not found). # unverified
    "meterId": "00000000-0000-0000-0000-00000000d4kv",
    "productId": "SANDBOXD4KV01",
    "skuId": "SANDBOXD4KV01/0001",
    "serviceId": "SANDBOXMDC001",
}
_LEGACY = {
    # The per-transaction plan's meter: infracost security_center_subscription_pricing.go at commit 237ebfaf
    # (Service 'Advanced Threat Protection', meterName 'Standard Transactions', "10K transactions").
    **_DEFENDER,
    "serviceName": "Advanced Threat Protection",
    "skuName": "Standard",
    "meterName": "Standard Transactions",
    "unitOfMeasure": "10K",  # unverified string; infracost says "10K transactions"
    "retailPrice": 0.02,  # unverified: third parties' figure (e.g. "~$0.02 USD/10k ops"), no recorded row
    "unitPrice": 0.02,
    "meterId": "00000000-0000-0000-0000-00000000d4tx",
    "skuId": "SANDBOXD4KV01/0002",
    "serviceId": "SANDBOXATP001",
}
# Regions: westus2 is the region infracost reads the meter in; the others are the sandbox's regions, assumed to carry
# the same price (# unverified). `location` names as the recorded Key Vault answer spells westeurope ("EU West").
_REGIONS = {
    "westus2": "US West 2",
    "westeurope": "EU West",
    "northeurope": "EU North",
    "eastus": "US East",
}


def _recorded_keyvault() -> list[dict[str, Any]]:
    """The five Key Vault rows of the recorded answer (TheCloudTheory/arm-estimator, commit 03b990f4), as recorded."""
    return [
        _kv("0e2483c4-e549-4bdf-9f33-82fdfe3abb54", "Advanced Key Operations", 0.15, "10K", "2017-07-01", False),
        _kv("7599d960-db10-5314-8b70-8e0a8e395ca1", "Automated Key Rotation", 1.0, "1 Rotation", "2022-03-01", True),
        _kv("71fed9c3-4ac4-44e8-93ce-786bbac5a1c5", "Secret Renewal", 1.0, "1", "2017-06-01", False),
        _kv("0f824807-2376-435c-95c9-f992b67a07b0", "Operations", 0.03, "10K", "2015-08-01", False),
        _kv("ff92c14c-af83-412e-9144-a2542dfe0b4f", "Certificate Renewal Request", 3.0, "1", "2016-12-01", False),
    ]


def _kv(meter: str, name: str, price: float, unit: str, start: str, primary: bool) -> dict[str, Any]:
    return {
        "currencyCode": "USD",
        "tierMinimumUnits": 0.0,
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": "westeurope",
        "location": "EU West",
        "effectiveStartDate": f"{start}T00:00:00Z",
        "meterId": meter,
        "meterName": name,
        "productId": "DZH318Z0BQG0",
        "skuId": "DZH318Z0BQG0/003C",
        "productName": "Key Vault",
        "skuName": "Standard",
        "serviceName": "Key Vault",
        "serviceId": "DZH3157JCZ2M",
        "serviceFamily": "Security",
        "unitOfMeasure": unit,
        "type": "Consumption",
        "isPrimaryMeterRegion": primary,
        "armSkuName": "",
    }


def default_rows() -> list[dict[str, Any]]:
    rows = _recorded_keyvault()
    for region, location in _REGIONS.items():
        for row in (_DEFENDER, _LEGACY):
            rows.append({**row, "armRegionName": region, "location": location})
    return rows


class Prices:
    """The API's rows and the test knobs: how it answers, and what it was asked."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.rows: list[dict[str, Any]] = default_rows()
        self.answer = "normal"
        self.delay = 0.0  # seconds the "slow" answer waits
        self.requests: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.rows, self.answer, self.delay, self.requests = default_rows(), "normal", 0.0, []

    @property
    def url(self) -> str:
        """The API's own origin: its port is bound on first use, once the sandbox's own port is (as a vault's is)."""
        return f"https://127.0.0.1:{self.sb.listeners.port_for(HOST)}{PATH}"


_CLAUSE = re.compile(r"^\s*([A-Za-z]+)\s+eq\s+'((?:[^']|'')*)'\s*$")


def parse_filter(text: str) -> list[tuple[str, str]]:
    """`field eq 'value' and field eq 'value'` as (field, value) pairs; ValueError for anything else (the sandbox
    serves `eq` and `and` only, the operators Cryptward sends)."""
    if not text.strip():
        return []
    clauses = re.split(r"\s+and\s+", text.strip())
    out = []
    for clause in clauses:
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(clause)
        out.append((m.group(1), m.group(2).replace("''", "'")))
    return out


# Filter names that are not item keys: Learn's examples filter `priceType eq 'Reservation'`, the items' key is `type`
# (and the recorded ACE request filters `priceType eq 'Consumption'`).
ALIASES = {"pricetype": "type"}


def _matches(row: dict[str, Any], clauses: list[tuple[str, str]], exact: bool) -> bool:
    for field, value in clauses:
        # Field names compared without case (# unverified); values as Learn says for the api-version.
        name = ALIASES.get(field.lower(), field.lower())
        key = next((k for k in row if k.lower() == name), None)
        if key is None or not isinstance(row[key], str):
            return False
        if (row[key] != value) if exact else (row[key].casefold() != value.casefold()):
            return False
    return True


def _error(status: int, message: str) -> Response:
    # The error body of the API is # unverified (no recorded error answer found).
    return JSONResponse({"Error": {"Code": "BadRequest" if status == 400 else "NotFound", "Message": message}}, status)


async def handle(sb: Sandbox, request: Request) -> Response:
    prices: Prices = sb.retail_prices  # type: ignore[attr-defined]
    if sb.listeners.name_for(request.url.port) != HOST or request.url.path.rstrip("/") != PATH:
        raise ArmError(404, "NotFound", f"The resource '{request.url.path}' was not found.")  # not this origin's path
    prices.requests.append({"url": str(request.url), "headers": dict(request.headers)})
    del prices.requests[:-50]
    if request.method != "GET":
        return _error(405, "Only GET is served.")  # unverified
    answer = prices.answer
    if answer == "error500":
        return JSONResponse({"Error": {"Code": "InternalServerError", "Message": "sandbox: a hostile answer"}}, 500)
    if answer == "notJson":
        return Response("<html><body>Service Unavailable</body></html>", 200, media_type="text/html")
    if answer == "slow":
        await asyncio.sleep(prices.delay)
    query = request.query_params
    exact = (query.get("api-version") or "") >= PREVIEW
    try:
        clauses = parse_filter(query.get("$filter") or "")
    except ValueError as exc:
        return _error(400, f"Invalid OData parameters supplied: {exc}")  # unverified wording
    currency = (query.get("currencyCode") or "'USD'").strip("'")
    if currency.upper() != "USD":
        return _error(400, f"The sandbox serves USD prices only, not {currency!r}.")  # a sandbox limit
    rows = [r for r in prices.rows if _matches(r, clauses, exact)]
    skip = int(query.get("$skip") or 0)
    page = [copy.deepcopy(r) for r in rows[skip : skip + PAGE]]
    more = skip + PAGE < len(rows)
    if answer == "negative":
        for r in page:
            r["retailPrice"] = r["unitPrice"] = -abs(float(r["retailPrice"])) - 1
    if answer == "endless":
        page = [copy.deepcopy(r) for r in rows[:1]]
        more = True
    body: dict[str, Any] = {
        "BillingCurrency": "USD",
        "CustomerEntityId": "Default",
        "CustomerEntityType": "Retail",
        "Items": page,
        "NextPageLink": _next(request, skip + PAGE) if more else None,
        "Count": len(page),
    }
    if answer == "elsewhere":  # a NextPageLink on another host
        body["NextPageLink"] = f"https://prices.example.net{PATH}?$skip={skip + PAGE}"
    if answer == "huge":
        body["Items"] = [*page, *({"padding": "x" * 1000, "n": i} for i in range(20_000))]  # ~20 MB
        return Response(json.dumps(body), 200, media_type="application/json")
    return JSONResponse(body)


def _next(request: Request, skip: int) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "$skip"}
    params["$skip"] = str(skip)
    query = urlencode(params, safe="$'")
    return f"{request.url.scheme}://{request.url.netloc}{PATH}?{query}"


def admin_table(sb: Sandbox) -> list[tuple[str, Callable[[Request, Any], Any], list[str]]]:
    prices: Prices = sb.retail_prices  # type: ignore[attr-defined]

    def state(request: Request, body: Any) -> dict[str, Any]:
        if request.method == "PUT":
            unknown = set(body) - {"answer", "rows", "delay"}
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)}; valid: answer, rows, delay")
            if "answer" in body:
                if body["answer"] not in ANSWERS:
                    raise ValueError(f"answer must be one of {', '.join(ANSWERS)}")
                prices.answer = body["answer"]
            if "rows" in body:
                prices.rows = [dict(r) for r in body["rows"]]
            if "delay" in body:
                prices.delay = float(body["delay"])
        elif request.method == "DELETE":
            prices.reset()
        return {"url": prices.url, "answer": prices.answer, "rows": len(prices.rows), "requests": prices.requests}

    return [("/_sandbox/retailprices", state, ["GET", "PUT", "DELETE"])]


def install(sb: Sandbox) -> None:
    sb.retail_prices = Prices(sb)  # type: ignore[attr-defined]
    sb.state.on_reset(sb.retail_prices.reset)  # type: ignore[attr-defined]
    sb.hooks.data_plane("api", handle)  # requests on /api/... ; only the API's own port answers them
    sb.hooks.admin(admin_table)
