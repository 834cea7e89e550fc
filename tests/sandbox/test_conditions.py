"""The condition language of role assignment delegation (sandbox/conditions.py), as pure functions, and rbac's use of
it. The examples are Microsoft Learn's: "Examples to delegate Azure role assignment management with conditions"
(MicrosoftDocs/azure-docs articles/role-based-access-control/delegate-role-assignments-examples.md) and "Azure
condition format and syntax" (conditions-format.md)."""

import pytest

from sandbox import conditions, rbac
from sandbox.conditions import ConditionError, Request, evaluate, parse
from sandbox.rbac import ROLES

WRITE = "Microsoft.Authorization/roleAssignments/write"
DELETE = "Microsoft.Authorization/roleAssignments/delete"
BACKUP_CONTRIBUTOR, BACKUP_READER = "5e467623-bb1f-42f4-a55d-6e525e11384b", "a795c7a0-d4a2-40c1-ae25-d81f01202912"
MARKETING = "28c35fea-2099-4cf5-8ad9-473547bc9423"

# "Example: Constrain roles and principal types", as the Learn page lays it out (new lines, indents).
ROLES_AND_TYPES = """(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'User', 'Group'}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'User', 'Group'}
 )
)"""  # noqa: E501

# "Example: Constrain roles and specific groups" (PrincipalId), one line as in its PowerShell tab.
ROLES_AND_PRINCIPALS = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{5e467623-bb1f-42f4-a55d-6e525e11384b, a795c7a0-d4a2-40c1-ae25-d81f01202912} AND "
    "@Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals "
    "{28c35fea-2099-4cf5-8ad9-473547bc9423, 86951b8b-723a-407b-a74a-1bca3f0c95d0}))"
)

# "Example: Allow most roles, but don't allow others to assign roles" (ForAnyOfAllValues:GuidNotEquals).
ALL_BUT_ADMINS = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals "
    "{8e3af657-a8ff-443c-a75c-2fe8c4bcb635, f58310d9-a9f6-439a-9e8d-f62e7b41a168, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}"
    ")) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals "
    "{8e3af657-a8ff-443c-a75c-2fe8c4bcb635, f58310d9-a9f6-439a-9e8d-f62e7b41a168, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9}"
    "))"
)


def request(action: str, source: str = "Request", **props: str) -> Request:
    return Request(action, conditions.role_assignment_attributes(source, props))


def role(guid: str) -> str:
    return f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}"


@pytest.mark.parametrize(
    ("action", "source", "role_guid", "principal_type", "expected"),
    [
        (WRITE, "Request", BACKUP_CONTRIBUTOR, "User", True),
        (WRITE, "Request", BACKUP_READER.upper(), "group", True),  # GUIDs and IgnoreCase strings ignore case
        (WRITE, "Request", BACKUP_READER, "ServicePrincipal", False),
        (WRITE, "Request", ROLES["Owner"], "User", False),
        (DELETE, "Resource", BACKUP_READER, "Group", True),
        (DELETE, "Resource", ROLES["Owner"], "User", False),
        (DELETE, "Request", BACKUP_READER, "Group", False),  # a delete carries Resource attributes, not Request ones
        ("Microsoft.KeyVault/vaults/write", "Request", ROLES["Owner"], "User", True),  # not a targeted action
        ("microsoft.authorization/roleassignments/WRITE", "Request", ROLES["Owner"], "User", False),
    ],
)
def test_the_roles_and_principal_types_example(action, source, role_guid, principal_type, expected):
    req = request(action, source, roleDefinitionId=role(role_guid), principalType=principal_type)
    assert evaluate(parse(ROLES_AND_TYPES), req) is expected


def test_principal_ids_and_all_but_some_roles():
    node = parse(ROLES_AND_PRINCIPALS)
    ok = request(WRITE, roleDefinitionId=role(BACKUP_READER), principalId=MARKETING.upper())
    assert evaluate(node, ok)
    assert not evaluate(node, request(WRITE, roleDefinitionId=role(BACKUP_READER), principalId=ROLES["Reader"]))
    node = parse(ALL_BUT_ADMINS)
    assert evaluate(node, request(WRITE, roleDefinitionId=role(ROLES["Reader"])))
    for admin in ("Owner", "User Access Administrator", "Role Based Access Control Administrator"):
        assert not evaluate(node, request(WRITE, roleDefinitionId=role(ROLES[admin])))
        assert not evaluate(node, request(DELETE, "Resource", roleDefinitionId=role(ROLES[admin])))


def test_action_patterns_suboperations_exists_and_missing_attributes():
    # conditions-format.md, ActionMatches: "roleAssignments/*" matches the write; "roleDefinitions/*" does not
    assert evaluate(parse("ActionMatches{'Microsoft.Authorization/roleAssignments/*'}"), Request(WRITE))
    assert not evaluate(parse("ActionMatches{'Microsoft.Authorization/roleDefinitions/*'}"), Request(WRITE))
    # ARM operations have no suboperation; the documented form parses
    blob_read = "!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT "
    assert evaluate(parse(blob_read + "SubOperationMatches{'Blob.List'})"), Request(WRITE))
    assert not evaluate(parse("SubOperationMatches{'Blob.List'}"), Request(WRITE))
    exists = "Exists @Request[Microsoft.Authorization/roleAssignments:PrincipalType]"
    assert evaluate(parse(exists), request(WRITE, principalType="User"))
    assert evaluate(parse(f"NOT {exists}"), request(WRITE))
    # && and || are AND and OR
    assert evaluate(parse(f"{exists} || ActionMatches{{'{WRITE}'}}"), Request(WRITE))
    assert not evaluate(parse(f"{exists} && ActionMatches{{'{WRITE}'}}"), Request(WRITE))
    # a comparison on an attribute the request lacks fails, negative operators and All quantifiers included
    principal_type = "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]"
    for text in (
        f"{principal_type} StringNotEquals 'User'",
        f"{principal_type} ForAllOfAllValues:StringNotEqualsIgnoreCase {{'User'}}",
        f"{principal_type} ForAllOfAnyValues:StringEquals {{'User'}}",
    ):
        assert not evaluate(parse(text), request(WRITE)), text
    assert evaluate(parse(f"{principal_type} StringEquals 'User'"), request(WRITE, principalType="User"))
    assert not evaluate(parse(f"{principal_type} StringEquals 'User'"), request(WRITE, principalType="user"))


RD = "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId]"
PT = "@Request[Microsoft.Authorization/roleAssignments:PrincipalType]"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        f"({RD} GuidEquals {BACKUP_READER}",  # unbalanced
        f"{RD} GuidEquals {BACKUP_READER})",
        f"{RD} GuidEquals {BACKUP_READER} AND {PT} StringEquals 'User' OR {PT} StringEquals 'Group'",  # a AND b OR c
        f"{RD} GuidEquals",  # no value
        f"{RD} GuidEquals '{BACKUP_READER}'",  # a GUID is not quoted
        f"{RD} GuidEquals not-a-guid",
        f"{RD} GuidEquals {BACKUP_READER}0",
        f"{PT} StringEquals User",  # a string is quoted
        f"{RD} GuidEquals {{{BACKUP_READER}, {BACKUP_CONTRIBUTOR}}}",  # a set needs a ForAnyOf/ForAllOf
        f"{RD} ForSomeValues:GuidEquals {{{BACKUP_READER}}}",
        f"{RD} ForAnyOfAnyValues:GuidEquals {{{BACKUP_READER},}}",
        f"{RD} ForAnyOfAnyValues:GuidEquals {{}}",
        f"{RD} StringEquals 'x'",  # a GUID attribute takes GUID operators
        f"{PT} GuidEquals {BACKUP_READER}",
        f"{RD} GuidEqual {BACKUP_READER}",
        f"{RD} guidEquals {BACKUP_READER}",  # spelled as documented
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId GuidEquals x",
        "@Somewhere[Microsoft.Authorization/roleAssignments:PrincipalType] StringEquals 'User'",
        "ActionMatches{Microsoft.Authorization/roleAssignments/write}",
        "ActionMatches('Microsoft.Authorization/roleAssignments/write')",
        "!",
        "!()",
        "(ActionMatches{'a/b'}) AND",
        "ActionMatches{'a/b'} ActionMatches{'a/c'}",
        "ActionMatches{'a/b'} # comment",
        "ActionMatches{'" + "a" * conditions.MAX_LENGTH + "'}",  # over 8 KB (conditions-faq.md)
    ],
)
def test_malformed_conditions(text):
    with pytest.raises(ConditionError) as caught:
        parse(text)
    assert not caught.value.unsupported


@pytest.mark.parametrize(
    "text",
    [
        "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'blobs-example'",
        "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project] StringEquals 'Cascade'",
        "@Environment[isPrivateLink] BoolEquals true",
        f"{PT} StringLikeIgnoreCase 'Serv*'",
        f"{PT} ForAnyOfAnyValues:StringStartsWith {{'Serv'}}",
    ],
)
def test_what_the_sandbox_does_not_model_is_refused_as_such(text):
    with pytest.raises(ConditionError) as caught:
        parse(text)
    assert caught.value.unsupported


def test_a_stored_condition_that_does_not_parse_never_holds():
    assert not conditions.holds("(", Request("Microsoft.KeyVault/vaults/read"))
    assert conditions.holds("!(ActionMatches{'a/b'})", Request("Microsoft.KeyVault/vaults/read"))


# --- rbac with conditions ----------------------------------------------------------------------------------------

SUB = "/subscriptions/00000000-0000-4000-8000-00000000c0de"
ALICE = "11111111-1111-4111-8111-111111111111"
CSEU = ROLES["Key Vault Crypto Service Encryption User"]
ONLY_CSEU_TO_SERVICE_PRINCIPALS = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    f"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{CSEU}}} "
    "AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'ServicePrincipal'}))"
)


def grant(role_name: str, name: str, condition: str | None = None) -> dict:
    return {
        "id": f"{SUB}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "properties": {
            "scope": SUB,
            "roleDefinitionId": rbac.role_definition_id(role_name, SUB.rsplit("/", 1)[-1]),
            "principalId": ALICE,
            "condition": condition,
            "conditionVersion": "2.0" if condition else None,
        },
    }


def decisions(grants: list[dict], action: str, **props: str) -> set[str]:
    attributes = conditions.role_assignment_attributes("Request", props)
    kwargs = {"data_action": False, "attributes": attributes}
    by_list = rbac.decide(ALICE, action, SUB, assignments=grants, **kwargs)
    by_index = rbac.decide(ALICE, action, SUB, assignments=rbac.AssignmentIndex(grants), **kwargs)
    return {by_list, by_index}


def test_a_conditioned_grant_allows_only_what_its_condition_holds_for():
    conditioned = [grant("User Access Administrator", "a", ONLY_CSEU_TO_SERVICE_PRINCIPALS)]
    sp, user = "ServicePrincipal", "User"
    assert decisions(conditioned, WRITE, roleDefinitionId=role(CSEU), principalType=sp) == {rbac.ALLOWED}
    assert decisions(conditioned, WRITE, roleDefinitionId=role(ROLES["Owner"]), principalType=sp) == {
        rbac.CONDITION_NOT_MET
    }
    assert decisions(conditioned, WRITE, roleDefinitionId=role(CSEU), principalType=user) == {rbac.CONDITION_NOT_MET}
    assert decisions(conditioned, WRITE, roleDefinitionId=role(CSEU)) == {rbac.CONDITION_NOT_MET}  # type not given
    # actions the condition does not target are granted as the role says
    assert decisions(conditioned, "Microsoft.Authorization/roleAssignments/read") == {rbac.ALLOWED}
    assert decisions(conditioned, DELETE) == {rbac.ALLOWED}
    assert decisions(conditioned, "Microsoft.KeyVault/vaults/write") == {rbac.NOT_GRANTED}
    # one grant without a condition is enough (Learn, conditions-troubleshoot.md: "Condition is not enforced", cause 1)
    both = [*conditioned, grant("Role Based Access Control Administrator", "b")]
    assert decisions(both, WRITE, roleDefinitionId=role(ROLES["Owner"]), principalType=user) == {rbac.ALLOWED}
    assert rbac.is_allowed(ALICE, WRITE, SUB, data_action=False, assignments=conditioned) is False
