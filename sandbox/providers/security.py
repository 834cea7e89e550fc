"""Microsoft.Security/pricings: a subscription's Microsoft Defender for Cloud plans (Free or Standard).

Shapes: azure-rest-api-specs specification/security/resource-manager/Microsoft.Security/stable/2024-01-01/pricings.json
and its examples (Pricings/ListPricings_example.json, PutPricingByName_example.json): a plan is
`{id, name, type, properties: {pricingTier, freeTrialRemainingTime, enablementTime?, enforce, resourcesCoverageStatus}}`
at `/subscriptions/{s}/providers/Microsoft.Security/pricings/{name}`. Every subscription has every plan: one never set
answers Free (Learn, Defender for Cloud: "By default, the Microsoft Defender plan is off" # unverified wording). A PUT
answers 200 with the plan (the example answers 200 and 201 alike; the sandbox answers 201 on the first PUT of a plan).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register

TYPE = "Microsoft.Security/pricings"
PRICING_API = ("2018-06-01", "2022-03-01", "2023-01-01", "2024-01-01")
# The plans of ListPricings_example.json, in its order.
PLANS = (
    "VirtualMachines",
    "SqlServers",
    "AppServices",
    "StorageAccounts",
    "SqlServerVirtualMachines",
    "KubernetesService",
    "ContainerRegistry",
    "KeyVaults",
    "Dns",
    "Arm",
    "OpenSourceRelationalDatabases",
    "Containers",
    "CloudPosture",
)
TIERS = ("Free", "Standard")  # pricings.json, pricingTier enum


def _subscription_of(scope: str) -> str:
    parts = scope.strip("/").split("/")
    if len(parts) != 2 or parts[0].lower() != "subscriptions":
        # pricings.json: scopeId is a subscription or a VM-like resource; Cryptward reads only subscriptions
        raise ArmError(400, "InvalidScope", f"The scope '{scope}' is not supported for pricings.")  # unverified
    return f"/subscriptions/{parts[1]}"


def _plan(name: str) -> str:
    known = next((p for p in PLANS if p.lower() == name.lower()), None)
    if known is None:
        raise ArmError(404, "PricingNotFound", f"The pricing '{name}' was not found.")  # unverified
    return known


def _default(sub: str, name: str) -> dict[str, Any]:
    return {
        "id": f"{sub}/providers/{TYPE}/{name}",
        "name": name,
        "type": TYPE,
        "properties": {
            "pricingTier": "Free",
            "freeTrialRemainingTime": "PT0S",
            "enforce": "False",
            "resourcesCoverageStatus": "NotCovered",
        },
    }


@register
class Pricings(ResourceType):
    type = TYPE
    api_versions = PRICING_API
    extension = True

    def current(self, call: Call) -> dict[str, Any] | None:
        return call.state.get(call.path.id) if call.path.id else None

    def read(self, call: Call) -> dict[str, Any]:
        sub, name = _subscription_of(call.path.parent), _plan(call.path.name or "")
        return self.view(call, call.state.get(call.path.id) or _default(sub, name))

    def exists(self, state: Any, resource_id: str) -> bool:
        return True

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        sub, name = _subscription_of(call.path.parent), _plan(call.path.name or "")
        req = call.body if isinstance(call.body, dict) else {}
        tier = str((req.get("properties") or {}).get("pricingTier") or "")
        known = next((t for t in TIERS if t.lower() == tier.lower()), None)
        if known is None:
            raise ArmError(
                400,
                "InvalidInputJson",  # unverified: the code Defender for Cloud answers a bad tier with
                f"The pricing tier '{tier}' is not valid. Valid values are: {', '.join(TIERS)}.",
            )
        body = existing or _default(sub, name)
        props = dict(body["properties"])
        props["pricingTier"] = known
        sub_plan = (req.get("properties") or {}).get("subPlan")
        if known == "Standard" and isinstance(sub_plan, str) and sub_plan:
            # pricings.json: subPlan, a free string ("when more than one sub-plan is available"); ListPricings_example
            # shows KeyVaults on PerKeyVault. Which names each plan refuses is # unverified: any is kept as sent.
            props["subPlan"] = sub_plan
        elif known == "Free":
            props.pop("subPlan", None)  # unverified: what a plan turned off says of its sub-plan
        if known == "Standard":
            props.setdefault("enablementTime", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            props["resourcesCoverageStatus"] = "FullyCovered"
        else:
            props.pop("enablementTime", None)
            props["resourcesCoverageStatus"] = "NotCovered"
        stored = {**body, "properties": props}
        call.state.put(stored)
        return Answer(200 if existing else 201, self.view(call, stored))

    def list(self, call: Call) -> list[dict[str, Any]]:
        sub = _subscription_of(call.path.parent)
        return [self.view(call, call.state.get(f"{sub}/providers/{TYPE}/{p}") or _default(sub, p)) for p in PLANS]
