"""Microsoft's retail prices, read from the Azure Retail Prices API at the time a notice is written.

Learn, "Azure Retail Prices overview" (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices):
`GET https://prices.azure.com/api/retail/prices?api-version=2023-01-01-preview&$filter=...` needs no authentication,
answers `{BillingCurrency, CustomerEntityId, CustomerEntityType, Items, NextPageLink, Count}`, filters with `eq` and
`and` (values case-sensitive from 2023-01-01-preview on), pages by `NextPageLink`, and prices in USD ("Prices shown
in USD currency are Microsoft retail prices").

What goes out carries nothing of the tenant and no credential: a plain HTTPS GET (no Authorization, no cookie, no
.netrc, no redirect followed) whose filter names only a meter and a region. What comes back is not trusted: each page
is read within `timeout` seconds and `max_bytes` bytes, at most `max_pages` pages within `deadline` seconds, a
NextPageLink is followed only on the API's own origin, a row counts only if it names the meter asked for exactly and
has a finite price >= 0; anything else gives a reason instead of a figure. A figure is kept for the rest of the UTC
day it was read (the API's prices change by `effectiveStartDate`, not by the minute); a failure for `retry_after`
seconds. Part of remediations/azure/, the one package that talks to Azure.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode, urlsplit

PUBLIC_PRICES = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"  # Learn: filter values are case-sensitive from this version on


@dataclass(frozen=True)
class Quote:
    """One row of the API: the price of one unit of a meter in a region, and where and when it was read."""

    price: float  # retailPrice
    currency: str  # currencyCode
    unit: str  # unitOfMeasure, as Microsoft writes it ("1/Hour", "10K", ...)
    meter: str  # meterName
    product: str  # productName
    sku: str  # skuName
    service: str  # serviceName
    region: str  # armRegionName
    effective: str  # effectiveStartDate
    read: str  # the UTC date it was read (ISO)
    url: str  # the request that gave it: the citation

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def odata_filter(meter: Mapping[str, str], region: str) -> str:
    """`name eq 'value' and ...` for the meter's fields, the region and the consumption price (OData doubles a
    quote inside a literal)."""
    fields = {**meter, "armRegionName": region, "priceType": "Consumption"}
    return " and ".join(f"{k} eq '{str(v).replace(chr(39), chr(39) * 2)}'" for k, v in fields.items())


class RetailPrices:
    """The API at `url` (None: off, as in clouds it does not price), with the bounds above."""

    def __init__(
        self,
        url: str | None,
        *,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
        max_pages: int = 5,
        max_bytes: int = 2_000_000,
        retry_after: float = 300.0,
        user_agent: str = "cryptward",
    ) -> None:
        self.url = url
        self.ca_bundle = ca_bundle
        self.timeout, self.deadline, self.max_pages, self.max_bytes = timeout, deadline, max_pages, max_bytes
        self.retry_after = retry_after
        self.user_agent = user_agent
        self._kept: dict[str, tuple[str, float, Quote | str]] = {}  # request URL -> (day, monotonic time, result)
        self._lock = threading.Lock()

    def request_url(self, meter: Mapping[str, str], region: str) -> str:
        assert self.url is not None
        return f"{self.url}?{urlencode({'api-version': API_VERSION, '$filter': odata_filter(meter, region)})}"

    def quote(self, meter: Mapping[str, str], region: str, today: date) -> Quote | str:
        """The meter's price in `region` (lower-case ARM region name), or why there is none."""
        if not self.url:
            return "the Retail Prices API is not used in this cloud (CRYPTWARD_RETAIL_PRICES_URL)"
        url, day = self.request_url(meter, region), today.isoformat()
        with self._lock:
            kept = self._kept.get(url)
            fresh = kept is not None and (isinstance(kept[2], Quote) or time.monotonic() - kept[1] < self.retry_after)
            if kept is not None and fresh and kept[0] == day:
                return kept[2]
        result = self._read(url, meter, region, day)
        with self._lock:
            self._kept = {u: k for u, k in self._kept.items() if k[0] == day}
            self._kept[url] = (day, time.monotonic(), result)
        return result

    def _read(self, url: str, meter: Mapping[str, str], region: str, day: str) -> Quote | str:
        import requests

        origin = urlsplit(url)[:2]
        ends = time.monotonic() + self.deadline
        rows: list[Mapping[str, Any]] = []
        with requests.Session() as session:
            session.trust_env = False  # no .netrc credential, no environment CA or proxy but those given below
            link: str | None = url
            for _ in range(self.max_pages):
                if link is None:
                    break
                if urlsplit(link)[:2] != origin:
                    return f"the Retail Prices API pointed its next page elsewhere ({urlsplit(link).netloc})"
                page = self._page(session, link, ends)
                if isinstance(page, str):
                    return page
                items, link = page.get("Items"), page.get("NextPageLink")
                if not isinstance(items, list) or not (link is None or isinstance(link, str)):
                    return "the Retail Prices API answered without Items or with a NextPageLink that is not a URL"
                rows += [r for r in items if isinstance(r, Mapping)]
            else:
                if link:
                    return f"the Retail Prices API gave more than {self.max_pages} pages for one meter"
        return choose(rows, meter, region, day, url)

    def _page(self, session: Any, link: str, ends: float) -> dict[str, Any] | str:
        import requests

        left = ends - time.monotonic()
        if left <= 0:
            return f"the Retail Prices API did not answer within {self.deadline:g} s"
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        try:
            with session.get(
                link,
                headers=headers,
                timeout=(min(self.timeout, left), min(self.timeout, left)),
                stream=True,
                allow_redirects=False,
                verify=self.ca_bundle or True,
                proxies=requests.utils.get_environ_proxies(link),
            ) as r:
                if r.status_code != 200:
                    return f"the Retail Prices API answered HTTP {r.status_code}"
                body = bytearray()
                for chunk in r.iter_content(65536):
                    body += chunk
                    if len(body) > self.max_bytes:
                        return f"the Retail Prices API answered more than {self.max_bytes:,} bytes for one page"
                    if time.monotonic() > ends:
                        return f"the Retail Prices API did not answer within {self.deadline:g} s"
        except requests.RequestException as e:
            return f"the Retail Prices API could not be reached ({type(e).__name__})"
        try:
            page = json.loads(body)
        except ValueError:
            return "the Retail Prices API did not answer JSON"
        return page if isinstance(page, dict) else "the Retail Prices API did not answer a JSON object"


def choose(rows: list[Mapping[str, Any]], meter: Mapping[str, str], region: str, day: str, url: str) -> Quote | str:
    """The row that prices the meter in the region today: its fields exactly as asked, a consumption price of the
    first tier, a finite retailPrice >= 0, in effect by `day`; the latest in effect. None fitting, or two different
    prices in effect from the same date: a reason instead."""
    fits = [
        r
        for r in rows
        if all(r.get(k) == v for k, v in meter.items())
        and r.get("armRegionName") == region
        and r.get("type", "Consumption") == "Consumption"
        and r.get("tierMinimumUnits", 0) in (0, 0.0)
        and str(r.get("effectiveStartDate") or "")[:10] <= day
    ]
    priced = [r for r in fits if _price(r) is not None and isinstance(r.get("unitOfMeasure"), str)]
    name = f"meter '{meter.get('meterName')}' of {meter.get('productName')} in {region}"
    if not priced:
        bad = " with a valid price" if fits else ""
        return f"the Retail Prices API gave no row{bad} for {name}"
    latest = max(str(r.get("effectiveStartDate") or "") for r in priced)
    now = [r for r in priced if str(r.get("effectiveStartDate") or "") == latest]
    if len({(_price(r), r.get("currencyCode"), r.get("unitOfMeasure")) for r in now}) > 1:
        return f"the Retail Prices API gave different prices for {name} from the same date"
    r = now[0]
    return Quote(
        price=float(_price(r) or 0.0),
        currency=str(r.get("currencyCode") or ""),
        unit=str(r["unitOfMeasure"]),
        meter=str(r.get("meterName")),
        product=str(r.get("productName")),
        sku=str(r.get("skuName")),
        service=str(r.get("serviceName")),
        region=region,
        effective=latest[:10],
        read=day,
        url=url,
    )


def _price(row: Mapping[str, Any]) -> float | None:
    value = row.get("retailPrice")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


__all__ = ["API_VERSION", "PUBLIC_PRICES", "Quote", "RetailPrices", "choose", "odata_filter"]
