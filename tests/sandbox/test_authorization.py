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


# --- role assignment conditions (Azure ABAC): delegating role assignment with conditions ------------------------
# Microsoft Learn, "Delegate Azure role assignment management to others with conditions" and its examples page
# (MicrosoftDocs/azure-docs articles/role-based-access-control/delegate-role-assignments-*.md).

CSEU = ROLES["Key Vault Crypto Service Encryption User"]
# "Example: Constrain roles and principal types", with Crypto Service Encryption User and service principals.
DELEGATION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    f"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{CSEU}}} "
    "AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'ServicePrincipal'})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    f"(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{CSEU}}} "
    "AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'ServicePrincipal'}))"
)
ASSIGNER = ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete")  # fmt: skip
ABAC_REFUSAL = "does not have authorization or an ABAC condition not fulfilled to perform action"


def _delegate(sandbox, auth, condition=DELEGATION, who="intruder", scope=None):
    """A custom role that assigns roles, given to `who` (with `condition`, if any); the assignment made."""
    sub = f"/subscriptions/{sandbox.subscription_id}"
    guid = str(uuid.uuid4())
    auth.role_definitions.create_or_update(sub, guid, _custom(sandbox, name=f"Assigner {guid[:8]}", actions=ASSIGNER))
    params = _params(sandbox, who, guid)
    if condition is not None:
        params.condition, params.condition_version = condition, "2.0"
    return auth.role_assignments.create(scope or sub, str(uuid.uuid4()), params)


def _refused_by_condition(excinfo, action="Microsoft.Authorization/roleAssignments/write"):
    assert _err(excinfo) == (403, "AuthorizationFailed")
    message = excinfo.value.error.message
    assert ABAC_REFUSAL in message and f"'{action}'" in message, message


def test_a_conditioned_delegate_assigns_only_the_role_and_principal_type_its_condition_names(sandbox, auth):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    _delegate(sandbox, auth)
    delegate = sandbox.client(AuthorizationManagementClient, "intruder")
    made = delegate.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "bot", CSEU))
    assert made.role_definition_id.endswith(CSEU) and made.principal_type == "ServicePrincipal"

    name = str(uuid.uuid4())
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.create(sub, name, _params(sandbox, "bot", "Owner"))
    _refused_by_condition(err)
    assert f"over scope '{sub}/providers/Microsoft.Authorization/roleAssignments/{name}'" in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "intruder", "Owner"))
    _refused_by_condition(err)  # nor itself
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "reader", CSEU))
    _refused_by_condition(err)  # the right role, but to a User
    with pytest.raises(HttpResponseError) as err:  # a User said to be a ServicePrincipal: the directory disagrees
        delegate.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "reader", CSEU, "ServicePrincipal"))
    assert _err(err) == (400, "UnmatchedPrincipalType")

    # deletes: only assignments the condition's Resource attributes match
    owner = next(a for a in auth.role_assignments.list_for_scope(sub) if a.role_definition_id.endswith(ROLES["Owner"]))
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.delete_by_id(owner.id)
    _refused_by_condition(err, "Microsoft.Authorization/roleAssignments/delete")
    assert auth.role_assignments.get_by_id(owner.id).principal_id == sandbox.principal("admin").object_id
    assert delegate.role_assignments.delete_by_id(made.id).name == made.name
    # what the condition does not target is granted as the role says; refused writes left nothing behind
    left = {
        (a.principal_id, a.role_definition_id.rsplit("/", 1)[-1]) for a in delegate.role_assignments.list_for_scope(sub)
    }
    assert (sandbox.principal("bot").object_id, ROLES["Owner"]) not in left
    assert (sandbox.principal("reader").object_id, CSEU) not in left


def test_a_delegate_cannot_lift_its_own_condition(sandbox, auth):
    mine = _delegate(sandbox, auth)
    delegate = sandbox.client(AuthorizationManagementClient, "intruder")
    unconditioned = RoleAssignmentCreateParameters(
        role_definition_id=mine.role_definition_id, principal_id=mine.principal_id, principal_type="ServicePrincipal"
    )
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.create_by_id(mine.id, unconditioned)
    _refused_by_condition(err)
    assert auth.role_assignments.get_by_id(mine.id).condition == DELEGATION


def test_an_unconditioned_holder_is_not_limited_and_one_unconditioned_grant_is_enough(sandbox, auth, rg):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    _delegate(sandbox, auth, condition=None, who="bot")
    sandbox.client(AuthorizationManagementClient, "bot").role_assignments.create(
        sub, str(uuid.uuid4()), _params(sandbox, "reader", "Owner")
    )
    # the conditioned delegate also holds an unconditioned assigner role in rg-a: there, the condition does not bind
    # (Learn, conditions-troubleshoot.md, "Symptom - Condition is not enforced", cause 1)
    _delegate(sandbox, auth)
    _delegate(sandbox, auth, condition=None, scope=rg)
    delegate = sandbox.client(AuthorizationManagementClient, "intruder")
    delegate.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Owner"))
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.create(sub, str(uuid.uuid4()), _params(sandbox, "bot", "Owner"))
    _refused_by_condition(err)


def test_a_refusal_without_any_grant_does_not_mention_conditions(sandbox, auth):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    with pytest.raises(HttpResponseError) as err:
        sandbox.client(AuthorizationManagementClient, "intruder").role_assignments.create(
            sub, str(uuid.uuid4()), _params(sandbox, "bot", CSEU)
        )
    assert _err(err) == (403, "AuthorizationFailed")
    assert "ABAC" not in err.value.error.message and "does not have authorization to perform" in err.value.error.message


@pytest.mark.parametrize(
    ("condition", "version", "sandbox_says"),
    [
        ("((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR", "2.0", None),
        ("@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] GuidEquals 'not-a-guid'", "2.0", None),
        ("(a AND b OR c)", "2.0", None),
        (DELEGATION, "1.0", None),  # Learn, conditions-troubleshoot.md: cause 1, conditionVersion "1.0"
        (
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'x'",
            "2.0",
            "sandbox",
        ),
    ],
)
def test_conditions_azure_refuses_are_refused_and_nothing_is_stored(sandbox, auth, condition, version, sandbox_says):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    params = _params(sandbox, "bot", "Reader")
    params.condition, params.condition_version = condition, version
    name = str(uuid.uuid4())
    with pytest.raises(HttpResponseError) as err:
        auth.role_assignments.create(sub, name, params)
    assert _err(err) == (400, "InvalidRoleAssignmentCondition")
    assert err.value.error.message.startswith("The given role assignment condition is invalid.")
    assert ("(sandbox:" in err.value.error.message) == (sandbox_says is not None)
    with pytest.raises(ResourceNotFoundError):
        auth.role_assignments.get(sub, name)


def test_the_condition_and_its_version_round_trip_on_get_and_list(sandbox, auth, rg):
    laid_out = DELEGATION.replace(") AND (", ")\nAND\n(").replace(" OR ", "\n OR \n")  # as the Learn pages lay it out
    params = _params(sandbox, "intruder", "User Access Administrator")
    params.condition = laid_out  # no version: it defaults to 2.0 (Learn, conditions-faq.md)
    made = auth.role_assignments.create(rg, str(uuid.uuid4()), params)
    assert (made.condition, made.condition_version) == (laid_out, "2.0")
    got = auth.role_assignments.get(rg, made.name)
    assert (got.condition, got.condition_version) == (laid_out, "2.0")
    listed = {a.name: a for a in auth.role_assignments.list_for_scope(rg)}
    assert (listed[made.name].condition, listed[made.name].condition_version) == (laid_out, "2.0")
    plain = auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Reader"))
    assert (plain.condition, plain.condition_version) == (None, None)
    # the wire, as Azure names the properties
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    r = httpx.get(
        f"{sandbox.base_url}{made.id}",
        params={"api-version": "2022-04-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ssl,
    )
    assert (r.json()["properties"]["condition"], r.json()["properties"]["conditionVersion"]) == (laid_out, "2.0")
    # the condition is enforced as laid out: the holder may give Crypto Service Encryption User to the bot only
    delegate = sandbox.client(AuthorizationManagementClient, "intruder")
    delegate.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", CSEU))
    with pytest.raises(HttpResponseError) as err:
        delegate.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Contributor"))
    _refused_by_condition(err)


def test_a_create_answers_the_role_definition_id_in_the_tenant_form(sandbox, auth, rg):
    """A create at 2022-04-01 answers the tenant form to a request in the subscription form (azure-specs examples/
    authorization/RoleAssignments_CreateForResource.json); reads and lists answer the form it was created with (the
    az CLI finds its own assignments by that string; recording authorization/c7n-role-assignments-list-...)."""
    made = auth.role_assignments.create(rg, str(uuid.uuid4()), _params(sandbox, "bot", "Reader"))
    tenant_form = f"{DEFS}/{ROLES['Reader']}"
    assert made.role_definition_id == tenant_form
    subscription_form = f"/subscriptions/{sandbox.subscription_id}{tenant_form}"
    assert auth.role_assignments.get(rg, made.name).role_definition_id == subscription_form
    listed = [a for a in auth.role_assignments.list_for_scope(rg) if a.name == made.name]
    assert [a.role_definition_id for a in listed] == [subscription_form]
    again = auth.role_assignments.create(rg, made.name, _params(sandbox, "bot", "Reader"))  # 200: the same answer
    assert again.role_definition_id == tenant_form
