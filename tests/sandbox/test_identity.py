import jwt
import pytest

from sandbox.identity import (
    ARM_AUDIENCES,
    AZURE_CLI_APP_ID,
    VAULT_AUDIENCES,
    Directory,
    IdentityNotFound,
    TokenError,
    bearer_token,
)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "00000000-0000-4000-8000-00000000c0de"
SECRET = b"sandbox-secret-for-tests-0123456789"
NOW = 1_800_000_000.0
DES = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/diskEncryptionSets/des1"


@pytest.fixture
def directory() -> Directory:
    return Directory(TENANT, SECRET, SUB)


def test_named_principals_are_stable_across_directories(directory):
    other = Directory("another-tenant", b"another-secret", SUB)
    assert {n: p.object_id for n, p in directory.names().items()} == {n: p.object_id for n, p in other.names().items()}
    assert set(directory.names()) == {"bot", "admin", "reader", "intruder", "approver", "vault-owner"}
    ids = [p.object_id for p in directory.all()] + [p.client_id for p in directory.all() if p.client_id]
    assert len(set(ids)) == len(ids)


def test_named_principals_shape(directory):
    bot, admin = directory.named("bot"), directory.named("admin")
    assert bot.kind == "ServicePrincipal"
    assert bot.mi_resource_id == (
        f"/subscriptions/{SUB}/resourceGroups/rg-cryptward/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/id-cryptward"
    )
    assert (admin.kind, admin.upn, admin.display_name) == ("User", "admin@contoso.example", "Estate Administrator")
    assert directory.named("reader").kind == "User"
    assert directory.named("intruder").kind == "ServicePrincipal"
    with pytest.raises(KeyError, match="named principals"):
        directory.named("mallory")


def test_find_follows_managed_identity_selection(directory):
    bot, intruder = directory.named("bot"), directory.named("intruder")
    assert directory.find() is bot
    assert directory.find(client_id=intruder.client_id.upper()) is intruder
    assert directory.find(object_id=intruder.object_id) is intruder
    assert directory.find(mi_res_id=bot.mi_resource_id.lower()) is bot
    admin = directory.named("admin")
    assert directory.find(client_id=admin.client_id) is admin  # the sandbox's stand-in for `az login` as a user


def test_find_refuses_unknown_and_ambiguous_selectors(directory):
    with pytest.raises(IdentityNotFound) as caught:
        directory.find(client_id="99999999-9999-4999-8999-999999999999")
    assert caught.value.to_body() == {"error": "invalid_request", "error_description": "Identity not found"}
    with pytest.raises(IdentityNotFound):
        directory.find(mi_res_id=DES)
    bot = directory.named("bot")
    with pytest.raises(IdentityNotFound, match="Only one"):
        directory.find(client_id=bot.client_id, object_id=bot.object_id)


def test_system_identities(directory):
    des = directory.add_system_identity(DES)
    assert (des.kind, des.display_name, des.system_assigned_for) == ("ServicePrincipal", "des1", DES)
    assert directory.add_system_identity(DES.upper()) is des
    assert directory.by_object_id(des.object_id.upper()) is des
    assert directory.find(mi_res_id=DES) is des
    assert directory.remove_system_identity(DES) is des
    assert directory.by_object_id(des.object_id) is None
    assert directory.add_system_identity(DES).object_id != des.object_id


def test_round_trip_through_dict(directory):
    des = directory.add_system_identity(DES)
    copy = Directory.from_dict(directory.to_dict(), SECRET)
    assert copy.to_dict() == directory.to_dict()
    assert copy.by_object_id(des.object_id) == des
    token, _ = directory.mint_token(des, "https://management.azure.com/", NOW)
    assert copy.verify_token(token, NOW, ARM_AUDIENCES) == des


def test_reset_drops_system_identities(directory):
    des = directory.add_system_identity(DES)
    directory.reset()
    assert directory.by_object_id(des.object_id) is None
    assert len(directory.all()) == len(directory.names()) == 6


def decode(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_app_token_claims(directory):
    bot = directory.named("bot")
    token, expires_on = directory.mint_token(bot, "https://management.core.windows.net/", NOW, lifetime=3600)
    claims = decode(token)
    assert expires_on == claims["exp"] == int(NOW) + 3600
    assert claims["aud"] == "https://management.core.windows.net/"
    assert claims["iss"] == f"https://sts.windows.net/{TENANT}/"
    assert claims["tid"] == TENANT
    assert claims["oid"] == claims["sub"] == bot.object_id
    assert claims["appid"] == bot.client_id
    assert claims["idtyp"] == "app"
    assert claims["xms_mirid"] == bot.mi_resource_id
    assert claims["iat"] == claims["nbf"] == int(NOW)
    assert "upn" not in claims
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_user_token_claims(directory):
    admin = directory.named("admin")
    claims = decode(directory.mint_token(admin, "https://vault.azure.net", NOW)[0])
    assert claims["appid"] == AZURE_CLI_APP_ID
    assert claims["idtyp"] == "user"
    assert claims["upn"] == claims["unique_name"] == "admin@contoso.example"
    assert claims["name"] == "Estate Administrator"
    assert "xms_mirid" not in claims


def test_system_identity_token_names_its_resource(directory):
    des = directory.add_system_identity(DES)
    assert decode(directory.mint_token(des, "https://vault.azure.net", NOW)[0])["xms_mirid"] == DES


@pytest.mark.parametrize("audience", sorted(ARM_AUDIENCES))
def test_arm_accepts_both_management_audiences(directory, audience):
    bot = directory.named("bot")
    token, _ = directory.mint_token(bot, audience, NOW)
    assert directory.verify_token(token, NOW + 10, ARM_AUDIENCES) is bot


@pytest.mark.parametrize("audience", sorted(VAULT_AUDIENCES))
def test_vault_accepts_its_audience_with_or_without_slash(directory, audience):
    token, _ = directory.mint_token(directory.named("bot"), audience, NOW)
    assert directory.verify_token(token, NOW, VAULT_AUDIENCES).object_id == directory.named("bot").object_id


def test_wrong_audience(directory):
    token, _ = directory.mint_token(directory.named("bot"), "https://vault.azure.net", NOW)
    with pytest.raises(TokenError) as caught:
        directory.verify_token(token, NOW, ARM_AUDIENCES)
    assert caught.value.code == "InvalidAuthenticationTokenAudience"
    assert caught.value.message == (
        "The access token has been obtained for wrong audience or resource 'https://vault.azure.net'. It should "
        "exactly match with one of the allowed audiences 'https://management.core.windows.net/',"
        "'https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
    )


def test_expired(directory):
    token, expires_on = directory.mint_token(directory.named("bot"), "https://management.azure.com/", NOW, 60)
    with pytest.raises(TokenError) as caught:
        directory.verify_token(token, expires_on, ARM_AUDIENCES)
    assert caught.value.code == "ExpiredAuthenticationToken"
    assert caught.value.message == (
        "The access token expiry UTC time '1/15/2027 8:01:00 AM' is earlier than current UTC time "
        "'1/15/2027 8:01:00 AM'."
    )
    assert caught.value.to_body()["error"]["code"] == "ExpiredAuthenticationToken"


def test_not_yet_valid(directory):
    token, _ = directory.mint_token(directory.named("bot"), "https://management.azure.com/", NOW)
    with pytest.raises(TokenError, match="InvalidAuthenticationToken"):
        directory.verify_token(token, NOW - 1, ARM_AUDIENCES)


@pytest.mark.parametrize(
    "forge",
    [
        lambda claims: jwt.encode(claims, b"not-the-sandbox-secret-but-long-enough-for-hs256", algorithm="HS256"),
        lambda claims: jwt.encode(claims, None, algorithm="none"),
        lambda claims: "not.a.jwt",
        lambda claims: "",
    ],
)
def test_forged_tokens(directory, forge):
    claims = directory.claims(directory.named("admin"), "https://management.azure.com/", NOW)
    with pytest.raises(TokenError) as caught:
        directory.verify_token(forge(claims), NOW, ARM_AUDIENCES)
    assert (caught.value.code, caught.value.message) == ("InvalidAuthenticationToken", "The access token is invalid.")


def test_token_from_another_tenant(directory):
    other = Directory("another-tenant", SECRET, SUB)
    token, _ = other.mint_token(other.named("bot"), "https://management.azure.com/", NOW)
    with pytest.raises(TokenError, match="InvalidAuthenticationTokenTenant"):
        directory.verify_token(token, NOW, ARM_AUDIENCES)


def test_token_of_a_deleted_identity(directory):
    des = directory.add_system_identity(DES)
    token, _ = directory.mint_token(des, "https://management.azure.com/", NOW)
    directory.remove_system_identity(DES)
    with pytest.raises(TokenError, match="InvalidAuthenticationToken"):
        directory.verify_token(token, NOW, ARM_AUDIENCES)


def test_bearer_token_header():
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc ") == "abc"
    with pytest.raises(TokenError) as missing:
        bearer_token(None)
    assert (missing.value.code, missing.value.message) == (
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
    )
    for bad in ("Basic dXNlcjpwYXNz", "Bearer", "abc"):
        with pytest.raises(TokenError, match="AuthenticationFailedInvalidHeader"):
            bearer_token(bad)


def test_named_principals_know_their_handle(directory):
    assert all(p.name == n for n, p in directory.names().items())
    assert directory.add_system_identity(DES).name is None
    assert directory.named("admin").to_dict()["upn"] == "admin@contoso.example"
