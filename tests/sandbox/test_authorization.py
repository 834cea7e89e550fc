"""Role assignments and role definitions through the real AuthorizationManagementClient."""

import uuid

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import (
    Permission,
    RoleAssignmentCreateParameters,
    RoleDefinition,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.rbac import ROLES

DEFS = "/providers/Microsoft.Authorization/roleDefinitions"


@pytest.fixture
def auth(sandbox):
    return sandbox.client(AuthorizationManagementClient)


@pytest.fixture
def rg(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-a", {"location": "westeurope"})
    return f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-a"


def _params(sandbox, principal, role, principal_type=None):
    p = sandbox.principal(principal)
    role_guid = ROLES.get(role, role)
    return RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{sandbox.subscription_id}{DEFS}/{role_guid}",
        principal_id=p.object_id,
        principal_type=principal_type or p.kind,
    )


def _err(excinfo):
    return excinfo.value.status_code, excinfo.value.error.code


def test_assignment_grants_access_at_once_and_delete_withdraws_it(sandbox, auth, rg):
    bot = sandbox.client(ResourceManagementClient, "bot")
    with pytest.raises(HttpResponseError) as err:
        bot.resource_groups.get("rg-a")
    assert _err(err) == (403, "AuthorizationFailed")
    name = str(uuid.uuid4())
    created = auth.role_assignments.create(rg, name, _params(sandbox, "bot", "Reader"))
    admin = sandbox.principal("admin")
    assert (created.name, created.scope, created.principal_type) == (name, rg, "ServicePrincipal")
    assert created.id == f"{rg}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert created.role_definition_id.endswith(ROLES["Reader"])
    assert created.created_by == admin.object_id
    assert created.created_on is not None and created.updated_on is not None
    assert bot.resource_groups.get("rg-a").name == "rg-a"  # reads now
    with pytest.raises(HttpResponseError) as err:
        bot.resource_groups.create_or_update("rg-a", {"location": "westeurope", "tags": {"x": "y"}})
    assert _err(err) == (403, "AuthorizationFailed")  # but does not write
    deleted = auth.role_assignments.delete(rg, name)
    assert deleted.name == name
    with pytest.raises(HttpResponseError) as err:
        bot.resource_groups.get("rg-a")
    assert _err(err) == (403, "AuthorizationFailed")
    assert auth.role_assignments.delete(rg, name) is None  # 204 when already gone


def test_same_shape_as_the_scenarios_write(sandbox, auth):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    seeded = {a.principal_id: a for a in auth.role_assignments.list_for_scope(sub)}
    created = auth.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "bot", "Reader"))
    stored = sandbox.running.sandbox.state.get(created.id)
    scenario = sandbox.running.sandbox.state.get(seeded[sandbox.principal("reader").object_id].id)
    assert stored.keys() == scenario.keys()
    assert stored["properties"].keys() == scenario["properties"].keys()
    assert stored["properties"]["roleDefinitionId"] == scenario["properties"]["roleDefinitionId"]


def test_get_create_by_id_get_by_id_and_idempotent_put(sandbox, auth, rg):
    rid = f"{rg}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    made = auth.role_assignments.create_by_id(rid, _params(sandbox, "bot", "Contributor"))
    assert made.id == rid
    assert auth.role_assignments.get_by_id(rid).principal_id == sandbox.principal("bot").object_id
    assert auth.role_assignments.get(rg, made.name).scope == rg
    again = auth.role_assignments.create_by_id(rid, _params(sandbox, "bot", "Contributor"))  # same content: 200
    assert again.created_on == made.created_on
    statuses = [c["status"] for c in sandbox.calls() if c["method"] == "PUT" and c["path"].endswith(made.name)]
    assert statuses == [201, 200]
    with pytest.raises(ResourceNotFoundError) as err:
        auth.role_assignments.get(rg, str(uuid.uuid4()))
    assert err.value.error.code == "RoleAssignmentNotFound"


def test_refusals(sandbox, auth, rg):
    bot = sandbox.principal("bot")
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg, "not-a-guid", _params(sandbox, "bot", "Reader"))
    assert _err(err) == (400, "InvalidRoleAssignmentId")
    bad_role = RoleAssignmentCreateParameters(
        role_definition_id=f"{DEFS}/{uuid.uuid4()}", principal_id=bot.object_id, principal_type="ServicePrincipal"
    )
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg, str(uuid.uuid4()), bad_role)
    assert _err(err) == (400, "RoleDefinitionDoesNotExist")
    ghost = str(uuid.uuid4())
    nobody = RoleAssignmentCreateParameters(role_definition_id=f"{DEFS}/{ROLES['Reader']}", principal_id=ghost)
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg, str(uuid.uuid4()), nobody)
    assert _err(err) == (400, "PrincipalNotFound")
    assert err.value.error.message.startswith(f"Principal {ghost.replace('-', '')} does not exist in the directory")
    # the SDK model defaults principal_type to 'User': a service principal needs it set, as in Azure
    default_type = RoleAssignmentCreateParameters(
        role_definition_id=f"{DEFS}/{ROLES['Reader']}", principal_id=bot.object_id
    )
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg, str(uuid.uuid4()), default_type)
    assert _err(err) == (400, "UnmatchedPrincipalType")
    first = auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Reader"))
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Reader"))
    assert _err(err) == (409, "RoleAssignmentExists")
    assert first.name.replace("-", "") in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(rg, first.name, _params(sandbox, "bot", "Contributor"))
    assert _err(err) == (409, "RoleAssignmentUpdateNotPermitted")
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(
            f"{rg}/providers/Microsoft.KeyVault/vaults/nope", str(uuid.uuid4()), _params(sandbox, "bot", "Reader")
        )
    assert _err(err) == (404, "ResourceNotFound")


def test_contributor_cannot_assign_roles_owner_can(sandbox, auth, rg):
    auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Contributor"))
    bot = sandbox.client(AuthorizationManagementClient, "bot")
    with pytest.raises(HttpResponseError) as err:
        bot.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "intruder", "Reader"))
    assert _err(err) == (403, "AuthorizationFailed")
    assert "Microsoft.Authorization/roleAssignments/write" in err.value.error.message
    auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "User Access Administrator"))
    bot.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "intruder", "Reader"))
    assert sandbox.client(ResourceManagementClient, "intruder").resource_groups.get("rg-a").name == "rg-a"


def test_list_semantics(sandbox, auth, rg):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    at_rg = auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Reader"))
    seeded = {a.name for a in auth.role_assignments.list_for_scope(sub, filter="atScope()")}
    assert len(seeded) == 2  # admin Owner, reader Reader
    # at, above and below
    assert {a.name for a in auth.role_assignments.list_for_scope(sub)} == seeded | {at_rg.name}
    assert {a.name for a in auth.role_assignments.list_for_scope(rg)} == seeded | {at_rg.name}
    assert {a.name for a in auth.role_assignments.list_for_subscription()} == seeded | {at_rg.name}
    assert {a.name for a in auth.role_assignments.list_for_resource_group("rg-a")} == seeded | {at_rg.name}
    # atScope(): at or above only
    assert {a.name for a in auth.role_assignments.list_for_scope(rg, filter="atScope()")} == seeded | {at_rg.name}
    assert {a.name for a in auth.role_assignments.list_for_scope(sub, filter="atScope()")} == seeded
    bot_oid = sandbox.principal("bot").object_id
    mine = auth.role_assignments.list_for_scope(sub, filter=f"principalId eq '{bot_oid}'")
    assert [a.name for a in mine] == [at_rg.name]
    assert list(auth.role_assignments.list_for_scope(sub, filter=f"atScope() and assignedTo('{bot_oid}')")) == []
    with pytest.raises(HttpResponseError) as err:
        list(auth.role_assignments.list_for_scope(sub, filter="roleName eq 'x'"))
    assert _err(err) == (400, "InvalidFilterInQueryString")


def test_role_definitions_builtin_get_and_list(sandbox, auth, rg):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    owner = auth.role_definitions.get(sub, ROLES["Owner"])
    assert owner.id == f"{sub}{DEFS}/{ROLES['Owner']}"
    assert (owner.role_name, owner.role_type) == ("Owner", "BuiltInRole")
    assert auth.role_definitions.get(rg, ROLES["Reader"]).id == f"{sub}{DEFS}/{ROLES['Reader']}"
    by_id = auth.role_definitions.get_by_id(f"{sub}{DEFS}/{ROLES['Contributor']}")
    assert by_id.permissions[0].not_actions[:2] == [
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
    ]
    named = list(auth.role_definitions.list(sub, filter="roleName eq 'Key Vault Crypto Officer'"))
    assert [d.name for d in named] == [ROLES["Key Vault Crypto Officer"]]
    builtins = list(auth.role_definitions.list(sub, filter="type eq 'BuiltInRole'"))
    assert len(builtins) == len(ROLES)
    assert list(auth.role_definitions.list(sub, filter="type eq 'CustomRole'")) == []
    with pytest.raises(ResourceNotFoundError) as err:
        auth.role_definitions.get(sub, str(uuid.uuid4()))
    assert err.value.error.code == "RoleDefinitionDoesNotExist"


def _custom(sandbox, name="Vault Key Rotator", scopes=None, actions=("Microsoft.KeyVault/vaults/read",)):
    return RoleDefinition(
        role_name=name,
        description="rotates keys",
        role_type="CustomRole",
        permissions=[Permission(actions=list(actions), not_actions=[])],
        assignable_scopes=scopes or [f"/subscriptions/{sandbox.subscription_id}"],
    )


def test_custom_role_lifecycle(sandbox, auth, rg):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    guid = str(uuid.uuid4())
    made = auth.role_definitions.create_or_update(
        sub, guid, _custom(sandbox, actions=("Microsoft.Resources/subscriptions/resourceGroups/read",))
    )
    assert (made.id, made.role_type, made.role_name) == (f"{sub}{DEFS}/{guid}", "CustomRole", "Vault Key Rotator")
    assert [d.name for d in auth.role_definitions.list(rg, filter="type eq 'CustomRole'")] == [guid]
    # usable at once
    assignment = auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", guid))
    assert sandbox.client(ResourceManagementClient, "bot").resource_groups.get("rg-a").name == "rg-a"
    # updated in place (201 again), still one role
    updated = auth.role_definitions.create_or_update(sub, guid, _custom(sandbox, name="Vault Key Rotator v2"))
    assert updated.role_name == "Vault Key Rotator v2"
    with pytest.raises(HttpResponseError) as err:
        sandbox.client(ResourceManagementClient, "bot").resource_groups.get("rg-a")
    assert _err(err) == (403, "AuthorizationFailed")  # the new permissions apply at once too
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.delete(sub, guid)
    assert _err(err) == (409, "RoleDefinitionHasAssignments")
    auth.role_assignments.delete_by_id(assignment.id)
    assert auth.role_definitions.delete(sub, guid).name == guid
    with pytest.raises(ResourceNotFoundError):
        auth.role_definitions.get(sub, guid)


def test_custom_role_refusals(sandbox, auth, rg):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.create_or_update(sub, str(uuid.uuid4()), _custom(sandbox, name="Owner"))
    assert _err(err) == (409, "RoleDefinitionWithSameNameExists")
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.create_or_update(sub, str(uuid.uuid4()), _custom(sandbox, scopes=[rg]))
    assert _err(err) == (400, "InvalidCreateRoleDefinitionRequest")
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.create_or_update(sub, ROLES["Reader"], _custom(sandbox))
    assert _err(err) == (400, "InvalidRoleDefinition")
    with pytest.raises(HttpResponseError) as err:
        auth.role_definitions.create_or_update(sub, str(uuid.uuid4()), _custom(sandbox, actions=("bogus",)))
    assert _err(err) == (400, "InvalidActionOrNotAction")
    auth.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "bot", "Contributor"))
    bot = sandbox.client(AuthorizationManagementClient, "bot")
    with pytest.raises(HttpResponseError) as err:
        bot.role_definitions.create_or_update(sub, str(uuid.uuid4()), _custom(sandbox))
    assert _err(err) == (403, "AuthorizationFailed")


def test_older_api_versions_answer(sandbox, rg):
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    name = str(uuid.uuid4())
    url = f"{sandbox.base_url}{rg}/providers/Microsoft.Authorization/roleAssignments/{name}"
    body = {
        "properties": {
            "roleDefinitionId": f"{DEFS}/{ROLES['Reader']}",
            "principalId": sandbox.principal("bot").object_id,
        }
    }
    r = httpx.put(url, params={"api-version": "2018-09-01-preview"}, json=body, headers=headers, verify=sandbox.ssl)
    assert r.status_code == 201
    assert r.json()["properties"]["principalType"] == "ServicePrincipal"
    for version in ("2015-07-01", "2020-04-01-preview", "2020-10-01-preview", "2022-01-01-preview"):
        r = httpx.get(url, params={"api-version": version}, headers=headers, verify=sandbox.ssl)
        assert r.status_code == 200, version
