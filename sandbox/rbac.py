"""Azure RBAC as ARM evaluates it, plus Key Vault access policies.

A principal may do an action at a scope when one of its role assignments is at that scope or above it, and the
assigned role grants the action: some entry of `actions` (or `dataActions`) matches it and no entry of `notActions`
(`notDataActions`) of the same permission block does. Patterns may hold `*` anywhere; matching ignores case.
An assignment with a `condition` grants only when the condition holds for the request (sandbox/conditions.py); any
one granting assignment suffices ("How Azure RBAC determines if a user has access to a resource", Microsoft Learn,
MicrosoftDocs/azure-docs articles/role-based-access-control/overview.md: "If the role assignment includes conditions,
they are evaluated... If conditions are met, access is allowed"). Deny assignments are not modelled.

Built-in roles are Microsoft's real definitions (sandbox/roles.py, with custom roles' validation); the operations
requests perform are named in sandbox/rbac_operations.py. Both are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any

from sandbox import conditions
from sandbox.rbac_operations import DATA_ACTIONS, KEY_PERMISSIONS, access_policy_allows, action_for
from sandbox.roles import (
    BUILTIN_ROLES,
    ROLES,
    CustomRoleError,
    guid_of,
    role_definition_id,
    role_id,
    validate_custom_role,
)

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


PROPAGATING = "roleAssignmentsPropagating"
"""The state table of role assignments made lately: lower-cased id -> the sandbox-clock time (epoch seconds) from
which data planes honour it. ARM lists an assignment at once; Key Vault (and DiskRP's key access check, which asks
Key Vault) applies it only after the propagation delay: "Role assignments latency: at current expected performance,
it will take up to 10 minutes (600 seconds) after role assignments is changed for role to be applied" (Microsoft
Learn, "Provide access to Key Vault keys, certificates, and secrets with Azure role-based access control",
https://learn.microsoft.com/azure/key-vault/general/rbac-guide, "Known limits and performance"; MicrosoftDocs/
azure-docs articles/key-vault/general/rbac-guide.md). The delay is `Settings.role_propagation_seconds`."""


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
            guid_of(props["roleDefinitionId"]),
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
        return {guid_of(k): v for k, v in role_definitions.items()}
    return {guid_of(d.get("name") or d["id"]): d for d in role_definitions}


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
        blocks = _role_blocks(guid_of(props["roleDefinitionId"]), definitions)
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
        entry = (_norm_scope(props["scope"]), guid_of(props["roleDefinitionId"]), _condition_of(props))
        index.setdefault(props["principalId"].lower(), []).append(entry)
    if len(_RECENT) >= 16:
        _RECENT.clear()
    _RECENT[key] = (list(held), index)
    return index
