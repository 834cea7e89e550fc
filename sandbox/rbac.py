"""Azure RBAC as ARM evaluates it, plus Key Vault access policies.

A principal may do an action at a scope when one of its role assignments is at that scope or above it, and the
assigned role grants the action: some entry of `actions` (or `dataActions`) matches it and no entry of `notActions`
(`notDataActions`) of the same permission block does. Patterns may hold `*` anywhere; matching ignores case.
An assignment with a `condition` grants only when the condition holds for the request (sandbox/conditions.py); any
one granting assignment suffices ("How Azure RBAC determines if a user has access to a resource", Microsoft Learn,
MicrosoftDocs/azure-docs articles/role-based-access-control/overview.md: "If the role assignment includes conditions,
they are evaluated... If conditions are met, access is allowed"). Deny assignments are not modelled.

Built-in roles are Microsoft's real definitions (data/builtin_roles.json, sources in data/README.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from sandbox import conditions

__all__ = [
    "ALLOWED",
    "BUILTIN_ROLES",
    "CONDITION_NOT_MET",
    "DATA_ACTIONS",
    "KEY_PERMISSIONS",
    "NOT_GRANTED",
    "PROPAGATING",
    "ROLES",
    "AssignmentIndex",
    "CustomRoleError",
    "access_policy_allows",
    "action_for",
    "decide",
    "explain",
    "is_allowed",
    "role_definition_id",
    "role_id",
    "validate_custom_role",
]

_ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"

PROPAGATING = "roleAssignmentsPropagating"
"""The state table of role assignments made lately: lower-cased id -> the sandbox-clock time (epoch seconds) from
which data planes honour it. ARM lists an assignment at once; Key Vault (and DiskRP's key access check, which asks
Key Vault) applies it only after the propagation delay: "Role assignments latency: at current expected performance,
it will take up to 10 minutes (600 seconds) after role assignments is changed for role to be applied" (Microsoft
Learn, "Provide access to Key Vault keys, certificates, and secrets with Azure role-based access control",
https://learn.microsoft.com/azure/key-vault/general/rbac-guide, "Known limits and performance"; MicrosoftDocs/
azure-docs articles/key-vault/general/rbac-guide.md). The delay is `Settings.role_propagation_seconds`."""


def _load_builtin_roles() -> dict[str, dict[str, Any]]:
    data = json.loads((Path(__file__).parent / "data" / "builtin_roles.json").read_text())
    return {role["name"]: role for role in data}


BUILTIN_ROLES: dict[str, dict[str, Any]] = _load_builtin_roles()
"""Built-in role definitions by GUID, each in ARM's roleDefinition GET shape."""

ROLES: dict[str, str] = {role["properties"]["roleName"]: guid for guid, role in BUILTIN_ROLES.items()}
"""Built-in role name -> GUID."""

_ROLES_LOWER = {name.lower(): guid for name, guid in ROLES.items()}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def role_id(name_or_guid: str) -> str:
    """The GUID of a built-in role given its name (any case), its GUID, or a roleDefinitionId path."""
    guid = _ROLES_LOWER.get(name_or_guid.lower())
    if guid:
        return guid
    guid = name_or_guid.rstrip("/").rsplit("/", 1)[-1].lower()
    if guid in BUILTIN_ROLES or _GUID.fullmatch(guid):
        return guid
    raise KeyError(f"unknown role {name_or_guid!r}; built-in roles: {sorted(ROLES)}")


def role_definition_id(name_or_guid: str, subscription_id: str | None = None) -> str:
    """The roleDefinitionId ARM writes in a role assignment (`/subscriptions/{sub}/providers/...` when given)."""
    prefix = f"/subscriptions/{subscription_id}" if subscription_id else ""
    return f"{prefix}{_ROLE_DEFINITIONS}{role_id(name_or_guid)}"


# --- evaluation ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching any of the patterns, `*` = any run of characters (slashes included)."""
    if not patterns:
        return None
    alternatives = "|".join(".*".join(re.escape(part) for part in p.lower().split("*")) for p in patterns)
    return re.compile(f"(?:{alternatives})")


# A compiled permission block: (allow regex, deny regex) for actions, and the same for data actions.
_Block = tuple[re.Pattern[str] | None, re.Pattern[str] | None, re.Pattern[str] | None, re.Pattern[str] | None]


def _compile_role(definition: Mapping[str, Any]) -> tuple[_Block, ...]:
    props = definition.get("properties", definition)
    return tuple(
        (
            _pattern(tuple(p.get("actions") or ())),
            _pattern(tuple(p.get("notActions") or ())),
            _pattern(tuple(p.get("dataActions") or ())),
            _pattern(tuple(p.get("notDataActions") or ())),
        )
        for p in props.get("permissions") or ()
    )


def _grants(blocks: tuple[_Block, ...], action: str, data_action: bool) -> bool:
    for allow, deny, data_allow, data_deny in blocks:
        if data_action:
            allow, deny = data_allow, data_deny
        if allow is not None and allow.fullmatch(action) and not (deny is not None and deny.fullmatch(action)):
            return True
    return False


def _norm_scope(scope: str) -> str:
    scope = scope.lower().rstrip("/")
    return scope or "/"


def _covers(assignment_scope: str, target: str, above: Collection[str] = ()) -> bool:
    """Both normalised: the target is the assignment scope or below it on a segment boundary, or the assignment is
    at one of `above` (the management groups over the target, which its id does not spell)."""
    return (
        assignment_scope == "/"
        or target == assignment_scope
        or target.startswith(assignment_scope + "/")
        or assignment_scope in above
    )


def _guid_of(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


# What a check decides: allowed; no assignment grants the action; or assignments grant it only under conditions that
# do not hold for this request (ARM then says "does not have authorization or an ABAC condition not fulfilled").
ALLOWED, NOT_GRANTED, CONDITION_NOT_MET = "allowed", "not-granted", "condition-not-met"


def _condition_of(props: Mapping[str, Any]) -> str | None:
    condition = props.get("condition")
    return condition if isinstance(condition, str) and condition else None


class _Verdict:
    """Folds the granting assignments of one check: one without a condition, or whose condition holds, allows."""

    __slots__ = ("action", "attributes", "conditioned")

    def __init__(self, action: str, attributes: conditions.Attributes | None) -> None:
        self.action, self.attributes, self.conditioned = action, attributes, False

    def grants(self, condition: str | None) -> bool:
        if condition is None:
            return True
        self.conditioned = True
        return conditions.holds(condition, conditions.Request(self.action, self.attributes or {}))

    def denied(self) -> str:
        return CONDITION_NOT_MET if self.conditioned else NOT_GRANTED


class AssignmentIndex:
    """Role assignments indexed by principal, with scopes normalised and roles compiled once.

    Build it once and update it as assignments come and go; `is_allowed` accepts it in place of a list.
    """

    def __init__(
        self,
        assignments: Iterable[Mapping[str, Any]] = (),
        role_definitions: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None,
    ) -> None:
        # oid -> [(scope, guid, assignment id, condition)]
        self._by_principal: dict[str, list[tuple[str, str, str, str | None]]] = {}
        self._roles: dict[str, tuple[_Block, ...]] = {}
        for guid, definition in BUILTIN_ROLES.items():
            self.set_role(guid, definition)
        for guid, definition in _definitions(role_definitions).items():
            self.set_role(guid, definition)
        for assignment in assignments:
            self.add(assignment)

    def set_role(self, guid: str, definition: Mapping[str, Any]) -> None:
        self._roles[guid.lower()] = _compile_role(definition)

    def remove_role(self, guid: str) -> None:
        self._roles.pop(guid.lower(), None)

    def add(self, assignment: Mapping[str, Any]) -> None:
        props = assignment.get("properties", assignment)
        entry = (
            _norm_scope(props["scope"]),
            _guid_of(props["roleDefinitionId"]),
            str(assignment.get("id", "")),
            _condition_of(props),
        )
        self._by_principal.setdefault(props["principalId"].lower(), []).append(entry)

    def remove(self, assignment_id: str) -> None:
        for entries in self._by_principal.values():
            entries[:] = [e for e in entries if e[2].lower() != assignment_id.lower()]

    def allowed(
        self,
        principal_object_id: str,
        action: str,
        scope: str,
        *,
        data_action: bool,
        attributes: conditions.Attributes | None = None,
        above: Collection[str] = (),
    ) -> bool:
        decision = self.decide(
            principal_object_id, action, scope, data_action=data_action, attributes=attributes, above=above
        )
        return decision == ALLOWED

    def decide(
        self,
        principal_object_id: str,
        action: str,
        scope: str,
        *,
        data_action: bool,
        attributes: conditions.Attributes | None = None,
        above: Collection[str] = (),
    ) -> str:
        target, verdict, action = _norm_scope(scope), _Verdict(action, attributes), action.lower()
        for assignment_scope, guid, _, condition in self._by_principal.get(principal_object_id.lower(), ()):
            if _covers(assignment_scope, target, above):
                blocks = self._roles.get(guid)
                if blocks and _grants(blocks, action, data_action) and verdict.grants(condition):
                    return ALLOWED
        return verdict.denied()


def _definitions(
    role_definitions: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None,
) -> dict[str, Mapping[str, Any]]:
    if role_definitions is None:
        return {}
    if isinstance(role_definitions, Mapping):
        return {_guid_of(k): v for k, v in role_definitions.items()}
    return {_guid_of(d.get("name") or d["id"]): d for d in role_definitions}


# Role definitions compiled by (guid, permissions as tuples): a changed custom role compiles anew.
@lru_cache(maxsize=1024)
def _compiled(key: tuple[str, tuple[tuple[tuple[str, ...], ...], ...]]) -> tuple[_Block, ...]:
    perms = [dict(zip(("actions", "notActions", "dataActions", "notDataActions"), p, strict=True)) for p in key[1]]
    return _compile_role({"permissions": perms})


def _role_blocks(guid: str, definitions: Mapping[str, Mapping[str, Any]]) -> tuple[_Block, ...] | None:
    definition = definitions.get(guid) or BUILTIN_ROLES.get(guid)
    if definition is None:
        return None
    props = definition.get("properties", definition)
    perms = tuple(
        tuple(tuple(p.get(k) or ()) for k in ("actions", "notActions", "dataActions", "notDataActions"))
        for p in props.get("permissions") or ()
    )
    return _compiled((guid, perms))


def is_allowed(
    principal_object_id: str,
    action: str,
    scope: str,
    *,
    data_action: bool,
    assignments: Iterable[Mapping[str, Any]] | AssignmentIndex,
    role_definitions: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None,
    attributes: conditions.Attributes | None = None,
    above: Collection[str] = (),
) -> bool:
    """Whether any of the principal's role assignments grants `action` at `scope`.

    `assignments` are ARM roleAssignment dicts (`properties.scope/roleDefinitionId/principalId`, and `condition`)
    or an `AssignmentIndex`. `role_definitions` (a mapping keyed by lower-case GUID, or a list) adds custom roles;
    built-ins are always known. `attributes` are the request's ABAC attributes, which conditions read.
    """
    decision = decide(
        principal_object_id,
        action,
        scope,
        data_action=data_action,
        assignments=assignments,
        role_definitions=role_definitions,
        attributes=attributes,
        above=above,
    )
    return decision == ALLOWED


def decide(
    principal_object_id: str,
    action: str,
    scope: str,
    *,
    data_action: bool,
    assignments: Iterable[Mapping[str, Any]] | AssignmentIndex,
    role_definitions: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None,
    attributes: conditions.Attributes | None = None,
    above: Collection[str] = (),
) -> str:
    """`is_allowed`, saying why not: ALLOWED, NOT_GRANTED, or CONDITION_NOT_MET (only conditioned assignments grant
    the action, and none of their conditions holds). `above`: the management groups over `scope` (lower-cased), whose
    assignments it inherits though its id does not spell them."""
    if isinstance(assignments, AssignmentIndex):
        return assignments.decide(
            principal_object_id, action, scope, data_action=data_action, attributes=attributes, above=above
        )
    target, verdict, action = _norm_scope(scope), _Verdict(action, attributes), action.lower()
    definitions = role_definitions if isinstance(role_definitions, Mapping) else _definitions(role_definitions)
    for assignment_scope, guid, condition in _by_principal(assignments).get(principal_object_id.lower(), ()):
        if _covers(assignment_scope, target, above):
            blocks = _role_blocks(guid, definitions)
            if blocks and _grants(blocks, action, data_action) and verdict.grants(condition):
                return ALLOWED
    return verdict.denied()


def explain(
    principal_object_id: str,
    action: str,
    scope: str,
    *,
    data_action: bool,
    assignments: Iterable[Mapping[str, Any]],
    role_definitions: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None,
    above: Collection[str] = (),
) -> Mapping[str, Any] | None:
    """The role assignment that grants `action` at `scope` (the first that does), or None: what ARM names as the
    `authorization.evidence` of an operation. Off the hot path: only events and logs ask."""
    oid, target, action = principal_object_id.lower(), _norm_scope(scope), action.lower()
    definitions = role_definitions if isinstance(role_definitions, Mapping) else _definitions(role_definitions)
    for assignment in assignments:
        props = assignment.get("properties", assignment)
        if str(props.get("principalId", "")).lower() != oid or not _covers(_norm_scope(props["scope"]), target, above):
            continue
        blocks = _role_blocks(_guid_of(props["roleDefinitionId"]), definitions)
        if blocks and _grants(blocks, action, data_action):
            return assignment
    return None


# Assignment lists seen lately, indexed by principal, keyed by the identity of their dicts. Sound because ARM never
# changes an assignment's principal, scope or role (RoleAssignmentUpdateNotPermitted), and a changed condition is
# stored as a new dict (providers/authorization.py never mutates one); the cache keeps the dicts
# alive so their ids cannot be reused while cached. Roles are not cached here: `_role_blocks` follows their content.
_RECENT: dict[tuple[int, ...], tuple[list[Any], dict[str, list[tuple[str, str, str | None]]]]] = {}


def _by_principal(assignments: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[str, str, str | None]]]:
    held = assignments if isinstance(assignments, list) else list(assignments)
    key = tuple(map(id, held))
    hit = _RECENT.get(key)
    if hit is not None:
        return hit[1]
    index: dict[str, list[tuple[str, str, str | None]]] = {}
    for assignment in held:
        props = assignment.get("properties", assignment)
        entry = (_norm_scope(props["scope"]), _guid_of(props["roleDefinitionId"]), _condition_of(props))
        index.setdefault(props["principalId"].lower(), []).append(entry)
    if len(_RECENT) >= 16:
        _RECENT.clear()
    _RECENT[key] = (list(held), index)
    return index


# --- operations ------------------------------------------------------------------------------------------------

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


# --- custom roles ----------------------------------------------------------------------------------------------


class CustomRoleError(ValueError):
    """A custom role definition ARM would refuse: `status`, `code`, `message` make its error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def validate_custom_role(
    guid: str, body: Mapping[str, Any], existing: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Check a `PUT .../roleDefinitions/{guid}` body and return its properties, normalised.

    `existing` are the custom roles already defined (built-ins are always checked): a role name must be unique
    in the directory, except for the role being updated.
    """
    if guid.lower() in BUILTIN_ROLES:
        raise CustomRoleError(400, "InvalidRoleDefinition", "Built-in role definitions cannot be changed.")
    props = body.get("properties") or {}
    name = (props.get("roleName") or "").strip()
    if not name:
        raise CustomRoleError(400, "InvalidRoleDefinition", "The role definition must have a roleName.")
    permissions = props.get("permissions")
    if not isinstance(permissions, list) or not permissions:
        raise CustomRoleError(400, "InvalidRoleDefinition", "The role definition must have permissions.")
    scopes = props.get("assignableScopes")
    if not isinstance(scopes, list) or not scopes:
        raise CustomRoleError(400, "InvalidRoleDefinition", "The role definition must have assignableScopes.")
    if any(_norm_scope(str(s)) == "/" for s in scopes):
        raise CustomRoleError(
            400, "InvalidRoleDefinition", "The root scope '/' cannot be an assignable scope of a custom role."
        )
    for block in permissions:
        for key in ("actions", "notActions", "dataActions", "notDataActions"):
            for action in block.get(key) or ():
                if not isinstance(action, str) or ("/" not in action and action != "*"):
                    raise CustomRoleError(
                        400,
                        "InvalidActionOrNotAction",
                        f"'{action}' does not match any of the actions supported by the providers.",
                    )
    others = [r for r in existing if _guid_of(r.get("name") or r.get("id", "")) != guid.lower()]
    taken = {r["properties"]["roleName"].lower() for r in [*others, *BUILTIN_ROLES.values()]}
    if name.lower() in taken:
        raise CustomRoleError(
            409,
            "RoleDefinitionWithSameNameExists",
            "A custom role with the same name already exists in this directory.",
        )
    return {
        "roleName": name,
        "type": "CustomRole",
        "description": props.get("description") or "",
        "assignableScopes": list(scopes),
        "permissions": [
            {k: list(block.get(k) or ()) for k in ("actions", "notActions", "dataActions", "notDataActions")}
            for block in permissions
        ],
    }
