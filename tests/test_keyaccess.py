"""remediations/keyaccess.py: key access decided as Key Vault decides it (pure)."""

import pytest

from remediations import keyaccess

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590"
VAULT = f"{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kv-keys"
KEY = f"{VAULT}/keys/des-key"
SP = "a3f1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8"
UAI_SP = "6c0e7d52-91a4-4f3b-8e2a-7d9b1c3e5f60"
CSEU = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
UAI = f"{SUB}/resourceGroups/rg-keys/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-des"


def vault(rbac=None, policies=()):
    props = {"tenantId": TENANT, "accessPolicies": list(policies)}
    if rbac is not ...:
        props["enableRbacAuthorization"] = rbac
    return {"id": VAULT, "properties": props}


def des(identity):
    key_url = "https://kv-keys.vault.azure.net/keys/des-key/0123456789abcdef0123456789abcdef"
    des_id = f"{SUB}/resourceGroups/rg-keys/providers/Microsoft.Compute/diskEncryptionSets/des"
    active = {"sourceVault": {"id": VAULT}, "keyUrl": key_url}
    return {"id": des_id, "identity": identity, "properties": {"activeKey": active}}


def assignment(scope, role=CSEU, principal=SP, form="/providers/Microsoft.Authorization/roleDefinitions/"):
    return {"id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/x",
            "properties": {"scope": scope, "principalId": principal, "roleDefinitionId": f"{form}{role}"}}  # fmt: skip


@pytest.mark.parametrize(("rbac", "uses"), [(True, True), (False, False), (None, False), (..., False), ("true", False)])
def test_only_true_means_rbac_absent_means_access_policies(rbac, uses):
    assert keyaccess.uses_rbac(vault(rbac)) is uses


def test_a_user_assigned_identity_is_the_one_used_and_has_no_top_level_principal():
    both = {"type": "SystemAssigned, UserAssigned", "principalId": SP,
            "userAssignedIdentities": {UAI: {"principalId": UAI_SP.upper(), "clientId": "c"}}}  # fmt: skip
    assert keyaccess.principals(des(both)) == [UAI_SP]
    assert keyaccess.principals(des({"type": "UserAssigned", "userAssignedIdentities": {UAI: {"principalId": UAI_SP}}}))
    assert keyaccess.principals(des({"type": "SystemAssigned", "principalId": SP})) == [SP]
    assert keyaccess.principals(des({"type": "None"})) == []


@pytest.mark.parametrize(
    ("entry", "grants"),
    [
        ({"permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}}, True),
        ({"permissions": {"keys": ["Get", "WRAPKEY", "unwrapkey", "list"]}}, True),
        ({"permissions": {"keys": ["All"]}}, True),
        ({"permissions": {"keys": ["get", "wrapKey"]}}, False),  # no unwrapKey
        ({"permissions": {"keys": ["all"]}, "tenantId": "00000000-0000-0000-0000-0000000000ff"}, False),
        ({"permissions": {"keys": ["all"]}, "applicationId": "11111111-2222-3333-4444-555555555555"}, False),
        ({"permissions": {"keys": ["all"]}, "objectId": UAI_SP}, False),
        ({"permissions": {"secrets": ["all"]}}, False),
    ],
)
def test_an_access_policy_grants_get_wrap_and_unwrap_in_the_vaults_tenant(entry, grants):
    policy = {"tenantId": TENANT.upper(), "objectId": SP.upper(), **entry}
    assert keyaccess.access_policy_grants(vault(False, [policy]), SP) is grants


@pytest.mark.parametrize(
    ("scope", "role", "grants"),
    [
        (KEY, CSEU, True),
        (VAULT, CSEU, True),
        (f"{SUB}/resourceGroups/rg-keys", "12338af0-0e69-4776-bea7-57ae8d297424", True),  # Crypto User
        (SUB, "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", True),  # Crypto Officer
        ("/providers/Microsoft.Management/managementGroups/mg-platform", CSEU, True),
        ("/", "00482a5a-887f-4fb3-b363-3b7fe8e74483", True),  # Administrator at the root
        (f"{VAULT}/keys/other-key", CSEU, False),
        (f"{SUB}/resourceGroups/rg-keys-other", CSEU, False),
        (VAULT, "b24988ac-6180-42a0-ab88-20f7382dd24c", False),  # Contributor: no data actions
        (VAULT, "21090545-7ca7-4776-b22c-e363652d74d2", False),  # Key Vault Reader
    ],
)
def test_a_role_grants_the_key_from_the_key_or_any_scope_above(scope, role, grants):
    assert bool(keyaccess.key_roles([assignment(scope, role)], SP, KEY)) is grants


KEYS = "Microsoft.KeyVault/vaults/keys"
CUSTOM = "3c1b4c0e-5f1a-4d3e-9a8b-0c2d4e6f8a1b"


def role(*blocks):
    perms = [{"actions": [], "notActions": [], "dataActions": d, "notDataActions": n} for d, n in blocks]
    return {"name": CUSTOM, "properties": {"roleType": "CustomRole", "permissions": perms}}


@pytest.mark.parametrize(
    ("definition", "granted"),
    [
        (role(([f"{KEYS}/read", f"{KEYS}/wrap/action", f"{KEYS}/unwrap/action"], [])), 3),
        (role(([f"{KEYS}/*"], [])), 3),
        (role((["*"], [])), 3),
        (role((["microsoft.keyvault/VAULTS/keys/*"], [])), 3),  # without case
        (role(([f"{KEYS}/*/action"], [])), 2),  # wrap and unwrap; not read
        (role(([f"{KEYS}/*"], [f"{KEYS}/unwrap/action"])), 2),
        (role(([f"{KEYS}/*"], [f"{KEYS}/*/action"])), 1),  # the exclusion may hold a wildcard too
        (role(([f"{KEYS}/*"], [f"{KEYS}/unwrap/action"]), ([f"{KEYS}/unwrap/action"], [])), 3),  # another block grants
        (role((["Microsoft.KeyVault/vaults/secrets/*"], [])), 0),
        ({"properties": {"permissions": [{"actions": ["*"]}]}}, 0),  # Owner-like: actions are not data actions
        (None, 0),
    ],
)
def test_a_role_definition_grants_the_key_data_actions_its_blocks_allow_and_do_not_exclude(definition, granted):
    assert len(keyaccess.granted_data_actions(definition)) == granted


def test_custom_roles_count_by_their_definitions_together_and_an_unread_one_grants_nothing():
    other = "4d2c5d1f-6a2b-4e4f-8b9c-1d3e5f7a9b2c"
    split = [assignment(KEY, CUSTOM), assignment(VAULT, other)]
    definitions = {CUSTOM: role(([f"{KEYS}/read", f"{KEYS}/wrap/action"], [])),
                   other: role(([f"{KEYS}/unwrap/action"], []))}  # fmt: skip
    assert keyaccess.key_roles(split, SP, KEY, definitions) == split  # together they grant all three
    assert keyaccess.key_roles(split, SP, KEY, {CUSTOM: definitions[CUSTOM]}) == []  # one unread: not enough
    assert keyaccess.key_roles([assignment(KEY, CUSTOM)], SP, KEY) == []  # no definition: nothing granted
    assert keyaccess.unknown_roles([*split, assignment(KEY)], SP, KEY) == [
        f"/providers/Microsoft.Authorization/roleDefinitions/{r}" for r in (CUSTOM, other)
    ]
    system = des({"type": "SystemAssigned", "principalId": SP})
    assert keyaccess.block(system, vault(True), split, definitions)["missing"] == []
    assert keyaccess.block(system, vault(True), split)["missing"] == [SP]


def test_the_block_lists_the_principals_that_cannot_use_the_key_under_the_vaults_model():
    system = des({"type": "SystemAssigned", "principalId": SP})
    role = [assignment(KEY, form=f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/")]
    policy = {"tenantId": TENANT, "objectId": SP, "permissions": {"keys": ["all"]}}
    assert keyaccess.block(system, vault(True), role)["missing"] == []
    assert keyaccess.block(system, vault(...), role) == {  # the same role on a vault that never said RBAC: ignored
        "model": "accessPolicies", "keyScope": KEY, "principals": [SP], "missing": [SP]}  # fmt: skip
    assert keyaccess.block(system, vault(None, [policy]), None)["missing"] == []
    assert keyaccess.block(system, vault(True, [policy]), [])["missing"] == [SP]  # policies ignored under RBAC


def test_role_definition_ids_compare_by_guid():
    tenant_form = f"/providers/Microsoft.Authorization/roleDefinitions/{CSEU}"
    assert keyaccess.same_role(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CSEU.upper()}", tenant_form)
    assert not keyaccess.same_role(tenant_form, tenant_form.replace("e147", "f147"))
    assert keyaccess.is_role_definition_id(tenant_form) and not keyaccess.is_role_definition_id(VAULT)
