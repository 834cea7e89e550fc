"""The operations requests perform, as Azure RBAC names them: ARM's `{type}/{verb}` and `.../{name}/action`, the
Key Vault keys data plane's data actions and their access-policy permissions (sandbox/rbac.py evaluates them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}

# Types whose operation names are not `{type}/{verb}`, by lower-cased type.
_SPECIAL_TYPES = {
    "resourcegroups": "Microsoft.Resources/subscriptions/resourceGroups",
    "microsoft.resources/resourcegroups": "Microsoft.Resources/subscriptions/resourceGroups",
    "microsoft.resources/subscriptions/resourcegroups": "Microsoft.Resources/subscriptions/resourceGroups",
    "subscriptions": "Microsoft.Resources/subscriptions",
    "microsoft.resources/subscriptions": "Microsoft.Resources/subscriptions",
    "tags": "Microsoft.Resources/tags",
    "microsoft.resources/tags": "Microsoft.Resources/tags",
    "microsoft.keyvault/deletedvaults": "Microsoft.KeyVault/deletedVaults",
    "microsoft.keyvault/locations/deletedvaults": "Microsoft.KeyVault/locations/deletedVaults",
    # PUT .../vaults/{name}/accessPolicies/{add|replace|remove} is one write operation.
    "microsoft.keyvault/vaults/accesspolicies": "Microsoft.KeyVault/vaults/accessPolicies",
    "microsoft.insights/eventtypes/values": "Microsoft.Insights/eventtypes/values",
}


def action_for(method: str, resource_type: str, action_name: str | None = None) -> str:
    """The ARM operation a request performs, e.g. ("POST", "Microsoft.Compute/virtualMachines", "deallocate")
    -> "Microsoft.Compute/virtualMachines/deallocate/action"; ("GET", "resourceGroups") ->
    "Microsoft.Resources/subscriptions/resourceGroups/read"."""
    method = method.upper()
    rtype = _SPECIAL_TYPES.get(resource_type.lower().strip("/"), resource_type.strip("/"))
    if rtype == "Microsoft.KeyVault/vaults/accessPolicies":
        return f"{rtype}/write"
    if method == "POST":
        if not action_name:
            raise ValueError(f"a POST on {resource_type} needs the action's name")
        return f"{rtype}/{action_name}/action"
    if action_name:
        raise ValueError(f"{method} takes no action name (got {action_name!r})")
    try:
        return f"{rtype}/{_VERBS[method]}"
    except KeyError:
        raise ValueError(f"no ARM operation for method {method!r}; methods: {[*sorted(_VERBS), 'POST']}") from None


# Key Vault keys data plane: operation -> RBAC data action, and -> access-policy key permission.
_KV = "Microsoft.KeyVault/vaults"
DATA_ACTIONS: dict[str, str] = {
    "create": f"{_KV}/keys/create/action",
    "import": f"{_KV}/keys/import/action",
    "get": f"{_KV}/keys/read",
    "list": f"{_KV}/keys/read",
    "versions": f"{_KV}/keys/read",
    "update": f"{_KV}/keys/update/action",
    "delete": f"{_KV}/keys/delete",
    "rotate": f"{_KV}/keys/rotate/action",
    "get_rotation_policy": f"{_KV}/keyrotationpolicies/read",
    "set_rotation_policy": f"{_KV}/keyrotationpolicies/write",
    "wrap": f"{_KV}/keys/wrap/action",
    "unwrap": f"{_KV}/keys/unwrap/action",
    "encrypt": f"{_KV}/keys/encrypt/action",
    "decrypt": f"{_KV}/keys/decrypt/action",
    "sign": f"{_KV}/keys/sign/action",
    "verify": f"{_KV}/keys/verify/action",
    "backup": f"{_KV}/keys/backup/action",
    "restore": f"{_KV}/keys/restore/action",
    "recover": f"{_KV}/keys/recover/action",
    "purge": f"{_KV}/keys/purge/action",
    "release": f"{_KV}/keys/release/action",
}
KEY_PERMISSIONS: dict[str, str] = {op: op for op in DATA_ACTIONS} | {
    "versions": "list",
    "get_rotation_policy": "getrotationpolicy",
    "set_rotation_policy": "setrotationpolicy",
    "wrap": "wrapKey",
    "unwrap": "unwrapKey",
}


def access_policy_allows(
    access_policies: Iterable[Mapping[str, Any]], object_id: str, key_permission: str, tenant_id: str | None = None
) -> bool:
    """Whether a vault's `properties.accessPolicies` give `object_id` a key permission (`all` gives every one),
    case-insensitively. With `tenant_id` (the vault's), an entry counts only in that tenant: AccessPolicyEntry.tenantId
    is "the Azure Active Directory tenant ID that should be used for authenticating requests to the key vault" and
    "all identities in the array must use the same tenant ID as the key vault's tenant ID" (azure-specs openapi/
    keyvault/openapi.json, 2026-05-15). An entry with an `applicationId` is a compound identity ("Application ID of the
    client making request on behalf of a principal", same spec): it does not grant the principal acting alone
    (unverified: the spec does not say so in words)."""
    oid, wanted = object_id.lower(), key_permission.lower()
    for policy in access_policies:
        if str(policy.get("objectId", "")).lower() != oid or policy.get("applicationId"):
            continue
        if tenant_id is not None and str(policy.get("tenantId", "")).lower() != tenant_id.lower():
            continue
        granted = {str(p).lower() for p in (policy.get("permissions") or {}).get("keys") or ()}
        if wanted in granted or "all" in granted:
            return True
    return False


__all__ = ["DATA_ACTIONS", "KEY_PERMISSIONS", "access_policy_allows", "action_for"]
