"""Microsoft.Management/managementGroups: the tenant's hierarchy, read-only (GET, list, descendants).

Azure's hierarchy: one tenant root group (its name is the tenant id) above every management group and subscription;
a subscription sits under exactly one group (the root group unless moved). Role assignments at a group's scope
(`/providers/Microsoft.Management/managementGroups/{id}`) or at the root (`/`) are inherited by every group,
subscription, resource group and resource below ("Understand scope for Azure RBAC", Microsoft Learn,
https://learn.microsoft.com/azure/role-based-access-control/scope-overview; "What are Azure management groups?",
https://learn.microsoft.com/azure/governance/management-groups/overview: "the root management group ... all other
management groups and subscriptions fold up to"). This module gives the core (through `sb.hooks.ancestors`) the groups
above any scope, which `rbac` and the role assignment list use.

Shapes and paths: Azure/azure-rest-api-specs specification/managementgroups/resource-manager/Microsoft.Management/
stable/2021-04-01/management.json (ManagementGroups_Get, ManagementGroups_List, ManagementGroups_GetDescendants) and
its examples GetManagementGroupWithExpand.json (`$expand=children`: `properties.details.parent`, `children[]` with
subscriptions typed `/subscriptions`) and ListManagementGroups.json (a list item is ManagementGroupInfo:
`id`, `type`, `name`, `properties.{tenantId, displayName}`). A descendant is DescendantInfo:
`id`, `type`, `name`, `properties.{displayName, parent.id}`.

Groups are made by scenarios (`add_group`, `place`), not by the API: creating and moving groups are long-running
operations this sandbox does not serve yet (PUT answers 405).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sandbox.arm import ArmError, Call, ResourceType, register

if TYPE_CHECKING:
    from sandbox.server import Sandbox
    from sandbox.state import State

__all__ = ["GROUP_TYPE", "add_group", "ancestors", "group_id", "place"]

GROUP_TYPE = "Microsoft.Management/managementGroups"
_PREFIX = "/providers/Microsoft.Management/managementGroups/"
API_VERSIONS = ("2020-02-01", "2020-05-01", "2020-10-01", "2021-04-01", "2023-04-01")
_PARENTS = "managementGroupParents"  # state table: lower-cased child id (group or subscription) -> parent group id


def group_id(name: str) -> str:
    return f"{_PREFIX}{name}"


def _root(state: State) -> dict[str, Any]:
    """The tenant root group, made on first use (Azure makes it when the hierarchy is first used)."""
    rid = group_id(state.tenant_id)
    body = state.get(rid)
    if body is None:
        body = state.put(
            {
                "id": rid,
                "type": GROUP_TYPE,
                "name": state.tenant_id,
                "properties": {"tenantId": state.tenant_id, "displayName": "Tenant Root Group"},
            }
        )
    return body


def add_group(state: State, name: str, display_name: str | None = None, parent: str | None = None) -> dict[str, Any]:
    """A management group under `parent` (a group name; the root group when None)."""
    root = _root(state)
    parent_id = group_id(parent) if parent else root["id"]
    if state.get(parent_id) is None:
        raise ValueError(f"no management group {parent!r}")
    body = state.put(
        {
            "id": group_id(name),
            "type": GROUP_TYPE,
            "name": name,
            "properties": {"tenantId": state.tenant_id, "displayName": display_name or name},
        }
    )
    state.table(_PARENTS)[body["id"].lower()] = parent_id
    return body


def place(state: State, subscription_id: str, group: str) -> None:
    """Move a subscription under a management group."""
    gid = group_id(group)
    if state.get(gid) is None:
        raise ValueError(f"no management group {group!r}")
    state.table(_PARENTS)[f"/subscriptions/{subscription_id}".lower()] = gid


def _parent_of(state: State, child_id: str) -> str | None:
    """The group directly above a group or a subscription: the root group unless placed elsewhere; None for the root
    group itself and for what does not exist."""
    key = child_id.lower().rstrip("/")
    root = group_id(state.tenant_id)
    if key == root.lower():
        return None
    found = state.table(_PARENTS).get(key)
    if found:
        return str(found)
    if key.startswith("/subscriptions/") and key.split("/")[2] in state.subscriptions:
        return root
    return None


def ancestors(state: State, scope: str) -> list[str]:
    """The management groups above a scope (a group, a subscription or anything under one), nearest first,
    lower-cased. The root scope `/` is above everything and is not listed."""
    s = scope.lower().rstrip("/")
    if s.startswith("/subscriptions/"):
        start = "/".join(s.split("/")[:3])
    elif s.startswith(_PREFIX.lower()):
        start = s[: len(_PREFIX) + len(s[len(_PREFIX) :].split("/")[0])]
    else:
        return []
    out: list[str] = []
    parent = _parent_of(state, start)
    while parent is not None and parent.lower() not in out:
        out.append(parent.lower())
        parent = _parent_of(state, parent)
    return out


def _exists(state: State, resource_id: str) -> bool:
    """A group exists once made; the root group always (made on first read)."""
    return resource_id.lower().rstrip("/") == group_id(state.tenant_id).lower() or state.get(resource_id) is not None


def _children(state: State, gid: str) -> list[dict[str, Any]]:
    out = []
    for group in state.of_type(GROUP_TYPE):
        if (_parent_of(state, group["id"]) or "").lower() == gid.lower():
            out.append(
                {
                    "id": group["id"],
                    "type": GROUP_TYPE,
                    "name": group["name"],
                    "displayName": group["properties"]["displayName"],
                }
            )
    for sub in state.subscriptions.values():
        if (_parent_of(state, sub["id"]) or "").lower() == gid.lower():
            out.append(
                {
                    "id": sub["id"],
                    "type": "/subscriptions",
                    "name": sub["subscriptionId"],
                    "displayName": sub["displayName"],
                }
            )
    return out


@register
class ManagementGroups(ResourceType):
    type = GROUP_TYPE
    api_versions = API_VERSIONS

    def exists(self, state: State, resource_id: str) -> bool:
        return _exists(state, resource_id)

    def read(self, call: Call) -> dict[str, Any]:
        state = call.state
        name = call.path.name or ""
        if name.lower() == state.tenant_id.lower():
            _root(state)
        body = state.get(group_id(name))
        if body is None:
            # unverified: the code and wording of a missing group's answer
            raise ArmError(404, "NotFound", f"'{name}' not found")
        out = copy.deepcopy(body)
        parent = _parent_of(state, body["id"])
        parent_body = state.get(parent) if parent else None
        out["properties"]["details"] = {
            "version": 1,
            "updatedTime": state.clock.iso(),
            "updatedBy": None,
            "parent": (
                {
                    "id": parent_body["id"],
                    "name": parent_body["name"],
                    "displayName": parent_body["properties"]["displayName"],
                }
                if parent_body
                else None
            ),
        }
        if (call.query.get("$expand") or "").lower() == "children":
            out["properties"]["children"] = _children(state, body["id"])
        return out

    def list(self, call: Call) -> list[dict[str, Any]]:
        state = call.state
        _root(state)
        return [copy.deepcopy(b) for b in state.of_type(GROUP_TYPE)]


@register
class Descendants(ResourceType):
    """GET /providers/Microsoft.Management/managementGroups/{groupId}/descendants: every group and subscription
    below, each with its parent (DescendantInfo)."""

    type = f"{GROUP_TYPE}/descendants"
    api_versions = API_VERSIONS

    def parent_exists(self, call: Call) -> bool:
        return _exists(call.state, call.path.parent)

    def list(self, call: Call) -> list[dict[str, Any]]:
        state, top = call.state, call.path.parent
        if not _exists(state, top):
            raise ArmError(404, "NotFound", f"'{top.rsplit('/', 1)[-1]}' not found")  # unverified wording
        out: list[dict[str, Any]] = []
        queue = [top]
        while queue:
            gid = queue.pop(0)
            for child in _children(state, gid):
                out.append(
                    {
                        "id": child["id"],
                        "type": child["type"],
                        "name": child["name"],
                        "properties": {"displayName": child["displayName"], "parent": {"id": gid}},
                    }
                )
                if child["type"] == GROUP_TYPE:
                    queue.append(child["id"])
        return out


def install(sb: Sandbox) -> None:
    sb.hooks.ancestors(lambda scope: ancestors(sb.state, scope))
