"""Named scenarios the sandbox can be seeded with (`python -m sandbox seed NAME`, POST /_sandbox/seed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.state import DEFAULT_SUBSCRIPTION

if TYPE_CHECKING:
    from sandbox.server import Sandbox

SCENARIOS: dict[str, Callable[[Sandbox], dict[str, Any]]] = {}


def scenario(name: str) -> Callable[[Callable[[Sandbox], dict[str, Any]]], Callable[[Sandbox], dict[str, Any]]]:
    def deco(fn: Callable[[Sandbox], dict[str, Any]]) -> Callable[[Sandbox], dict[str, Any]]:
        SCENARIOS[name] = fn
        return fn

    return deco


def seed(sb: Sandbox, name: str) -> dict[str, Any]:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid: {sorted(SCENARIOS)}")
    return {"scenario": name, **SCENARIOS[name](sb)}


def add_subscription(sb: Sandbox, sub_id: str, name: str) -> dict[str, Any]:
    body = {
        "id": f"/subscriptions/{sub_id}",
        "authorizationSource": "RoleBased",
        "subscriptionId": sub_id,
        "tenantId": sb.state.tenant_id,
        "displayName": name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "managedByTenants": [],
        "tags": {},
    }
    sb.state.subscriptions[sub_id.lower()] = body
    return body


def assign(sb: Sandbox, scope: str, principal: Any, role_guid: str) -> dict[str, Any]:
    """A role assignment written straight into state (scenarios only; the API path is authorization.py)."""
    import uuid

    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal.object_id}|{role_guid}".lower()))
    sub = scope.split("/")[2] if scope.startswith("/subscriptions/") else DEFAULT_SUBSCRIPTION
    body = {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
            "principalId": principal.object_id,
            "principalType": principal.kind,
            "scope": scope,
            "createdOn": sb.state.clock.iso(),
            "updatedOn": sb.state.clock.iso(),
            "createdBy": None,
            "updatedBy": None,
            "condition": None,
            "conditionVersion": None,
            "description": None,
            "delegatedManagedIdentityResourceId": None,
        },
    }
    return sb.state.put(body)


@scenario("empty")
def empty(sb: Sandbox) -> dict[str, Any]:
    """One subscription; the administrator is Owner, the reader Reader; the bot has no role yet."""
    from sandbox.rbac import ROLES

    sub = add_subscription(sb, DEFAULT_SUBSCRIPTION, "Contoso Production")
    d = sb.directory
    assign(sb, sub["id"], d.named("admin"), ROLES["Owner"])
    assign(sb, sub["id"], d.named("reader"), ROLES["Reader"])
    return {"subscriptions": [DEFAULT_SUBSCRIPTION]}
