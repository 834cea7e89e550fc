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
- RBAC vaults: role assignments for the principal, at the key, the vault, the resource group, the subscription, a
  management group or the root, whose roles together grant the key data actions DiskRP needs (`KEY_DATA_ACTIONS`).
  The built-in roles of `KEY_ROLES` grant them all; any other role (custom, or another built-in one) by its
  definition (`definitions`, read by remediations/engine/keyroles.py): an action is granted when an entry of a
  permission block's `dataActions` matches it and no entry of that block's `notDataActions` does ("DataActions -
  NotDataActions = Effective data plane permissions"; `*` matches any characters, without case; and a role's
  notDataActions is "not a deny rule": another role granting the action grants it. Microsoft Learn, "Understand
  Azure role definitions", https://learn.microsoft.com/azure/role-based-access-control/role-definitions). A role
  whose definition was not read grants nothing here.
- Access-policy vaults: an entry for the principal (objectId), in the vault's tenant, without an applicationId (that
  makes a compound identity, which the principal alone is not), whose key permissions include get, wrapKey and
  unwrapKey, or `all`; all compared without case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
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
# The data actions of those permissions under RBAC (Microsoft Learn, "Provide access to Key Vault keys, certificates,
# and secrets with Azure role-based access control", https://learn.microsoft.com/azure/key-vault/general/rbac-guide;
# the dataActions of Key Vault Crypto Service Encryption User in the built-in roles page above).
KEY_DATA_ACTIONS = (
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
)
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


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.lower().split("*")))


def _matches(patterns: Any, action: str) -> bool:
    return any(isinstance(p, str) and _pattern(p).fullmatch(action.lower()) for p in patterns or ())


def granted_data_actions(definition: Mapping[str, Any] | None) -> frozenset[str]:
    """Which of `KEY_DATA_ACTIONS` a role definition (ARM's GET body, or its `properties`) grants: those some
    permission block's dataActions match and the same block's notDataActions do not."""
    props = (definition or {}).get("properties", definition) or {}
    blocks = [b for b in props.get("permissions") or () if isinstance(b, Mapping)]
    return frozenset(
        action
        for action in KEY_DATA_ACTIONS
        if any(_matches(b.get("dataActions"), action) and not _matches(b.get("notDataActions"), action) for b in blocks)
    )


def _grants(assignment: Mapping[str, Any], definitions: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    guid = role_guid(get(assignment, "properties.roleDefinitionId"))
    if guid in KEY_ROLES:
        return frozenset(KEY_DATA_ACTIONS)
    return granted_data_actions(definitions.get(guid))


def over_key(assignments: Iterable[Mapping[str, Any]], principal: str, scope: str) -> list[Mapping[str, Any]]:
    """The principal's role assignments at `scope` (a key id) or above it."""
    return [
        ra
        for ra in assignments
        if str(get(ra, "properties.principalId") or "").lower() == principal.lower() and covers(_scope(ra), scope)
    ]


def key_roles(
    assignments: Iterable[Mapping[str, Any]],
    principal: str,
    scope: str,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Mapping[str, Any]]:
    """The principal's role assignments that let it use the key at `scope` (a key id): those granting some of
    `KEY_DATA_ACTIONS`, when together they grant them all ([] otherwise). `definitions`: role definitions by
    lower-cased GUID, for the roles not in `KEY_ROLES`."""
    found = [(ra, _grants(ra, definitions or {})) for ra in over_key(assignments, principal, scope)]
    together = frozenset().union(*(g for _, g in found))
    return [ra for ra, g in found if g] if together >= frozenset(KEY_DATA_ACTIONS) else []


def unknown_roles(assignments: Iterable[Mapping[str, Any]], principal: str, scope: str) -> list[str]:
    """The role definition ids (as assigned) of the principal's assignments over the key whose roles are not in
    `KEY_ROLES`: what must be read to decide by definitions."""
    ids = [str(get(ra, "properties.roleDefinitionId") or "") for ra in over_key(assignments, principal, scope)]
    return list(dict.fromkeys(i for i in ids if i and role_guid(i) not in KEY_ROLES))


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
    vault: Mapping[str, Any],
    principal: str,
    scope: str,
    assignments: Iterable[Mapping[str, Any]] | None,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
) -> bool:
    if uses_rbac(vault):
        return bool(key_roles(assignments or (), principal, scope, definitions))
    return access_policy_grants(vault, principal)


def block(
    des: Mapping[str, Any],
    vault: Mapping[str, Any],
    assignments: Iterable[Mapping[str, Any]] | None,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The DES's `cryptward.keyAccess` block: the vault's model, the key's id, the principals the set uses, and those
    of them that cannot use the key (`missing`). `assignments`: the role assignments at the key's scope and above
    (needed for an RBAC vault only); `definitions`: the definitions read of roles not in `KEY_ROLES`."""
    scope = key_scope(des, vault)
    listed = list(assignments or ())
    who = principals(des)
    return {
        "model": model(vault),
        "keyScope": scope,
        "principals": who,
        "missing": [p for p in who if not can_use(vault, p, scope, listed, definitions)],
    }


def vault_entry(
    des: Mapping[str, Any],
    vault: Mapping[str, Any],
    assignments: Iterable[Mapping[str, Any]],
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
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
        "keyRoles": [ra for p in who for ra in key_roles(listed, p, scope, definitions)],
    }


__all__ = [
    "ACCESS_POLICIES",
    "KEY_DATA_ACTIONS",
    "KEY_PERMISSIONS",
    "KEY_ROLES",
    "RBAC",
    "access_policy_grants",
    "block",
    "can_use",
    "covers",
    "granted_data_actions",
    "is_role_definition_id",
    "key_roles",
    "key_scope",
    "model",
    "over_key",
    "principals",
    "role_guid",
    "same_role",
    "unknown_roles",
    "user_identities",
    "uses_rbac",
    "vault_entry",
]
