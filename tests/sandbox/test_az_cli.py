"""The sandbox driven by the real Azure CLI (pinned in requirements-az.txt, installed by scripts/install-az.sh).

One az config dir and one `az login --identity` per session; the function-scoped `sandbox` fixture empties the
tenant before each test (principals, the subscription and tokens survive a reset, so the login does too).
If az is not installed these tests fail, saying how to install it: CI always installs it (`make test`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import scenarios
from sandbox.rbac import ROLES
from tests.sandbox.az import Az, AzMissing, find_az

pytestmark = pytest.mark.az

LOCATION = "westeurope"


@pytest.fixture(scope="session")
def az_session(sandbox_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Az, Any]]:
    try:
        exe = find_az()
    except AzMissing as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:  # a failure, not a skip: CI installs az (`make test` runs scripts/install-az.sh first)
        pytest.fail(missing, pytrace=False)
    az = Az.for_sandbox(sandbox_session, tmp_path_factory.mktemp("azure-config"), exe)
    az.use_sandbox_cloud(sandbox_session)
    sandbox_session.reset()
    yield az, az.login(sandbox_session, "admin")


@pytest.fixture
def az(az_session: tuple[Az, Any], sandbox: Any) -> Az:
    return az_session[0]


# -- helpers ---------------------------------------------------------------------------------------------------


def _seed(sandbox: Any, method: str, path: str, body: Any = None) -> Any:
    """An ARM request made inside the sandbox as the admin: preconditions a test is not about, without paying for an
    az process."""
    api = {"keyvault": scenarios.KV_API}.get(path.split("/providers/Microsoft.")[-1].split("/")[0].lower())
    return scenarios.arm(sandbox.running.sandbox, method, path, body, api_version=api or scenarios.RES_API)


def _seed_group(sandbox: Any, name: str) -> str:
    path = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{name}"
    _seed(sandbox, "PUT", path, {"location": LOCATION})
    return path


def _seed_vault(sandbox: Any, group_id: str, name: str, **extra: Any) -> dict[str, Any]:
    path = f"{group_id}/providers/Microsoft.KeyVault/vaults/{name}"
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    return dict(_seed(sandbox, "PUT", path, {"location": LOCATION, "properties": props, **extra}))


def _calls(sandbox: Any, start: int, fragment: str) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in sandbox.calls(start) if fragment in c["path"]]


# -- login and resource groups ----------------------------------------------------------------------------------


def test_login_with_the_admin_identity_and_account_show(az_session, sandbox):
    az, accounts = az_session
    admin = sandbox.principal("admin")
    assert [a["id"] for a in accounts] == [sandbox.subscription_id]
    account = az("account", "show")
    assert account["id"] == sandbox.subscription_id
    assert account["tenantId"] == sandbox.tenant_id
    assert account["name"] == "Contoso Production"
    assert account["state"] == "Enabled"
    assert account["isDefault"] is True
    assert account["user"]["type"] == "servicePrincipal"
    assert account["user"]["assignedIdentityInfo"] == f"MSIClient-{admin.client_id}"


def test_group_create_and_show(az, sandbox):
    start = len(sandbox.calls())
    created = az("group", "create", "-n", "rg-az", "-l", LOCATION, "--tags", "owner=cryptward")
    (put,) = [c for c in sandbox.calls(start) if c["method"] == "PUT"]
    assert put["principal"] == sandbox.principal("admin").object_id  # az acts as the identity it logged in with
    expected_id = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-az"
    assert created["id"] == expected_id
    assert created["properties"]["provisioningState"] == "Succeeded"
    shown = az("group", "show", "-n", "rg-az")
    assert (shown["id"], shown["location"], shown["tags"]) == (expected_id, LOCATION, {"owner": "cryptward"})
    missing = az.fails("group", "show", "-n", "rg-nope")
    assert "ResourceGroupNotFound" in missing.stderr


# -- Key Vault -------------------------------------------------------------------------------------------------


def test_keyvault_create_update_purge_protection_show_delete(az, sandbox):
    _seed_group(sandbox, "rg-kv")
    plain = az("keyvault", "create", "-n", "kv-az-plain", "-g", "rg-kv", "-l", LOCATION)
    props = plain["properties"]
    assert plain["id"].endswith("/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv-az-plain")
    assert props["enablePurgeProtection"] is None
    assert (props["enableSoftDelete"], props["softDeleteRetentionInDays"]) == (True, 90)
    assert props["enableRbacAuthorization"] is True
    assert props["tenantId"] == sandbox.tenant_id
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/", props["vaultUri"])  # the vault's own data-plane origin
    assert plain["systemData"]["createdBy"] == sandbox.principal("admin").upn
    guarded = az(
        "keyvault", "create", "-n", "kv-az-guarded", "-g", "rg-kv", "-l", LOCATION, "--enable-purge-protection"
    )
    assert guarded["properties"]["enablePurgeProtection"] is True

    start = len(sandbox.calls())
    updated = az("keyvault", "update", "-n", "kv-az-plain", "-g", "rg-kv", "--enable-purge-protection", "true")
    assert updated["properties"]["enablePurgeProtection"] is True
    assert [m for m, _ in _calls(sandbox, start, "/vaults/kv-az-plain")] == ["GET", "PUT"]  # a full PUT, no PATCH

    refused = az.fails("keyvault", "update", "-n", "kv-az-plain", "-g", "rg-kv", "--enable-purge-protection", "false")
    assert "(BadRequest)" in refused.stderr
    assert 'The property "enablePurgeProtection" cannot be set to false.' in refused.stderr
    assert "irreversible" in refused.stderr

    shown = az("keyvault", "show", "-n", "kv-az-plain")  # no group: az finds it through GET /resources?$filter=
    assert shown["id"] == plain["id"]
    assert shown["properties"]["enablePurgeProtection"] is True

    assert az("keyvault", "delete", "-n", "kv-az-guarded", "-g", "rg-kv") is None
    gone = az.fails("keyvault", "show", "-n", "kv-az-guarded", "-g", "rg-kv")
    assert "(ResourceNotFound)" in gone.stderr
    deleted = az("keyvault", "list-deleted")  # deleted vaults, then deleted managed HSMs (none)
    assert [d["name"] for d in deleted] == ["kv-az-guarded"]
    assert deleted[0]["properties"]["purgeProtectionEnabled"] is True
    assert deleted[0]["properties"]["vaultId"].lower() == guarded["id"].lower()


# -- Compute: disks and disk encryption sets -------------------------------------------------------------------


def test_disk_create_show_update(az, sandbox):
    _seed_group(sandbox, "rg-disk")
    created = az("disk", "create", "-g", "rg-disk", "-n", "disk-az", "--size-gb", "4", "-l", LOCATION)
    assert created["id"].endswith("/resourceGroups/rg-disk/providers/Microsoft.Compute/disks/disk-az")
    assert (created["diskSizeGB"], created["provisioningState"]) == (4, "Succeeded")
    assert created["encryption"]["type"] == "EncryptionAtRestWithPlatformKey"
    assert created["creationData"]["createOption"] == "Empty"
    shown = az("disk", "show", "-g", "rg-disk", "-n", "disk-az")
    assert (shown["id"], shown["diskSizeGB"], shown["location"]) == (created["id"], 4, LOCATION)
    updated = az(
        "disk", "update", "-g", "rg-disk", "-n", "disk-az", "--sku", "StandardSSD_LRS", "--set", "tags.env=test"
    )
    assert updated["sku"]["name"] == "StandardSSD_LRS"
    assert updated["tags"] == {"env": "test"}
    assert updated["diskSizeGB"] == 4


def test_disk_encryption_set_auto_rotation_needs_purge_protection_and_key_access(az, sandbox):
    group = _seed_group(sandbox, "rg-des")
    vault_body = _seed_vault(sandbox, group, "kv-az-des")
    vault = vault_body["id"]
    # The key through the data plane, with az: the admin (Owner, which has no data actions) needs a crypto role.
    sb = sandbox.running.sandbox
    scenarios.assign(sb, vault, sb.directory.named("admin"), ROLES["Key Vault Crypto Officer"])
    vault_uri = vault_body["properties"]["vaultUri"]
    key = az("keyvault", "key", "create", "--id", f"{vault_uri}keys/des-key", "--kty", "RSA", "--size", "3072")
    key_url = key["key"]["kid"]
    assert key_url.startswith(f"{vault_uri}keys/des-key/")
    assert key["key"]["kty"] == "RSA"
    assert len(key["key"]["n"].rstrip("=")) * 6 // 8 == 3072 // 8  # the modulus, base64: a 3072-bit key
    des = az(
        "disk-encryption-set",
        "create",
        "-g",
        "rg-des",
        "-n",
        "des-az",
        "-l",
        LOCATION,
        "--key-url",
        key_url,
        "--source-vault",
        "kv-az-des",
    )
    assert des["id"] == f"{group}/providers/Microsoft.Compute/diskEncryptionSets/des-az"
    assert des["activeKey"] == {"keyUrl": key_url, "sourceVault": {"id": vault}}
    assert (des["encryptionType"], des["provisioningState"]) == ("EncryptionAtRestWithCustomerKey", "Succeeded")
    assert des["identity"]["type"] == "SystemAssigned"
    identity = des["identity"]["principalId"]
    assert des.get("rotationToLatestKeyVersionEnabled") in (None, False)

    rotate = ("disk-encryption-set", "update", "-g", "rg-des", "-n", "des-az", "--enable-auto-key-rotation", "true")
    refused = az.fails(*rotate)
    assert "(InvalidParameter)" in refused.stderr
    assert "purge protection" in refused.stderr
    vault_body["properties"]["enablePurgeProtection"] = True
    _seed(sandbox, "PUT", vault, vault_body)
    assert az(*rotate)["rotationToLatestKeyVersionEnabled"] is True
    shown = az("disk-encryption-set", "show", "-g", "rg-des", "-n", "des-az")
    assert shown["rotationToLatestKeyVersionEnabled"] is True
    assert shown["activeKey"]["keyUrl"] == key_url
    assert shown["identity"]["principalId"] == identity

    # The DES's identity gets the key: the role assignment the remediation makes, as an operator would with az.
    grant = (
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        identity,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "Key Vault Crypto Service Encryption User",
        "--scope",
        vault,
    )
    assignment = az(*grant)
    assert assignment["principalId"] == identity
    assert assignment["principalType"] == "ServicePrincipal"
    assert assignment["scope"] == vault
    assert assignment["roleDefinitionId"].endswith(
        f"/roleDefinitions/{ROLES['Key Vault Crypto Service Encryption User']}"
    )
    assert az(*grant)["id"] == assignment["id"]  # again: 409 RoleAssignmentExists, which az turns into the existing one
    listed = az("role", "assignment", "list", "--scope", vault, "--fill-principal-name", "false")
    assert sorted((a["principalId"], a["roleDefinitionName"]) for a in listed) == sorted(
        [
            (identity, "Key Vault Crypto Service Encryption User"),
            (sb.directory.named("admin").object_id, "Key Vault Crypto Officer"),
        ]
    )


# -- locks and tags --------------------------------------------------------------------------------------------


def test_locks_on_a_vault_and_a_group(az, sandbox):
    group = _seed_group(sandbox, "rg-lock")
    vault = _seed_vault(sandbox, group, "kv-az-locked")["id"]
    on_vault = az("lock", "create", "-n", "keep-vault", "--lock-type", "CanNotDelete", "--resource", vault)
    assert on_vault["id"] == f"{vault}/providers/Microsoft.Authorization/locks/keep-vault"
    assert on_vault["level"] == "CanNotDelete"
    on_group = az("lock", "create", "-n", "keep-group", "--lock-type", "CanNotDelete", "-g", "rg-lock", "--notes", "cw")
    assert on_group["id"] == f"{group}/providers/Microsoft.Authorization/locks/keep-group"
    assert on_group["notes"] == "cw"
    in_group = az("lock", "list", "-g", "rg-lock")
    assert sorted((lk["name"], lk["level"]) for lk in in_group) == [
        ("keep-group", "CanNotDelete"),
        ("keep-vault", "CanNotDelete"),
    ]
    refused = az.fails("keyvault", "delete", "-n", "kv-az-locked", "-g", "rg-lock")
    assert "(ScopeLocked)" in refused.stderr


def test_tag_update_merge_on_a_vault(az, sandbox):
    group = _seed_group(sandbox, "rg-tags")
    vault = _seed_vault(sandbox, group, "kv-az-tags", tags={"owner": "ops"})["id"]
    merged = az("tag", "update", "--resource-id", vault, "--operation", "merge", "--tags", "a=b")
    assert merged["id"] == f"{vault}/providers/Microsoft.Resources/tags/default"
    assert merged["properties"]["tags"] == {"owner": "ops", "a": "b"}
    assert az("keyvault", "show", "-n", "kv-az-tags", "-g", "rg-tags")["tags"] == {"owner": "ops", "a": "b"}
