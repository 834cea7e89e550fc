"""Microsoft.Authorization: role assignments and role definitions at any scope.

Role assignments are stored in the shape `scenarios.assign` writes, and `Sandbox.allowed` reads them on every call,
so an assignment made through the API grants (or, deleted, withdraws) access at once. Stored assignment dicts are
never changed in place: `rbac.is_allowed` caches per-principal views keyed by the identity of those dicts.

List semantics (ARM, 2022-04-01): a list at a scope answers the assignments at, above and below it;
`$filter=atScope()` keeps those at or above it; `principalId eq '{id}'` / `assignedTo('{id}')` keep one
principal's ("Use $filter=atScope() to return all role assignments at or above the scope. Use $filter=principalId eq
{id} to return all role assignments at, above or below the scope for the specified principal": Microsoft Learn,
"Role Assignments - List For Scope", https://learn.microsoft.com/rest/api/authorization/role-assignments/
list-for-scope). Above includes the management groups over the scope's subscription and the root `/`
(providers/management_groups.py), as in the recorded subscription list under tests/conformance/recordings/
authorization/. Role definitions list the built-in roles plus the custom roles assignable at the scope;
`$filter=roleName eq '...'` and `type eq 'BuiltInRole'|'CustomRole'` narrow it.

Role assignments carry `condition` and `conditionVersion` (RoleAssignmentProperties in Azure/azure-rest-api-specs
specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
authorization-RoleAssignmentsCalls.json: "Currently the only accepted value is '2.0'"), answered on GET and list as
sent. A condition is parsed on PUT (sandbox/conditions.py) and evaluated by `rbac` on every check; a role assignment
write or delete presents its Request or Resource attributes (`RoleAssignments.attributes`).
"""

from __future__ import annotations

import copy
import re
import weakref
from typing import TYPE_CHECKING, Any

from sandbox import conditions, rbac
from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers.locks import relation

if TYPE_CHECKING:
    from sandbox.server import Sandbox
    from sandbox.state import State

ROLE_ASSIGNMENT_API = (
    "2015-07-01",
    "2018-01-01-preview",
    "2018-09-01-preview",
    "2020-03-01-preview",
    "2020-04-01-preview",
    "2020-08-01-preview",
    "2020-10-01-preview",
    "2022-01-01-preview",
    "2022-04-01",
)
ROLE_DEFINITION_API = ("2015-07-01", "2018-01-01-preview", "2022-04-01", "2022-05-01-preview")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DEFS = "/providers/Microsoft.Authorization/roleDefinitions/"
_ASSIGNMENTS = "/providers/Microsoft.Authorization/roleAssignments/"
_QUOTED = r"'([^']*)'"

# The running sandbox of each state, for the directory of principals (set by `install`).
_SANDBOXES: weakref.WeakKeyDictionary[State, Sandbox] = weakref.WeakKeyDictionary()


def install(sb: Sandbox) -> None:
    _SANDBOXES[sb.state] = sb


def _guid_of(role_definition_id: str) -> str:
    return str(role_definition_id).rstrip("/").rsplit("/", 1)[-1].lower()


def _custom_roles(state: State) -> dict[str, dict[str, Any]]:
    return {b["name"].lower(): b for b in state.of_type("Microsoft.Authorization/roleDefinitions")}


def _role(state: State, guid: str) -> dict[str, Any] | None:
    return rbac.BUILTIN_ROLES.get(guid.lower()) or _custom_roles(state).get(guid.lower())


def _subscription_prefix(call: Call) -> str:
    return f"/subscriptions/{call.path.subscription}" if call.path.subscription else ""


def _split_filter(flt: str) -> list[str]:
    return [c.strip() for c in re.split(r"\s+and\s+", flt.strip(), flags=re.IGNORECASE) if c.strip()]


# Verified message: "The given role assignment condition is invalid." (Microsoft Learn, "Troubleshoot Azure role
# assignment conditions", MicrosoftDocs/azure-docs articles/role-based-access-control/conditions-troubleshoot.md:
# cause 1 conditionVersion "1.0", cause 2 a condition not formatted correctly; 400 Bad Request per
# MicrosoftDocs/azure-docs issue #119449). The error code is unverified: Microsoft's pages do not name it;
# "InvalidRoleAssignmentCondition" is what two public third-party write-ups report.
_INVALID_CONDITION = "The given role assignment condition is invalid."


def _checked_condition(props: dict[str, Any]) -> tuple[str | None, str | None]:
    """The (condition, conditionVersion) to store, or ArmError 400 when Azure refuses them."""
    condition, version = props.get("condition"), props.get("conditionVersion")
    if condition is None or condition == "":
        return None, version if isinstance(version, str) else None  # unverified: a version alone is kept, unused
    if not isinstance(condition, str):
        raise ArmError(400, "InvalidRoleAssignmentCondition", _INVALID_CONDITION)
    version = conditions.VERSION if version in (None, "") else version  # "Defaults to 2.0" (conditions-faq.md)
    if version != conditions.VERSION:
        raise ArmError(400, "InvalidRoleAssignmentCondition", _INVALID_CONDITION)
    try:
        conditions.parse(condition)
    except conditions.ConditionError as exc:
        if exc.unsupported:  # valid for Azure, perhaps, but not something the sandbox can evaluate: say so
            raise ArmError(400, "InvalidRoleAssignmentCondition", f"{_INVALID_CONDITION} (sandbox: {exc})") from exc
        raise ArmError(400, "InvalidRoleAssignmentCondition", _INVALID_CONDITION) from exc
    return condition, version


def _relation(sb: Sandbox | None, scope: str, target: str, over_target: set[str]) -> str | None:
    """`relation`, with management groups: a group over the target's subscription is above it (a subscription-scope
    list answers assignments inherited from its groups and the root, as the recorded list
    tests/conformance/recordings/authorization/c7n-role-assignments-list-2018-09-01-preview.json does), and what
    is under a group's subscriptions is below that group."""
    found = relation(scope, target)
    if found is not None:
        return found
    if scope.lower().rstrip("/") in over_target:
        return "above"
    if sb is not None and target.lower().rstrip("/") in sb.hooks.scopes_above(scope):
        return "below"
    return None


def _bad_filter(flt: str) -> ArmError:
    return ArmError(400, "InvalidFilterInQueryString", f"The filter '{flt}' is not valid.")


@register
class RoleAssignments(ResourceType):
    type = "Microsoft.Authorization/roleAssignments"
    api_versions = ROLE_ASSIGNMENT_API
    extension = True

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{call.path.name}' is not found.")
        return self.view(call, body)

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        """A create (PUT) at 2022-04-01 answers `roleDefinitionId` in the tenant form `/providers/
        Microsoft.Authorization/roleDefinitions/{guid}` whatever form the request used: azure-specs examples/
        authorization/RoleAssignments_CreateForResource.json (stable/2022-04-01) sends the subscription form and
        answers the tenant form. Reads and lists answer the form the assignment was created with: the az CLI (2.91,
        role/custom.py `_search_role_assignments`) finds an assignment it made by comparing its roleDefinitionId as
        a string with the subscription form it sent, which works against Azure; the recorded list
        authorization/c7n-role-assignments-list-2018-09-01-preview.json answers the subscription form, the
        ListForScope example the tenant form (unverified beyond these)."""
        out = copy.deepcopy(body)
        if call.method == "PUT" and call.api_version >= "2022-04-01":
            out["properties"]["roleDefinitionId"] = f"{_DEFS}{_guid_of(body['properties']['roleDefinitionId'])}"
        return out

    def attributes(self, call: Call) -> dict[tuple[str, str], tuple[str, ...]] | None:
        """`roleAssignments/write` presents Request attributes (the body), `roleAssignments/delete` Resource
        attributes (the stored assignment): "Authorization actions and attributes", Microsoft Learn, MicrosoftDocs/
        azure-docs articles/role-based-access-control/conditions-authorization-actions-attributes.md. The Request
        PrincipalType is the body's, absent when the body has none (then no comparison on it holds; unverified)."""
        if call.path.kind != "item":
            return None
        if call.method == "PUT":
            body = call.body if isinstance(call.body, dict) else {}
            props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
            return conditions.role_assignment_attributes("Request", props)
        stored = call.state.get(call.path.id)
        return conditions.role_assignment_attributes("Resource", stored["properties"]) if stored else {}

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        name = call.path.name or ""
        if not _GUID.match(name):
            raise ArmError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
            )
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        role_definition_id, principal_id = props.get("roleDefinitionId"), props.get("principalId")
        for field, value in (("roleDefinitionId", role_definition_id), ("principalId", principal_id)):
            if not value:
                raise ArmError(
                    400,
                    "InvalidRequestContent",
                    f"The request content was invalid and could not be deserialized: 'Required property '{field}' "
                    "not found in JSON. Path 'properties'.'.",
                )
        condition, condition_version = _checked_condition(props)
        scope = call.path.parent
        guid = _guid_of(role_definition_id)
        if _role(call.state, guid) is None:
            raise ArmError(
                400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist."
            )
        principal_id = str(principal_id).lower()
        sb = _SANDBOXES.get(call.state)
        principal = sb.directory.by_object_id(principal_id) if sb else None
        if principal is None:
            raise ArmError(
                400,
                "PrincipalNotFound",
                f"Principal {principal_id.replace('-', '')} does not exist in the directory {call.state.tenant_id}. "
                "Check that you have the correct principal ID. If you are creating this principal and then "
                "immediately assigning a role, this error might be related to a replication delay. In this case, set "
                "the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  "
                "See https://aka.ms/docs-principaltype",
            )
        # Verified (public deployment logs), typo included. The SDK models default principalType to 'User', so a
        # service principal assigned without principal_type='ServicePrincipal' is refused, as in Azure.
        given_type = props.get("principalType")
        if given_type and str(given_type).lower() != principal.kind.lower():
            raise ArmError(
                400,
                "UnmatchedPrincipalType",
                f"The PrincipalId '{principal_id.replace('-', '')}' has type '{principal.kind}' , which is different "
                f"from specified PrinciaplType '{given_type}'.",
            )
        if existing is not None:
            old = existing["properties"]
            if (
                old["principalId"].lower() != principal_id
                or _guid_of(old["roleDefinitionId"]) != guid
                or old["scope"].lower() != scope.lower()
            ):
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
        else:
            for other in call.state.of_type(self.type):
                op = other["properties"]
                if (
                    op["principalId"].lower() == principal_id
                    and _guid_of(op["roleDefinitionId"]) == guid
                    and op["scope"].lower() == scope.lower()
                ):
                    raise ArmError(
                        409,
                        "RoleAssignmentExists",
                        "The role assignment already exists. The ID of the existing role assignment is "
                        f"{other['name'].replace('-', '')}.",
                    )
        now = call.state.clock.iso()
        sent = role_definition_id if existing is None else existing["properties"]["roleDefinitionId"]
        stored = {
            "id": f"{scope}{_ASSIGNMENTS}{name}" if existing is None else existing["id"],
            "name": name if existing is None else existing["name"],
            "type": self.type,
            "properties": {
                "roleDefinitionId": sent,  # as sent: reads answer it so; a create answers the tenant form (`view`)
                "principalId": principal_id,
                "principalType": principal.kind,
                "scope": scope,
                "createdOn": existing["properties"]["createdOn"] if existing else now,
                "updatedOn": now,
                "createdBy": existing["properties"]["createdBy"] if existing else call.principal.object_id,
                "updatedBy": call.principal.object_id,
                "condition": condition,
                "conditionVersion": condition_version,
                "description": props.get("description"),
                "delegatedManagedIdentityResourceId": props.get("delegatedManagedIdentityResourceId"),
            },
        }
        call.state.put(stored)  # a new dict every time: never mutate a stored assignment
        if existing is None:  # data planes honour it once propagated (rbac.PROPAGATING)
            delay = call.state.settings.role_propagation_seconds
            call.state.table(rbac.PROPAGATING)[stored["id"].lower()] = call.state.clock.timestamp() + delay
        return Answer(200 if existing else 201, self.view(call, stored))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        call.state.remove(existing["id"])
        call.state.table(rbac.PROPAGATING).pop(existing["id"].lower(), None)
        return Answer(200, self.view(call, existing))

    def list(self, call: Call) -> list[dict[str, Any]]:
        target = call.path.parent
        flt = call.query.get("$filter") or ""
        wanted, principal = {"at", "above", "below"}, None
        for clause in _split_filter(flt):
            if clause.replace(" ", "").lower() == "atscope()":
                wanted = {"at", "above"}
                continue
            m = re.fullmatch(rf"principalId\s+eq\s+{_QUOTED}", clause, re.IGNORECASE) or re.fullmatch(
                rf"assignedTo\(\s*{_QUOTED}\s*\)", clause, re.IGNORECASE
            )
            if not m:
                raise _bad_filter(flt)
            principal = m.group(1).lower()
        sb = _SANDBOXES.get(call.state)
        over_target = set(sb.hooks.scopes_above(target)) if sb else set()
        out = []
        for body in call.state.of_type(self.type):
            props = body["properties"]
            if principal is not None and props["principalId"].lower() != principal:
                continue
            if _relation(sb, props["scope"], target, over_target) in wanted:
                out.append(self.view(call, body))
        return out


@register
class RoleDefinitions(ResourceType):
    type = "Microsoft.Authorization/roleDefinitions"
    api_versions = ROLE_DEFINITION_API
    extension = True

    def current(self, call: Call) -> dict[str, Any] | None:
        if call.path.kind != "item":
            return None
        return _role(call.state, call.path.name or "")

    def _builtin_view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(body)
        out["id"] = f"{_subscription_prefix(call)}{_DEFS}{body['name']}"
        return out

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        if body["name"].lower() in rbac.BUILTIN_ROLES:
            return self._builtin_view(call, body)
        return copy.deepcopy(body)

    def read(self, call: Call) -> dict[str, Any]:
        guid = (call.path.name or "").lower()
        body = _role(call.state, guid)
        if body is None:
            raise ArmError(
                404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist."
            )
        return self.view(call, body)

    def list(self, call: Call) -> list[dict[str, Any]]:
        flt = call.query.get("$filter") or ""
        role_name, role_type = None, None
        for clause in _split_filter(flt):
            m = re.fullmatch(rf"roleName\s+eq\s+{_QUOTED}", clause, re.IGNORECASE)
            if m:
                role_name = m.group(1).lower()
                continue
            m = re.fullmatch(rf"type\s+eq\s+{_QUOTED}", clause, re.IGNORECASE)
            if m:
                role_type = m.group(1).lower()
                continue
            raise _bad_filter(flt)
        scope = call.path.parent or "/"
        candidates = [*rbac.BUILTIN_ROLES.values(), *_custom_roles(call.state).values()]
        out = []
        for body in candidates:
            props = body["properties"]
            if role_name is not None and props["roleName"].lower() != role_name:
                continue
            if role_type is not None and props["type"].lower() != role_type:
                continue
            if props["type"] == "CustomRole" and not any(
                relation(s, scope) in ("at", "above") for s in props.get("assignableScopes") or ()
            ):
                continue
            out.append(self.view(call, body))
        return out

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        guid = call.path.name or ""
        if not _GUID.match(guid):
            raise ArmError(
                400,
                "InvalidRoleDefinitionId",
                f"The role definition ID '{guid}' is not valid. The role definition ID must be a GUID.",
            )
        body = call.body if isinstance(call.body, dict) else {}
        try:
            props = rbac.validate_custom_role(guid, body, _custom_roles(call.state).values())
        except rbac.CustomRoleError as exc:
            raise ArmError(exc.status, exc.code, exc.message) from exc
        scope = call.path.parent or "/"
        if not any(relation(s, scope) == "at" for s in props["assignableScopes"]):
            raise ArmError(
                400,
                "InvalidCreateRoleDefinitionRequest",
                f"The request to create role definition '{guid}' is not valid. The scope '{scope}' of the request "
                "must be one of the assignable scopes of the role definition.",
            )
        now = call.state.clock.iso()
        stored = {
            "id": existing["id"] if existing else f"{_subscription_prefix(call)}{_DEFS}{guid.lower()}",
            "name": guid.lower(),
            "type": self.type,
            "properties": {
                **props,
                "createdOn": existing["properties"].get("createdOn", now) if existing else now,
                "updatedOn": now,
                "createdBy": existing["properties"].get("createdBy") if existing else call.principal.object_id,
                "updatedBy": call.principal.object_id,
            },
        }
        call.state.put(stored)
        return Answer(201, copy.deepcopy(stored))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        guid = existing["name"].lower()
        if guid in rbac.BUILTIN_ROLES:
            raise ArmError(
                400, "InvalidRoleDefinition", f"The role definition '{guid}' is a built-in role and cannot be deleted."
            )
        if any(_guid_of(a["properties"]["roleDefinitionId"]) == guid for a in call.state.of_type(RoleAssignments.type)):
            raise ArmError(409, "RoleDefinitionHasAssignments", "There are existing role assignments referencing role.")
        call.state.remove(existing["id"])
        return Answer(200, copy.deepcopy(existing))
