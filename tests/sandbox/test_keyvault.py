"""Microsoft.KeyVault management plane through the real KeyVaultManagementClient: vaults, soft delete, purge,
recover, access policies, management-plane keys, and every refusal Azure makes with its code."""

from datetime import datetime, timedelta

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.providers import keyvault

RG = "rg-kv"
LOCATION = "westeurope"


@pytest.fixture
def kv(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": LOCATION})
    return sandbox.client(KeyVaultManagementClient)


def props(sandbox, **extra):
    return {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}, **extra}


def create(kv, sandbox, name, rg=RG, tags=None, **extra):
    body = {"location": LOCATION, "properties": props(sandbox, **extra), "tags": tags or {}}
    return kv.vaults.begin_create_or_update(rg, name, body).result()


def raw(sandbox, method, path, body=None, api="2026-05-15", principal="admin"):
    token = sandbox.credential(principal).get_token("https://management.azure.com/.default").token
    return httpx.request(
        method,
        f"{sandbox.base_url}{path}",
        params={"api-version": api},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ssl,
    )


def vault_path(sandbox, name, rg=RG):
    return f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}"


def error_of(call):
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value.status_code, err.value.error.code, err.value.error.message


def test_create_is_an_lro_registering_dns_then_succeeded_with_current_defaults(sandbox, kv):
    vault = create(kv, sandbox, "kv-alpha", tags={"owner": "sec"})
    p = vault.properties
    assert p.provisioning_state == "Succeeded"
    assert p.enable_rbac_authorization is True  # the 2026-05-15 default
    assert (p.enable_soft_delete, p.soft_delete_retention_in_days, p.enable_purge_protection) == (True, 90, None)
    assert p.public_network_access == "Enabled"
    port = sandbox.running.sandbox.listeners.port_for("kv-alpha")
    assert p.vault_uri == f"https://127.0.0.1:{port}/" != f"{sandbox.base_url}/"  # the vault's own origin
    assert vault.tags == {"owner": "sec"}
    calls = [c for c in sandbox.calls() if c["path"].endswith("/vaults/kv-alpha")]
    assert [c["method"] for c in calls[:2]] == ["PUT", "GET"]  # the poller saw RegisteringDns, then read again
    r = raw(sandbox, "PUT", vault_path(sandbox, "kv-beta"), {"location": LOCATION, "properties": props(sandbox)})
    assert r.json()["properties"]["provisioningState"] == "RegisteringDns"
    assert "retry-after-ms" in r.headers


def test_older_api_versions_default_to_access_policies(sandbox, kv):
    body = {"location": LOCATION, "properties": props(sandbox, accessPolicies=[])}
    r = raw(sandbox, "PUT", vault_path(sandbox, "kv-old"), body, api="2023-07-01")
    assert r.status_code == 200
    assert "enableRbacAuthorization" not in r.json()["properties"]  # null: access policies (access-control-default)
    r = raw(
        sandbox,
        "PUT",
        vault_path(sandbox, "kv-old2"),
        {"location": LOCATION, "properties": props(sandbox)},
        "2023-07-01",
    )
    assert (r.status_code, r.json()["error"]["message"]) == (400, "The parameter accessPolicies is not specified.")


def test_get_list_and_paging(sandbox, kv):
    sandbox.admin("PATCH", "/_sandbox/settings", {"page_size": 2})
    for i in range(3):
        create(kv, sandbox, f"kv-list-{i}")
    assert kv.vaults.get(RG, "KV-LIST-1").name == "kv-list-1"
    assert sorted(v.name for v in kv.vaults.list_by_subscription()) == ["kv-list-0", "kv-list-1", "kv-list-2"]
    assert len(list(kv.vaults.list_by_resource_group(RG))) == 3
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get(RG, "kv-missing")


def test_update_by_patch_and_by_full_put_like_az(sandbox, kv):
    create(kv, sandbox, "kv-upd", softDeleteRetentionInDays=30)
    patched = kv.vaults.update(
        RG, "kv-upd", {"tags": {"env": "prod"}, "properties": {"enabledForDiskEncryption": True}}
    )
    assert patched.tags == {"env": "prod"} and patched.properties.enabled_for_disk_encryption is True
    current = kv.vaults.get(RG, "kv-upd")  # az keyvault update --enable-purge-protection: GET, then full PUT
    current.properties.enable_purge_protection = True
    body = {"location": current.location, "tags": current.tags, "properties": current.properties}
    updated = kv.vaults.begin_create_or_update(RG, "kv-upd", body).result()
    assert updated.properties.enable_purge_protection is True
    assert updated.properties.soft_delete_retention_in_days == 30


def test_refusals_on_update(sandbox, kv):
    create(kv, sandbox, "kv-ref", enablePurgeProtection=True, softDeleteRetentionInDays=30)
    status, code, message = error_of(
        lambda: kv.vaults.update(RG, "kv-ref", {"properties": {"enablePurgeProtection": False}})
    )
    assert (status, code) == (400, "BadRequest") and "irreversible" in message
    status, code, message = error_of(
        lambda: kv.vaults.update(RG, "kv-ref", {"properties": {"softDeleteRetentionInDays": 60}})
    )
    assert (status, code) == (400, "BadRequest")
    assert message == 'The property "softDeleteRetentionInDays" has been set already and it can\'t be modified.'
    assert kv.vaults.update(RG, "kv-ref", {"properties": {"softDeleteRetentionInDays": 30}}).name == "kv-ref"
    status, code, _ = error_of(lambda: kv.vaults.update(RG, "kv-ref", {"properties": {"enableSoftDelete": False}}))
    assert (status, code) == (400, "BadRequest")


def test_refusals_on_create(sandbox, kv):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-other", {"location": LOCATION})
    create(kv, sandbox, "kv-taken")
    assert error_of(lambda: create(kv, sandbox, "kv-taken", rg="rg-other"))[:2] == (409, "VaultAlreadyExists")
    for bad in ("1kv", "kv", "kv--double", "kv-", "k" * 25, "kv_under"):
        assert error_of(lambda bad=bad: create(kv, sandbox, bad))[:2] == (400, "VaultNameNotValid"), bad
    assert error_of(lambda: create(kv, sandbox, "kv-pp", enablePurgeProtection=False))[:2] == (400, "BadRequest")
    assert error_of(lambda: create(kv, sandbox, "kv-ret", softDeleteRetentionInDays=5))[:2] == (400, "BadRequest")
    for missing in ("tenantId", "sku"):
        body = {"location": LOCATION, "properties": {k: v for k, v in props(sandbox).items() if k != missing}}
        r = raw(sandbox, "PUT", vault_path(sandbox, "kv-miss"), body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "BadRequest"), missing
    body = {"location": LOCATION, "properties": props(sandbox, tenantId="11111111-2222-3333-4444-555555555555")}
    assert raw(sandbox, "PUT", vault_path(sandbox, "kv-tenant"), body).status_code == 400
    assert error_of(lambda: sandbox.client(KeyVaultManagementClient, "reader").vaults.begin_create_or_update(
        RG, "kv-reader", {"location": LOCATION, "properties": props(sandbox)}
    ))[:2] == (403, "AuthorizationFailed")  # fmt: skip


def test_delete_soft_deletes_by_the_sandbox_clock_and_holds_the_name(sandbox, kv):
    sandbox.advance(86400)
    create(kv, sandbox, "kv-del", softDeleteRetentionInDays=7, tags={"a": "b"})
    kv.vaults.delete(RG, "kv-del")
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get(RG, "kv-del")
    deleted = kv.vaults.get_deleted("kv-del", LOCATION)
    p = deleted.properties
    assert p.vault_id.endswith("/vaults/kv-del") and p.tags == {"a": "b"} and p.purge_protection_enabled is False
    now = datetime.fromisoformat(sandbox.admin("GET", "/_sandbox/clock")["now"].replace("Z", "+00:00"))
    assert abs((p.deletion_date - now).total_seconds()) < 60  # the sandbox clock, a day ahead of the wall clock
    assert p.scheduled_purge_date - p.deletion_date == timedelta(days=7)
    assert [d.name for d in kv.vaults.list_deleted()] == ["kv-del"]
    assert error_of(lambda: create(kv, sandbox, "kv-del"))[:2] == (409, "ConflictError")
    sandbox.advance(7 * 86400 + 1)  # past the scheduled purge date: Key Vault purges it
    assert list(kv.vaults.list_deleted()) == []
    assert create(kv, sandbox, "kv-del").name == "kv-del"


def test_purge_and_purge_protection(sandbox, kv):
    create(kv, sandbox, "kv-purge")
    kv.vaults.delete(RG, "kv-purge")
    kv.vaults.begin_purge_deleted("kv-purge", LOCATION).result()
    with pytest.raises(ResourceNotFoundError):
        kv.vaults.get_deleted("kv-purge", LOCATION)
    create(kv, sandbox, "kv-prot", enablePurgeProtection=True)
    kv.vaults.delete(RG, "kv-prot")
    _, code, message = error_of(lambda: kv.vaults.begin_purge_deleted("kv-prot", LOCATION).result())
    assert (code, message) == ("MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.")
    assert kv.vaults.get_deleted("kv-prot", LOCATION).properties.purge_protection_enabled is True


def test_recover_brings_back_the_vault_and_its_keys(sandbox, kv):
    create(kv, sandbox, "kv-rec", enabledForDiskEncryption=True)
    kv.keys.create_if_not_exist(RG, "kv-rec", "k1", {"properties": {"kty": "RSA"}})
    kv.vaults.delete(RG, "kv-rec")
    body = {"location": LOCATION, "properties": props(sandbox, createMode="recover")}
    recovered = kv.vaults.begin_create_or_update(RG, "kv-rec", body).result()
    assert recovered.properties.enabled_for_disk_encryption is True
    assert [k.name for k in kv.keys.list(RG, "kv-rec")] == ["k1"]
    assert list(kv.vaults.list_deleted()) == []


def test_access_policies_add_replace_remove(sandbox, kv):
    admin, bot = sandbox.principal("admin"), sandbox.principal("bot")
    entry = {"tenantId": sandbox.tenant_id, "objectId": admin.object_id, "permissions": {"keys": ["get"]}}
    create(kv, sandbox, "kv-ap", enableRbacAuthorization=False, accessPolicies=[entry])

    def change(kind, oid, perms):
        policy = {"tenantId": sandbox.tenant_id, "objectId": oid, "permissions": {"keys": perms}}
        kv.vaults.update_access_policy(RG, "kv-ap", kind, {"properties": {"accessPolicies": [policy]}})
        return {p.object_id: p.permissions["keys"] for p in kv.vaults.get(RG, "kv-ap").properties.access_policies}

    assert change("add", admin.object_id, ["wrapKey", "unwrapKey"]) == {
        admin.object_id: ["get", "wrapKey", "unwrapKey"]
    }
    assert change("add", bot.object_id, ["get"])[bot.object_id] == ["get"]
    assert change("replace", admin.object_id, ["list"])[admin.object_id] == ["list"]
    assert bot.object_id not in change("remove", bot.object_id, ["get"])


def test_management_plane_keys_share_the_key_store(sandbox, kv):
    create(kv, sandbox, "kv-keys")
    key = kv.keys.create_if_not_exist(RG, "kv-keys", "disk-key", {"properties": {"kty": "RSA", "keySize": 3072}})
    assert (key.kty, key.key_size, key.attributes.recovery_level) == ("RSA", 3072, "Recoverable+Purgeable")
    assert key.key_uri == f"{kv.vaults.get(RG, 'kv-keys').properties.vault_uri}keys/disk-key"
    again = kv.keys.create_if_not_exist(RG, "kv-keys", "disk-key", {"properties": {"kty": "EC"}})
    assert again.key_uri_with_version == key.key_uri_with_version  # unchanged
    assert kv.keys.get(RG, "kv-keys", "disk-key").key_size == 3072
    assert [k.name for k in kv.keys.list(RG, "kv-keys")] == ["disk-key"]
    versions = list(kv.keys.list_versions(RG, "kv-keys", "disk-key"))
    assert [v.key_uri_with_version for v in versions] == [key.key_uri_with_version]
    version = key.key_uri_with_version.rsplit("/", 1)[1]
    assert kv.keys.get_version(RG, "kv-keys", "disk-key", version).kty == "RSA"
    sb = sandbox.running.sandbox
    vault, entry, found = keyvault.find_key(sb, key.key_uri_with_version)
    assert (vault["name"], entry["name"], found["version"]) == ("kv-keys", "disk-key", version)
    assert keyvault.find_key(sb, key.key_uri)[2] is None
    assert keyvault.latest_version(entry)["keySize"] == 3072
    assert len(entry["versions"][0]["n"]) == 512  # 3072 bits, base64url
    with pytest.raises(ResourceNotFoundError):
        kv.keys.get(RG, "kv-keys", "nope")


def test_what_was_never_set_stays_absent_as_azure_answers_it(sandbox, kv):
    """Recordings keyvault/c7n-vault-get-2019-09-01*.json and cli-vault-get-2023-02-01*.json; Microsoft Learn
    access-control-default: vaults made before 2026-02-01 without enableRbacAuthorization keep it null."""
    body = {"location": LOCATION, "properties": props(sandbox, accessPolicies=[])}
    assert raw(sandbox, "PUT", vault_path(sandbox, "kv-2019"), body, api="2019-09-01").status_code == 200
    old = raw(sandbox, "GET", vault_path(sandbox, "kv-2019"), api="2019-09-01").json()
    absent = ("enableRbacAuthorization", "enableSoftDelete", "softDeleteRetentionInDays", "publicNetworkAccess")
    assert [k for k in (*absent, "enabledForDiskEncryption") if k in old["properties"]] == []
    assert "systemData" not in old
    now = raw(sandbox, "GET", vault_path(sandbox, "kv-2019")).json()  # the same vault read at 2026-05-15
    assert [k for k in absent[:3] if k in now["properties"]] == []
    assert now["properties"]["publicNetworkAccess"] == "Enabled" and "systemData" in now
    assert kv.vaults.get(RG, "kv-2019").properties.enable_rbac_authorization is None
    assert raw(sandbox, "PUT", vault_path(sandbox, "kv-2023"), body, api="2023-02-01").status_code == 200
    got = raw(sandbox, "GET", vault_path(sandbox, "kv-2023"), api="2023-02-01").json()["properties"]
    assert "enableRbacAuthorization" not in got and (got["enableSoftDelete"], got["softDeleteRetentionInDays"]) == (
        True,
        90,
    )
    new = raw(sandbox, "PUT", vault_path(sandbox, "kv-2026"), body).json()["properties"]
    assert new["enableRbacAuthorization"] is True  # created at 2026-02-01 or later: RBAC unless set to false


def test_an_absent_permission_model_means_access_policies(sandbox, kv):
    bot = sandbox.principal("bot")
    entry = {"tenantId": sandbox.tenant_id, "objectId": bot.object_id, "permissions": {"keys": ["Get", "WrapKey"]}}
    body = {"location": LOCATION, "properties": props(sandbox, accessPolicies=[entry])}
    raw(sandbox, "PUT", vault_path(sandbox, "kv-ap-null"), body, api="2023-02-01")
    sb = sandbox.running.sandbox
    vault = keyvault.vault_by_name(sb.state, "kv-ap-null")
    assert "enableRbacAuthorization" not in vault["properties"]
    assert keyvault.can_use_key(sb, bot.object_id, vault, "k", ("get", "wrapKey"))  # case-insensitive
    assert not keyvault.can_use_key(sb, bot.object_id, vault, "k")  # no unwrapKey
    foreign = dict(entry, tenantId="00000000-0000-0000-0000-0000000000ff", permissions={"keys": ["all"]})
    compound = dict(entry, applicationId=bot.client_id, permissions={"keys": ["all"]})
    for other in (foreign, compound):
        vault["properties"]["accessPolicies"] = [other]
        assert not keyvault.can_use_key(sb, bot.object_id, vault, "k"), other
    vault["properties"]["accessPolicies"] = [dict(entry, permissions={"keys": ["ALL"]})]
    assert keyvault.can_use_key(sb, bot.object_id, vault, "k")
