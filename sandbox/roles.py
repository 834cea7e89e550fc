"""Role definitions as ARM keeps them: Microsoft's built-in roles (data/builtin_roles.json, sources in
data/README.md) by GUID and by name, role definition ids, and the checks ARM makes of a custom role's definition
(`PUT .../roleDefinitions/{guid}`). Evaluation is sandbox/rbac.py's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"


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


def guid_of(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


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
    if any(not str(s).rstrip("/") for s in scopes):
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
    others = [r for r in existing if guid_of(r.get("name") or r.get("id", "")) != guid.lower()]
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


__all__ = [
    "BUILTIN_ROLES",
    "ROLES",
    "CustomRoleError",
    "guid_of",
    "role_definition_id",
    "role_id",
    "validate_custom_role",
]
