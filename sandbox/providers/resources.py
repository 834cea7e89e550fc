"""Microsoft.Resources: subscriptions and resource groups (delete honours locks on anything inside)."""

from __future__ import annotations

from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register

RESOURCES_API = (
    "2019-10-01",
    "2020-06-01",
    "2021-04-01",
    "2022-09-01",
    "2022-12-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-01-01",
    "2025-03-01",
    "2025-04-01",
)


@register
class Subscriptions(ResourceType):
    type = "Microsoft.Resources/subscriptions"
    api_versions = ("2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-01-01", "2022-12-01", "2025-04-01")

    def read(self, call: Call) -> dict[str, Any]:
        return dict(call.state.subscriptions[(call.path.name or "").lower()])


@register
class ResourceGroups(ResourceType):
    type = "Microsoft.Resources/resourceGroups"
    api_versions = RESOURCES_API
    lro = frozenset({"DELETE"})

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{call.path.name}' could not be found.")
        return dict(body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        body = call.body or {}
        location = body.get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if existing is not None and existing["location"].lower() != location.replace(" ", "").lower():
            raise ArmError(
                409,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{location}'. The Resource group already exists in location "
                f"'{existing['location']}'.",
            )
        stored = existing or {
            "id": call.path.id,
            "name": call.path.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location.replace(" ", "").lower(),
            "properties": {"provisioningState": "Succeeded"},
        }
        stored = dict(stored)
        if "tags" in body:
            stored["tags"] = body["tags"]
        call.state.put(stored)
        return Answer(200 if existing else 201, dict(stored))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        stored = dict(existing)
        if "tags" in (call.body or {}):
            stored["tags"] = call.body["tags"]
        call.state.put(stored)
        return Answer(200, stored)

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{call.path.name}' could not be found.")
        for body in list(call.state.under(existing["id"])):
            call.state.remove(body["id"])
        call.state.remove(existing["id"])
        return Answer(202)
