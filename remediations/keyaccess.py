"""Whether a disk encryption set's identity can use its key, decided as Key Vault decides it. Pure: no I/O.

    keyaccess.block(des, vault, assignments)   # the DES's `cryptward.keyAccess` block (the reader fills it)

- The permission model: a vault uses Azure RBAC only when `enableRbacAuthorization` is `true`; absent, null or false
  mean access policies ("Vaults where enableRbacAuthorization is null (from older API versions) continue using access
  policies": https://learn.microsoft.com/azure/key-vault/general/access-control-default). Azure's built-in policy
  12d4fa5e ("Azure Key Vault should use RBAC permission model") also counts an absent property as not RBAC.
- The identity: a DES with a user-assigned identity reaches its key with it (the az CLI's recorded test behind
  tests/conformance/recordings/des/cli-des-get-system-and-user-assigned-2023-04-02.json grants only the user-assigned
  principal); such a DES has no top-level `identity.principalId`. Otherwise its system-assigned principal. When a set
  has several user-assigned identities, each must have access (which one DiskRP picks is not documented).
- RBAC vaults: a role assignment for the principal whose role grants the key data actions DiskRP needs (keys/read,
  keys/wrap/action, keys/unwrap/action), at the key, the vault, the resource group, the subscription, a management
  group or the root. The roles are the built-in ones in `KEY_ROLES`; a custom role is not counted (its definition is
  not read), so a set holding only a custom role is reported, and granted the built-in one.
- Access-policy vaults: an entry for the principal (objectId), in the vault's tenant, without an applicationId (that
  makes a compound identity, which the principal alone is not), whose key permissions include get, wrapKey and
  unwrapKey, or `all`; all compared without case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediations.resources import get, name_of, versionless

# Built-in roles whose dataActions include keys/read, keys/wrap/action and keys/unwrap/action (Microsoft Learn,
# "Azure built-in roles for Security", https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/
# security; the same definitions are in sandbox/data/builtin_roles.json).
KEY_ROLES: dict[str, str] = {
    "e147488a-f6f5-4113-8e2d-b22465e65bf6": "Key Vault Crypto Service Encryption User",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603": "Key Vault Crypto Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")
RBAC, ACCESS_POLICIES = "rbac", "accessPolicies"
_ROLE_DEFINITIONS = "/providers/microsoft.authorization/roledefinitions/"
_ROLE_ASSIGNMENTS = "/providers/microsoft.authorization/roleassignments/"


def uses_rbac(vault: Mapping[str, Any]) -> bool:
    """Only `true` means Azure RBAC; absent, null and false mean access policies."""
    return get(vault, "properties.enableRbacAuthorization") is True


def model(vault: Mapping[str, Any]) -> str:
    return RBAC if uses_rbac(vault) else ACCESS_POLICIES


def role_guid(role_definition_id: Any) -> str:
    """The GUID of a role definition id in any form (tenant, subscription, management group, bare), lower-cased."""
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def is_role_definition_id(value: Any) -> bool:
    return isinstance(value, str) and _ROLE_DEFINITIONS in value.lower()


def same_role(a: Any, b: Any) -> bool:
    """Two role definition ids name the same role: ARM answers `/providers/Microsoft.Authorization/roleDefinitions/
    {guid}` to a request in the subscription form (azure-specs examples/authorization/
    RoleAssignments_CreateForResource.json), so only the GUID counts."""
    return bool(role_guid(a)) and role_guid(a) == role_guid(b)


def principals(des: Mapping[str, Any]) -> list[str]:
    """The principals the DES reaches its key with (lower-cased): its user-assigned identities' when it has any, else
    its system-assigned one; [] when it has no identity (or its user-assigned principals were not answered)."""
    identity = get(des, "identity") or {}
    assigned = identity.get("userAssignedIdentities") if isinstance(identity, Mapping) else None
    if isinstance(assigned, Mapping) and assigned:
        found = [v.get("principalId") for v in assigned.values() if isinstance(v, Mapping)]
        return [str(p).lower() for p in found if p]
    principal = get(des, "identity.principalId")
    return [str(principal).lower()] if principal else []


def user_identities(des: Mapping[str, Any]) -> list[str]:
    """The ids of the DES's user-assigned identities."""
    assigned = get(des, "identity.userAssignedIdentities")
    return [str(k) for k in assigned] if isinstance(assigned, Mapping) else []


def key_scope(des: Mapping[str, Any], vault: Mapping[str, Any]) -> str:
    """The ARM id of the DES's key: `{vault id}/keys/{name}` (the vault's id when the key URL names no key)."""
    key_name = name_of(versionless(str(get(des, "properties.activeKey.keyUrl") or "")))
    return f"{vault['id']}/keys/{key_name}" if key_name else str(vault["id"])


def _scope(assignment: Mapping[str, Any]) -> str:
    scope = get(assignment, "properties.scope")
    if not scope:
        scope = str(assignment.get("id", "")).lower().rsplit(_ROLE_ASSIGNMENTS, 1)[0]
    return str(scope).lower().rstrip("/") or "/"


def covers(scope: str, target: str) -> bool:
    """A role assigned at `scope` applies to `target`: the same scope or one above it. A management group or the
    root (`/`) is above every subscription whose assignment list returns it (ARM lists those inherited)."""
    scope, target = scope.lower().rstrip("/") or "/", target.lower().rstrip("/")
    if scope == "/" or scope.startswith("/providers/microsoft.management/managementgroups/"):
        return True
    return target == scope or target.startswith(scope + "/")


def key_roles(assignments: Iterable[Mapping[str, Any]], principal: str, scope: str) -> list[Mapping[str, Any]]:
    """The principal's role assignments that let it use the key at `scope` (a key id)."""
    return [
        ra
        for ra in assignments
        if str(get(ra, "properties.principalId") or "").lower() == principal.lower()
        and role_guid(get(ra, "properties.roleDefinitionId")) in KEY_ROLES
        and covers(_scope(ra), scope)
    ]


def access_policy_grants(vault: Mapping[str, Any], principal: str) -> bool:
    """An access policy of the vault lets the principal get, wrap and unwrap its keys."""
    tenant = str(get(vault, "properties.tenantId") or "").lower()
    wanted = {p.lower() for p in KEY_PERMISSIONS}
    for entry in get(vault, "properties.accessPolicies") or []:
        if not isinstance(entry, Mapping) or entry.get("applicationId"):
            continue
        if str(entry.get("objectId", "")).lower() != principal.lower():
            continue
        if str(entry.get("tenantId", "")).lower() != tenant:
            continue
        keys = {str(p).lower() for p in (get(entry, "permissions.keys") or [])}
        if "all" in keys or wanted <= keys:
            return True
    return False


def can_use(
    vault: Mapping[str, Any], principal: str, scope: str, assignments: Iterable[Mapping[str, Any]] | None
) -> bool:
    if uses_rbac(vault):
        return bool(key_roles(assignments or (), principal, scope))
    return access_policy_grants(vault, principal)


def block(
    des: Mapping[str, Any], vault: Mapping[str, Any], assignments: Iterable[Mapping[str, Any]] | None
) -> dict[str, Any]:
    """The DES's `cryptward.keyAccess` block: the vault's model, the key's id, the principals the set uses, and those
    of them that cannot use the key (`missing`). `assignments`: the role assignments at the key's scope and above
    (needed for an RBAC vault only)."""
    scope = key_scope(des, vault)
    listed = list(assignments or ())
    who = principals(des)
    return {
        "model": model(vault),
        "keyScope": scope,
        "principals": who,
        "missing": [p for p in who if not can_use(vault, p, scope, listed)],
    }


def vault_entry(
    des: Mapping[str, Any], vault: Mapping[str, Any], assignments: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """One entry of a vault's `cryptward.encryptionSets`: a DES using the vault (its body without the `cryptward`
    block), its key's id, its principals, and the role assignments that let them use the key (what switching the
    vault to RBAC leaves them)."""
    scope = key_scope(des, vault)
    listed = list(assignments)
    who = principals(des)
    return {
        "id": des["id"],
        "set": {k: v for k, v in des.items() if k != "cryptward"},
        "keyScope": scope,
        "principals": who,
        "keyRoles": [ra for p in who for ra in key_roles(listed, p, scope)],
    }


__all__ = [
    "ACCESS_POLICIES",
    "KEY_PERMISSIONS",
    "KEY_ROLES",
    "RBAC",
    "access_policy_grants",
    "block",
    "can_use",
    "covers",
    "is_role_definition_id",
    "key_roles",
    "key_scope",
    "model",
    "principals",
    "role_guid",
    "same_role",
    "user_identities",
    "uses_rbac",
    "vault_entry",
]
