"""The Key Vault keys data plane through the real KeyClient: challenge handshake, RBAC vs access policies, network
rules, keys, versions, rotation and rotation policies, and the helpers other providers use.

Each vault's data plane is the root of its own origin, https://127.0.0.1:{vault port}/, as Azure's is
https://{vault}.vault.azure.net/ (the Key Vault SDK accepts no other form of key id).
"""

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.providers import keyvault
from sandbox.rbac import ROLES
from sandbox.scenarios import assign

RG = "rg-kvd"
LOCATION = "westeurope"


@pytest.fixture
def kv(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOCATION})
    return sandbox.client(KeyVaultManagementClient)


def make_vault(sandbox, kv, name, **extra):
    properties = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}, **extra}
    return kv.vaults.begin_create_or_update(RG, name, {"location": LOCATION, "properties": properties}).result()


def key_client(sandbox, vault, principal="admin"):
    return KeyClient(
        vault_url=vault.properties.vault_uri,
        credential=sandbox.credential(principal),
        verify_challenge_resource=False,
        connection_verify=sandbox.ca,
    )


def grant(sandbox, principal, role, scope):
    sb = sandbox.running.sandbox
    assign(sb, scope, sb.directory.named(principal), ROLES[role])


def refused(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    error = err.value.response.json()["error"]
    return err.value.status_code, error["code"], (error.get("innererror") or {}).get("code"), error["message"]


def policy_vault(sandbox, kv, name, keys_for_admin=("get", "list", "create", "update", "rotate")):
    entry = {
        "tenantId": sandbox.tenant_id,
        "objectId": sandbox.principal("admin").object_id,
        "permissions": {"keys": list(keys_for_admin)},
    }
    return make_vault(sandbox, kv, name, enableRbacAuthorization=False, accessPolicies=[entry])


def test_challenge_handshake_then_rbac_refusal_until_crypto_officer(sandbox, kv):
    vault = make_vault(sandbox, kv, "kvd-rbac")
    client = key_client(sandbox, vault)
    start = len(sandbox.calls())
    status, code, inner, message = refused(lambda: client.create_rsa_key("k1"))
    assert (status, code, inner) == (403, "Forbidden", "ForbiddenByRbac")  # Owner has no data actions
    assert "Action: 'Microsoft.KeyVault/vaults/keys/create/action'" in message
    first = [c for c in sandbox.calls()[start:] if c["path"].startswith("/keys/")]
    assert [c["status"] for c in first[:2]] == [401, 403]  # the challenge, then the authenticated request
    grant(sandbox, "admin", "Key Vault Crypto Officer", vault.id)
    key = client.create_rsa_key("k1", size=2048, tags={"purpose": "des"})
    assert key.id.startswith(f"{vault.properties.vault_uri}keys/k1/")
    assert key.key_type == "RSA" and len(key.key.n) == 256 and key.key.e == b"\x01\x00\x01"
    assert key.properties.recovery_level == "Recoverable+Purgeable" and key.properties.tags == {"purpose": "des"}
    assert client.get_key("k1").id == key.id  # GET /keys/k1/ (latest)
    bot = key_client(sandbox, vault, "bot")
    assert refused(lambda: bot.get_key("k1"))[2] == "ForbiddenByRbac"


def test_access_policy_vault(sandbox, kv):
    vault = policy_vault(sandbox, kv, "kvd-ap")
    client = key_client(sandbox, vault)
    key = client.create_ec_key("ec1")
    assert (key.key_type, key.key.crv) == ("EC", "P-256")
    status, code, inner, message = refused(lambda: key_client(sandbox, vault, "bot").get_key("ec1"))
    assert (status, code, inner) == (403, "Forbidden", "AccessDenied")
    assert "does not have keys get permission on key vault 'kvd-ap;location=westeurope'" in message
    grant(sandbox, "bot", "Key Vault Crypto Officer", vault.id)  # RBAC does not count on an access-policy vault
    assert refused(lambda: key_client(sandbox, vault, "bot").get_key("ec1"))[2] == "AccessDenied"
    sb = sandbox.running.sandbox
    body = sb.state.get(vault.id)
    assert keyvault.can_use_key(sb, sandbox.principal("admin").object_id, body, "ec1", ("get",))
    assert not keyvault.can_use_key(sb, sandbox.principal("admin").object_id, body, "ec1")  # no wrap/unwrap


def test_versions_paging_update_and_not_found(sandbox, kv):
    vault = policy_vault(sandbox, kv, "kvd-ver")
    client = key_client(sandbox, vault)
    ids = [client.create_rsa_key("multi").id for _ in range(3)]  # create on an existing name adds a version
    start = len(sandbox.calls())
    listed = [p.id for p in client.list_properties_of_key_versions("multi", max_page_size=2)]
    assert listed == ids
    pages = [c for c in sandbox.calls()[start:] if c["path"].endswith("/versions") and c["status"] == 200]
    assert len(pages) == 2
    assert [p.name for p in client.list_properties_of_keys()] == ["multi"]
    first = ids[0].rsplit("/", 1)[1]
    assert client.get_key("multi", first).id == ids[0]
    updated = client.update_key_properties("multi", first, enabled=False, tags={"t": "1"})
    assert updated.properties.enabled is False and updated.properties.tags == {"t": "1"}
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_key("absent")
    assert err.value.error.code == "KeyNotFound"
    assert "A key with (name/id) absent was not found in this key vault." in err.value.error.message


def test_rotate_and_rotation_policy(sandbox, kv):
    vault = make_vault(sandbox, kv, "kvd-rot", enablePurgeProtection=True)
    grant(sandbox, "admin", "Key Vault Crypto Officer", vault.id)
    client = key_client(sandbox, vault)
    key = client.create_rsa_key("rot", size=3072)
    assert key.properties.recovery_level == "Recoverable"
    default = client.get_key_rotation_policy("rot")
    assert [(a.action, a.time_before_expiry) for a in default.lifetime_actions] == [("Notify", "P30D")]
    assert default.expires_in is None
    policy = client.update_key_rotation_policy(
        "rot",
        KeyRotationPolicy(),
        lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P90D"),
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D"),
        ],
        expires_in="P1Y",
    )
    assert policy.expires_in == "P1Y" and policy.created_on is not None
    assert policy.id == f"{vault.properties.vault_uri}keys/rot/rotationpolicy"
    shown = kv.keys.get(RG, "kvd-rot", "rot").rotation_policy  # the management plane shows the same policy
    assert shown.attributes.expiry_time == "P1Y"
    first = shown.lifetime_actions[0]
    assert (first.action.type, first.trigger.time_after_create) == ("rotate", "P90D")
    rotated = client.rotate_key("rot")
    assert rotated.id != key.id
    assert len(rotated.key.n) == 384
    lifetime = rotated.properties.expires_on - rotated.properties.created_on
    assert lifetime.days == 365
    assert [p.version for p in client.list_properties_of_key_versions("rot")][-1] == rotated.properties.version
    for bad in (
        {"expires_in": "P10D"},  # expiryTime below 28 days
        {"lifetime_actions": [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P1D")]},
        {"lifetime_actions": [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="90 days")]},
        # rotation less than 7 days before expiry (Learn, how-to-configure-key-rotation: "Rotation Time ... 7 days
        # from creation and 7 days from expiration time"), and a notice likewise
        {
            "expires_in": "P30D",
            "lifetime_actions": [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P24D")],
        },
        {
            "expires_in": "P28D",
            "lifetime_actions": [KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D")],
        },
    ):
        status, code, _, _ = refused(
            lambda bad=bad: client.update_key_rotation_policy("rot", KeyRotationPolicy(), **bad)
        )
        assert (status, code) == (400, "BadParameter"), bad
    edge = KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P23D")  # exactly 7 days
    assert client.update_key_rotation_policy("rot", KeyRotationPolicy(), expires_in="P30D", lifetime_actions=[edge])
    assert refused(lambda: client.rotate_key("missing"))[:2] == (404, "KeyNotFound")


def test_new_version_listeners_see_create_and_rotate(sandbox, kv):
    seen = []
    hook = keyvault.on_new_version(lambda vault, entry, version: seen.append((entry["name"], version["version"])))
    try:
        vault = policy_vault(sandbox, kv, "kvd-hook")
        client = key_client(sandbox, vault)
        created = client.create_rsa_key("h")
        rotated = client.rotate_key("h")
    finally:
        from sandbox.providers import keyvault_store

        keyvault_store._NEW_VERSION_HOOKS.remove(hook)
    assert seen == [("h", created.properties.version), ("h", rotated.properties.version)]
    mgmt = [v.name for v in kv.keys.list_versions(RG, "kvd-hook", "h")]  # the management plane sees them too
    assert mgmt == [created.properties.version, rotated.properties.version]


def test_network_rules(sandbox, kv):
    vault = policy_vault(sandbox, kv, "kvd-net")
    client = key_client(sandbox, vault)
    client.create_rsa_key("n")
    kv.vaults.update(RG, "kvd-net", {"properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": []}}})
    status, code, inner, message = refused(lambda: client.get_key("n"))
    assert (status, inner) == (403, "ForbiddenByFirewall") and "Client address: 127.0.0.1" in message
    acls = {"defaultAction": "Deny", "ipRules": [{"value": "127.0.0.0/8"}]}
    kv.vaults.update(RG, "kvd-net", {"properties": {"networkAcls": acls}})
    assert client.get_key("n").name == "n"
    kv.vaults.update(RG, "kvd-net", {"properties": {"publicNetworkAccess": "Disabled"}})
    status, code, inner, message = refused(lambda: client.get_key("n"))
    assert (status, code, inner) == (403, "Forbidden", "ForbiddenByConnection")
    assert message.startswith("Public network access is disabled and request is not from a trusted service")


def test_raw_protocol_answers(sandbox, kv):
    vault = make_vault(sandbox, kv, "kvd-raw")
    url = f"{vault.properties.vault_uri}keys"
    r = httpx.get(url, params={"api-version": "2025-07-01"}, verify=sandbox.ssl)
    assert r.status_code == 401
    assert r.json() == {
        "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
    }
    challenge = r.headers["WWW-Authenticate"]
    assert f'authorization="https://login.microsoftonline.com/{sandbox.tenant_id}"' in challenge
    assert 'resource="https://vault.azure.net"' in challenge
    arm_token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    r = httpx.get(
        url, params={"api-version": "2025-07-01"}, headers={"Authorization": f"Bearer {arm_token}"}, verify=sandbox.ssl
    )
    assert r.status_code == 401
    assert r.json()["error"]["message"].startswith("AKV10022: Invalid audience. Expected https://vault.azure.net")
    token = sandbox.credential("admin").get_token("https://vault.azure.net/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.get(url, params={"api-version": "1999-01-01"}, headers=headers, verify=sandbox.ssl)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "BadParameter")
    r = httpx.get(f"{sandbox.base_url}/keys", params={"api-version": "7.4"}, headers=headers, verify=sandbox.ssl)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "VaultNotFound")
