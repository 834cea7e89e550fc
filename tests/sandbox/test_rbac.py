import pytest

from sandbox import rbac
from sandbox.rbac import ROLES, AssignmentIndex, CustomRoleError, access_policy_allows, action_for, is_allowed

SUB = "/subscriptions/00000000-0000-4000-8000-00000000c0de"
RG = f"{SUB}/resourceGroups/rg1"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv1"
KEY = f"{VAULT}/keys/k1"
ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"


def assignment(principal: str, role: str, scope: str, name: str = "a") -> dict:
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "type": "Microsoft.Authorization/roleAssignments",
        "name": name,
        "properties": {
            "scope": scope,
            "roleDefinitionId": rbac.role_definition_id(role, SUB.rsplit("/", 1)[-1]),
            "principalId": principal,
        },
    }


def allowed(role: str, action: str, scope: str = VAULT, at: str = SUB, *, data: bool = False) -> bool:
    grants = [assignment(ALICE, role, at)]
    by_list = is_allowed(ALICE, action, scope, data_action=data, assignments=grants)
    by_index = is_allowed(ALICE, action, scope, data_action=data, assignments=AssignmentIndex(grants))
    assert by_list == by_index
    return by_list


def test_builtin_roles_have_arm_shape_and_real_ids():
    assert ROLES["Owner"] == "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    assert ROLES["Key Vault Crypto Service Encryption User"] == "e147488a-f6f5-4113-8e2d-b22465e65bf6"
    for guid, role in rbac.BUILTIN_ROLES.items():
        assert role["id"] == f"/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        assert role["type"] == "Microsoft.Authorization/roleDefinitions"
        assert role["properties"]["type"] == "BuiltInRole"
        assert role["properties"]["assignableScopes"] == ["/"]
        assert set(role["properties"]["permissions"][0]) == {"actions", "notActions", "dataActions", "notDataActions"}


def test_role_id_accepts_names_guids_and_paths():
    guid = ROLES["Reader"]
    assert rbac.role_id("reader") == rbac.role_id(guid.upper()) == rbac.role_id(rbac.role_definition_id(guid, "s"))
    with pytest.raises(KeyError, match="built-in roles"):
        rbac.role_id("Emperor")


@pytest.mark.parametrize(
    ("role", "action", "expected"),
    [
        ("Owner", "Microsoft.Authorization/roleAssignments/write", True),
        ("Contributor", "Microsoft.Authorization/roleAssignments/write", False),
        ("Contributor", "Microsoft.Authorization/roleAssignments/delete", False),
        ("Contributor", "Microsoft.Authorization/roleAssignments/read", True),
        ("Contributor", "Microsoft.KeyVault/vaults/write", True),
        ("Contributor", "Microsoft.Authorization/locks/write", False),
        ("Reader", "Microsoft.KeyVault/vaults/read", True),
        ("Reader", "Microsoft.KeyVault/vaults/write", False),
        ("Reader", "Microsoft.Compute/virtualMachines/deallocate/action", False),
        ("User Access Administrator", "Microsoft.Authorization/roleAssignments/write", True),
        ("User Access Administrator", "Microsoft.KeyVault/vaults/write", False),
        ("Key Vault Contributor", "Microsoft.KeyVault/vaults/write", True),
        ("Key Vault Contributor", "Microsoft.KeyVault/vaults/accessPolicies/write", True),
        ("Key Vault Contributor", "Microsoft.KeyVault/locations/deletedVaults/purge/action", False),
        ("Key Vault Contributor", "Microsoft.Compute/disks/write", False),
        ("Virtual Machine Contributor", "Microsoft.Compute/virtualMachines/deallocate/action", True),
        ("Virtual Machine Contributor", "Microsoft.Compute/diskEncryptionSets/write", False),
        ("Tag Contributor", "Microsoft.Resources/tags/write", True),
        ("Tag Contributor", "Microsoft.KeyVault/vaults/write", False),
        ("Monitoring Contributor", "Microsoft.Insights/activityLogAlerts/write", True),
        ("Monitoring Contributor", "Microsoft.Insights/eventtypes/values/read", True),
        ("Log Analytics Contributor", "Microsoft.Insights/diagnosticSettings/write", True),
        ("EventGrid Contributor", "Microsoft.EventGrid/eventSubscriptions/write", True),
        ("Locks Contributor", "Microsoft.Authorization/locks/delete", True),
    ],
)
def test_control_plane_semantics(role, action, expected):
    assert allowed(role, action) is expected


@pytest.mark.parametrize(
    ("role", "operation", "expected"),
    [
        ("Key Vault Contributor", "get", False),
        ("Key Vault Contributor", "create", False),
        ("Owner", "get", False),
        ("Key Vault Crypto Service Encryption User", "get", True),
        ("Key Vault Crypto Service Encryption User", "wrap", True),
        ("Key Vault Crypto Service Encryption User", "unwrap", True),
        ("Key Vault Crypto Service Encryption User", "rotate", False),
        ("Key Vault Crypto Service Encryption User", "get_rotation_policy", False),
        ("Key Vault Crypto Officer", "rotate", True),
        ("Key Vault Crypto Officer", "set_rotation_policy", True),
        ("Key Vault Crypto User", "update", True),
        ("Key Vault Crypto User", "rotate", False),
        ("Key Vault Reader", "get", True),
        ("Key Vault Reader", "get_rotation_policy", True),
        ("Key Vault Reader", "create", False),
        ("Key Vault Administrator", "purge", True),
        ("Key Vault Secrets Officer", "get", False),
    ],
)
def test_data_plane_semantics(role, operation, expected):
    assert allowed(role, rbac.DATA_ACTIONS[operation], KEY, data=True) is expected


def test_actions_never_grant_data_actions_nor_the_reverse():
    assert not allowed("Owner", "Microsoft.KeyVault/vaults/keys/read", KEY, data=True)
    assert not allowed("Key Vault Crypto User", "Microsoft.KeyVault/vaults/keys/read", KEY, data=False)


def test_key_vault_reader_control_plane_wildcard_in_the_middle():
    assert allowed("Key Vault Reader", "Microsoft.KeyVault/vaults/keys/read")
    assert allowed("Key Vault Reader", "Microsoft.KeyVault/vaults/keys/versions/read")
    assert not allowed("Key Vault Reader", "Microsoft.KeyVault/vaults/keys/write")


@pytest.mark.parametrize(
    ("at", "target", "expected"),
    [
        (SUB, SUB, True),
        (SUB, RG, True),
        (SUB, VAULT, True),
        (RG, VAULT, True),
        (RG, SUB, False),
        (VAULT, RG, False),
        (VAULT, KEY, True),
        ("/", VAULT, True),
        (RG, f"{SUB}/resourceGroups/rg2/providers/Microsoft.KeyVault/vaults/kv1", False),
        (RG, f"{SUB}/resourceGroups/rg10", False),
        (RG, f"{SUB}/resourceGroups/rg10/providers/Microsoft.KeyVault/vaults/kv1", False),
        ("/subscriptions/other", VAULT, False),
        (RG.upper(), VAULT.lower(), True),
        (RG + "/", VAULT, True),
    ],
)
def test_scope_inheritance(at, target, expected):
    assert allowed("Reader", "Microsoft.KeyVault/vaults/read", target, at=at) is expected


def test_action_matching_ignores_case():
    assert allowed("Contributor", "MICROSOFT.KEYVAULT/VAULTS/WRITE")
    assert not allowed("Contributor", "microsoft.authorization/ROLEASSIGNMENTS/write")
    assert allowed("Owner", "microsoft.authorization/roleassignments/write")


def test_other_principals_assignments_do_not_count():
    grants = [assignment(BOB, "Owner", SUB)]
    assert not is_allowed(ALICE, "Microsoft.KeyVault/vaults/read", VAULT, data_action=False, assignments=grants)
    assert is_allowed(BOB.upper(), "Microsoft.KeyVault/vaults/read", VAULT, data_action=False, assignments=grants)


def test_not_actions_subtract_within_a_role_not_across_roles():
    grants = [assignment(ALICE, "Contributor", SUB, "a"), assignment(ALICE, "User Access Administrator", RG, "b")]
    write = "Microsoft.Authorization/roleAssignments/write"
    assert is_allowed(ALICE, write, VAULT, data_action=False, assignments=grants)
    assert not is_allowed(ALICE, write, SUB, data_action=False, assignments=grants)


CUSTOM_GUID = "33333333-3333-4333-8333-333333333333"


def custom_role(**permissions) -> dict:
    return {
        "id": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM_GUID}",
        "name": CUSTOM_GUID,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": "Key rotator",
            "type": "CustomRole",
            "assignableScopes": [SUB],
            "permissions": [{"actions": [], "notActions": [], "dataActions": [], "notDataActions": [], **permissions}],
        },
    }


def test_custom_role_wildcards_and_not_data_actions():
    role = custom_role(
        actions=["Microsoft.Authorization/*/Write", "Microsoft.KeyVault/vaults/*/read"],
        dataActions=["Microsoft.KeyVault/vaults/keys/*"],
        notDataActions=["Microsoft.KeyVault/vaults/keys/*/delete", "Microsoft.KeyVault/vaults/keys/purge/action"],
    )
    grants = [assignment(ALICE, CUSTOM_GUID, SUB)]

    def check(action: str, data: bool) -> bool:
        by_list = is_allowed(
            ALICE, action, KEY, data_action=data, assignments=grants, role_definitions={CUSTOM_GUID: role}
        )
        by_index = AssignmentIndex(grants, [role]).allowed(ALICE, action, KEY, data_action=data)
        assert by_list == by_index
        return by_list

    assert check("Microsoft.Authorization/roleAssignments/write", False)
    assert check("Microsoft.Authorization/locks/write", False)
    assert not check("Microsoft.Authorization/locks/delete", False)
    assert check("Microsoft.KeyVault/vaults/keys/read", False)
    assert check(rbac.DATA_ACTIONS["rotate"], True)
    assert check(rbac.DATA_ACTIONS["wrap"], True)
    assert not check(rbac.DATA_ACTIONS["purge"], True)
    assert not check(rbac.DATA_ACTIONS["get_rotation_policy"], True)
    assert not check(rbac.DATA_ACTIONS["rotate"], False)


def test_unknown_role_grants_nothing():
    grants = [assignment(ALICE, CUSTOM_GUID, SUB)]
    assert not is_allowed(ALICE, "Microsoft.KeyVault/vaults/read", VAULT, data_action=False, assignments=grants)


def test_changed_custom_role_is_compiled_anew():
    grants = [assignment(ALICE, CUSTOM_GUID, SUB)]
    action = "Microsoft.KeyVault/vaults/read"
    before = custom_role(actions=["Microsoft.Compute/*"])
    after = custom_role(actions=["Microsoft.KeyVault/*"])
    kwargs = {"data_action": False, "assignments": grants}
    assert not is_allowed(ALICE, action, VAULT, role_definitions={CUSTOM_GUID: before}, **kwargs)
    assert is_allowed(ALICE, action, VAULT, role_definitions={CUSTOM_GUID: after}, **kwargs)


def test_index_add_and_remove():
    index = AssignmentIndex()
    grant = assignment(ALICE, "Reader", SUB, "r1")
    assert not index.allowed(ALICE, "Microsoft.KeyVault/vaults/read", VAULT, data_action=False)
    index.add(grant)
    assert index.allowed(ALICE, "Microsoft.KeyVault/vaults/read", VAULT, data_action=False)
    index.remove(grant["id"].upper())
    assert not index.allowed(ALICE, "Microsoft.KeyVault/vaults/read", VAULT, data_action=False)


@pytest.mark.parametrize(
    ("method", "rtype", "name", "expected"),
    [
        ("GET", "Microsoft.KeyVault/vaults", None, "Microsoft.KeyVault/vaults/read"),
        ("PUT", "Microsoft.KeyVault/vaults", None, "Microsoft.KeyVault/vaults/write"),
        ("PATCH", "Microsoft.Compute/disks", None, "Microsoft.Compute/disks/write"),
        ("DELETE", "Microsoft.Compute/diskEncryptionSets", None, "Microsoft.Compute/diskEncryptionSets/delete"),
        (
            "POST",
            "Microsoft.Compute/virtualMachines",
            "deallocate",
            "Microsoft.Compute/virtualMachines/deallocate/action",
        ),
        ("POST", "Microsoft.Compute/virtualMachines", "powerOff", "Microsoft.Compute/virtualMachines/powerOff/action"),
        ("GET", "resourceGroups", None, "Microsoft.Resources/subscriptions/resourceGroups/read"),
        ("PUT", "Microsoft.Resources/resourceGroups", None, "Microsoft.Resources/subscriptions/resourceGroups/write"),
        ("GET", "subscriptions", None, "Microsoft.Resources/subscriptions/read"),
        ("PUT", "Microsoft.Resources/tags", None, "Microsoft.Resources/tags/write"),
        ("PATCH", "microsoft.resources/tags", None, "Microsoft.Resources/tags/write"),
        ("DELETE", "Microsoft.Resources/tags", None, "Microsoft.Resources/tags/delete"),
        (
            "POST",
            "Microsoft.KeyVault/locations/deletedVaults",
            "purge",
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
        ),
        ("GET", "Microsoft.KeyVault/locations/deletedVaults", None, "Microsoft.KeyVault/locations/deletedVaults/read"),
        ("GET", "Microsoft.KeyVault/deletedVaults", None, "Microsoft.KeyVault/deletedVaults/read"),
        ("PUT", "Microsoft.KeyVault/vaults/accessPolicies", None, "Microsoft.KeyVault/vaults/accessPolicies/write"),
        ("PUT", "Microsoft.Authorization/locks", None, "Microsoft.Authorization/locks/write"),
        ("PUT", "Microsoft.Authorization/roleAssignments", None, "Microsoft.Authorization/roleAssignments/write"),
        ("DELETE", "Microsoft.Authorization/roleDefinitions", None, "Microsoft.Authorization/roleDefinitions/delete"),
        ("PUT", "Microsoft.Insights/diagnosticSettings", None, "Microsoft.Insights/diagnosticSettings/write"),
        ("GET", "Microsoft.Insights/eventtypes/values", None, "Microsoft.Insights/eventtypes/values/read"),
    ],
)
def test_action_for(method, rtype, name, expected):
    assert action_for(method, rtype, name) == expected


def test_action_for_refuses_what_arm_has_no_operation_for():
    with pytest.raises(ValueError, match="needs the action"):
        action_for("POST", "Microsoft.Compute/virtualMachines", None)
    with pytest.raises(ValueError, match="methods"):
        action_for("OPTIONS", "Microsoft.Compute/disks", None)


def test_every_data_operation_has_a_key_permission():
    assert set(rbac.DATA_ACTIONS) == set(rbac.KEY_PERMISSIONS)


POLICIES = [
    {"tenantId": "t", "objectId": ALICE.upper(), "permissions": {"keys": ["Get", "WrapKey", "unwrapKey"]}},
    {"tenantId": "t", "objectId": BOB, "permissions": {"keys": ["all"], "secrets": []}},
    {"tenantId": "t", "objectId": ALICE, "permissions": {"keys": ["rotate"]}},
]


@pytest.mark.parametrize(
    ("who", "operation", "expected"),
    [
        (ALICE, "get", True),
        (ALICE, "wrap", True),
        (ALICE, "unwrap", True),
        (ALICE, "rotate", True),
        (ALICE, "versions", False),
        (ALICE, "get_rotation_policy", False),
        (BOB, "set_rotation_policy", True),
        (BOB, "purge", True),
        ("44444444-4444-4444-8444-444444444444", "get", False),
    ],
)
def test_access_policies(who, operation, expected):
    assert access_policy_allows(POLICIES, who, rbac.KEY_PERMISSIONS[operation]) is expected


def test_access_policy_without_key_permissions():
    assert not access_policy_allows([{"objectId": ALICE, "permissions": {}}], ALICE, "get")
    assert not access_policy_allows([], ALICE, "all")


def role_body(name="Key rotator", **props):
    body = {
        "roleName": name,
        "description": "Rotates keys",
        "assignableScopes": [SUB],
        "permissions": [{"actions": ["Microsoft.KeyVault/vaults/read"], "dataActions": ["Microsoft.KeyVault/*"]}],
    }
    return {"properties": {**body, **props}}


def test_custom_role_validation_normalises():
    props = rbac.validate_custom_role(CUSTOM_GUID, role_body())
    assert props["type"] == "CustomRole"
    assert props["permissions"] == [
        {
            "actions": ["Microsoft.KeyVault/vaults/read"],
            "notActions": [],
            "dataActions": ["Microsoft.KeyVault/*"],
            "notDataActions": [],
        }
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (role_body(roleName=""), 400, "InvalidRoleDefinition"),
        (role_body(permissions=[]), 400, "InvalidRoleDefinition"),
        (role_body(assignableScopes=[]), 400, "InvalidRoleDefinition"),
        (role_body(assignableScopes=["/"]), 400, "InvalidRoleDefinition"),
        (role_body(permissions=[{"actions": ["nonsense"]}]), 400, "InvalidActionOrNotAction"),
        (role_body(name="reader"), 409, "RoleDefinitionWithSameNameExists"),
    ],
)
def test_custom_role_validation_errors(body, status, code):
    with pytest.raises(CustomRoleError) as caught:
        rbac.validate_custom_role(CUSTOM_GUID, body)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.to_body()["error"]["code"] == code


def test_custom_role_names_are_unique_except_for_the_role_itself():
    existing = [custom_role()]
    rbac.validate_custom_role(CUSTOM_GUID, role_body(), existing)  # updating itself keeps its name
    with pytest.raises(CustomRoleError, match="same name"):
        rbac.validate_custom_role("55555555-5555-4555-8555-555555555555", role_body(), existing)
    with pytest.raises(CustomRoleError, match="Built-in"):
        rbac.validate_custom_role(ROLES["Owner"], role_body(name="Owner 2"))


def test_a_list_that_changes_between_checks_is_read_anew():
    grants = [assignment(BOB, "Reader", SUB, "b")]
    action = "Microsoft.KeyVault/vaults/read"
    assert not is_allowed(ALICE, action, VAULT, data_action=False, assignments=grants)
    grants.append(assignment(ALICE, "Reader", RG, "a"))
    assert is_allowed(ALICE, action, VAULT, data_action=False, assignments=grants)
    grants.pop()
    assert not is_allowed(ALICE, action, VAULT, data_action=False, assignments=grants)
    assert is_allowed(ALICE, action, VAULT, data_action=False, assignments=iter([assignment(ALICE, "Reader", SUB)]))
