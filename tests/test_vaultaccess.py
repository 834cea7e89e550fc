"""remediations/vaultaccess.py: the seed's "Define permissions" as an access review of one vault. Pure."""

from remediations import vaultaccess as va

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg-kv"
VAULT = {
    "id": f"{RG}/providers/Microsoft.KeyVault/vaults/kv1",
    "name": "kv1",
    "properties": {"enableRbacAuthorization": True},
}
ROLES = "/providers/Microsoft.Authorization/roleDefinitions/"
CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"


def ra(scope, guid, kind="User", name="a1", principal="p1", subscription_form=False):
    role = f"{SUB}{ROLES}{guid}" if subscription_form else f"{ROLES}{guid.upper()}"
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "properties": {"scope": scope, "roleDefinitionId": role, "principalType": kind, "principalId": principal},
    }


def problems(entries):
    return sorted((e["problem"], e.get("role")) for e in entries)


def test_a_user_with_a_data_role_at_the_group_is_reported_not_at_the_vault_nor_a_group():
    entries = va.review(
        VAULT,
        [
            ra(RG, CRYPTO_USER, name="wide"),
            ra(VAULT["id"], CRYPTO_USER, name="narrow", subscription_form=True),
            ra(RG, CRYPTO_USER, kind="Group", name="team"),
            ra(f"{SUB}/resourceGroups/rg-other", CRYPTO_USER, name="elsewhere"),
        ],
    )
    assert problems(entries) == [("user-data-role-above-vault", "Key Vault Crypto User")]
    assert entries[0]["assignment"].endswith("/wide")
    assert "Key Vault Reader at the vault" in entries[0]["say"]


def test_owner_or_vault_administrator_held_by_a_user_rather_than_a_group():
    entries = va.review(
        VAULT, [ra(SUB, va.OWNER, name="o"), ra(VAULT["id"], va.KV_ADMINISTRATOR, kind="Group", name="g")]
    )
    assert problems(entries) == [("user-administrator", "Owner")]
    assert "Key Vault Contributor held by a group" in entries[0]["say"]


def test_standing_privileged_assignments_only_where_pim_is_in_use():
    group_admin = ra(VAULT["id"], va.KV_ADMINISTRATOR, kind="Group", name="standing")
    activated = ra(VAULT["id"], va.KV_CONTRIBUTOR, kind="Group", name="activated")
    assert va.review(VAULT, [group_admin]) == []  # no PIM: nothing to compare with
    eligible = [{"properties": {"scope": SUB}}]
    active = [
        {"properties": {"assignmentType": "Activated", "originRoleAssignmentId": activated["id"].upper()}},
        {"properties": {"assignmentType": "Assigned", "originRoleAssignmentId": group_admin["id"]}},
    ]
    entries = va.review(VAULT, [group_admin, activated], eligible, active)
    assert problems(entries) == [("standing-privileged", "Key Vault Administrator")]


def test_access_policies_granting_all_or_purge_on_an_access_policy_vault():
    vault = {
        **VAULT,
        "properties": {
            "accessPolicies": [
                {"objectId": "o1", "permissions": {"keys": ["Get", "ALL"], "secrets": ["purge"]}},
                {"objectId": "o2", "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}},
            ]
        },
    }
    [entry] = va.review(vault, [])
    assert entry["problem"] == "access-policy-all-or-purge" and entry["permissions"] == ["keys: all", "secrets: purge"]
    assert va.review({**vault, "properties": {**vault["properties"], "enableRbacAuthorization": True}}, []) == []
