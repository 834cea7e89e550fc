"""The prices the notices of this plan quote, read before planning (a fix does no I/O): for each finding whose fix
carries a `price.retail` meter (policies/*/policy.yaml, e.g. kv-defender) and would be planned (not audit mode), the
meter's price in the resource's region from the Azure Retail Prices API (remediations/azure/prices.py), once per fix
and region, read when the notice is made and kept for the day by `azure.prices`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from remediations.azure import Azure, Quote
from remediations.engine.planner import Finding
from remediations.policy.model import Policy


def retail_meter(fix_parameters: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The meter a fix's `price` parameter names (`price.retail`: serviceName, productName, skuName, meterName)."""
    price = fix_parameters.get("price")
    meter = price.get("retail") if isinstance(price, Mapping) else None
    return meter if isinstance(meter, Mapping) and meter else None


def wanted(findings: Iterable[Finding]) -> dict[tuple[str, str], Mapping[str, str]]:
    """(fix name, lower-case region) -> meter, for the findings whose change would be planned and quote a price."""
    out: dict[tuple[str, str], Mapping[str, str]] = {}
    for f in findings:
        policy = f.policy
        mode = (f.mode or policy.mode) if policy.enforced else "audit"
        if policy.fix is None or mode == "audit" or f.unreadable or f.fix_unreadable:
            continue
        meter = retail_meter(policy.fix.parameters)
        region = str(f.resource.get("location") or "").lower().replace(" ", "")
        if meter is not None and region:
            out.setdefault((policy.fix.name, region), meter)
    return out


def wanted_before(
    resources: Iterable[Mapping[str, Any]], policies: Iterable[Policy], modes: Mapping[str, str]
) -> dict[tuple[str, str], Mapping[str, str]]:
    """`wanted` before evaluation (a streamed scan plans each finding as it is made, so its prices are read first):
    (fix name, region) for each region of the resources a pricing policy applies to, outside audit mode. A region
    with no finding is read too: one quote per region and day, which `azure.prices` keeps."""
    pricing = []
    for policy in policies:
        mode = modes.get(policy.id) or policy.mode
        meter = retail_meter(policy.fix.parameters) if policy.fix is not None else None
        if meter is not None and policy.enforced and mode != "audit":
            pricing.append((policy, meter))
    out: dict[tuple[str, str], Mapping[str, str]] = {}
    if not pricing:
        return out
    for resource in resources:
        region = str(resource.get("location") or "").lower().replace(" ", "")
        for policy, meter in pricing:
            if region and policy.fix is not None and policy.applies_to(resource):
                out.setdefault((policy.fix.name, region), meter)
    return out


def read(
    azure: Azure,
    meters: Mapping[tuple[str, str], Mapping[str, str]],
    now: datetime,
    progress: Callable[[str], None] | None = None,
) -> dict[tuple[str, str], Mapping[str, Any] | str]:
    """Each price `wanted` or `wanted_before` chose: the API's row as a dict, or why there is none (said in the
    notice as it is)."""
    out: dict[tuple[str, str], Mapping[str, Any] | str] = {}
    for (fix, region), meter in meters.items():
        if progress:
            progress(f"retail price of {meter.get('meterName')} in {region}")
        got = azure.prices.quote(meter, region, now.date())
        out[(fix, region)] = got.as_dict() if isinstance(got, Quote) else got
    return out


__all__ = ["read", "retail_meter", "wanted", "wanted_before"]
