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


_TRACKED = r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/[^/]+/[^/]+/[^/]+$"
_FILTER_CLAUSE = r"^(resourceType|name|location|resourceGroup|tagName|tagValue)\s+eq\s+'([^']*)'$"
_GENERIC_FIELDS = ("id", "name", "type", "kind", "location", "managedBy", "sku", "plan", "identity", "tags")


@register
class GenericResources(ResourceType):
    """GET /subscriptions/{s}/resources and /subscriptions/{s}/resourceGroups/{g}/resources: every top-level
    resource under the scope, as GenericResourceExpanded. `$filter` takes `resourceType`, `name`, `location`,
    `resourceGroup`, `tagName` and `tagValue` equalities joined by `and`; filtering on a tag leaves the tags out of
    the answer, as ARM documents. Other filters are refused (InvalidFilterInQueryString) rather than ignored."""

    type = "Microsoft.Resources/resources"
    api_versions = ("2015-11-01", "2016-09-01", "2018-05-01", "2019-05-01", "2019-07-01", *RESOURCES_API)

    def list(self, call: Call) -> list[dict[str, Any]]:
        import copy
        import re

        from sandbox.arm import REGISTRY

        flt = (call.query.get("$filter") or "").strip()
        wanted: dict[str, str] = {}
        for clause in re.split(r"\s+and\s+", flt, flags=re.IGNORECASE) if flt else []:
            m = re.match(_FILTER_CLAUSE, clause.strip(), re.IGNORECASE)
            if not m or m.group(1).lower() in wanted:
                raise ArmError(400, "InvalidFilterInQueryString", f"The $filter '{flt}' is not valid.")
            wanted[m.group(1).lower()] = m.group(2)
        if "tagvalue" in wanted and "tagname" not in wanted:
            raise ArmError(400, "InvalidFilterInQueryString", f"The $filter '{flt}' is not valid.")
        out = []
        for body in call.state.under(call.path.parent):
            rt = REGISTRY.get(str(body.get("type", "")).lower())
            if not re.match(_TRACKED, body["id"], re.IGNORECASE) or (rt is not None and rt.extension):
                continue
            if _matches(body, wanted):
                item = {k: copy.deepcopy(body[k]) for k in _GENERIC_FIELDS if body.get(k) is not None}
                if "tagname" in wanted:
                    item.pop("tags", None)
                out.append(item)
        return out


def _matches(body: dict[str, Any], wanted: dict[str, str]) -> bool:
    actual = {
        "resourcetype": str(body.get("type", "")),
        "name": str(body.get("name", "")),
        "location": str(body.get("location", "")).replace(" ", ""),
        "resourcegroup": body["id"].split("/")[4],
    }
    for key, value in wanted.items():
        if key == "location":
            value = value.replace(" ", "")
        if key in actual and actual[key].lower() != value.lower():
            return False
    if "tagname" in wanted:
        tags = body.get("tags") or {}
        key = next((k for k in tags if k.lower() == wanted["tagname"].lower()), None)
        if key is None or ("tagvalue" in wanted and tags[key] != wanted["tagvalue"]):
            return False
    return True
