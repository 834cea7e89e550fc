"""Management locks through the real ManagementLockClient: every scope, list semantics, refusals, enforcement."""

import uuid

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.rbac import ROLES

LOCKS = "/providers/Microsoft.Authorization/locks"


@pytest.fixture
def rg(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-app", {"location": "westeurope"})
    return f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app"


def _grant(sandbox, name, role, scope):
    auth = sandbox.client(AuthorizationManagementClient)
    auth.role_assignments.create(
        scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{ROLES[role]}",
            principal_id=sandbox.principal(name).object_id,
            principal_type=sandbox.principal(name).kind,
        ),
    )


def _code(err):
    return err.value.status_code, err.value.error.code


def test_lock_at_every_scope_create_get_list_delete(sandbox, rg):
    locks = sandbox.client(ManagementLockClient)
    sub = f"/subscriptions/{sandbox.subscription_id}"
    created = locks.management_locks.create_or_update_at_resource_group_level(
        "rg-app", "no-delete", ManagementLockObject(level="CanNotDelete", notes="keep")
    )
    assert (created.level, created.notes, created.name) == ("CanNotDelete", "keep", "no-delete")
    assert created.id == f"{rg}{LOCKS}/no-delete"
    assert created.type == "Microsoft.Authorization/locks"
    locks.management_locks.create_or_update_at_subscription_level("sub-lock", ManagementLockObject(level="ReadOnly"))
    by_scope = locks.management_locks.get_by_scope(sub, "sub-lock")
    assert (by_scope.id, by_scope.level) == (f"{sub}{LOCKS}/sub-lock", "ReadOnly")
    assert locks.management_locks.get_at_resource_group_level("rg-app", "no-delete").notes == "keep"
    assert locks.management_locks.get_at_subscription_level("sub-lock").level == "ReadOnly"
    # subscription list: its own lock and the group's (below)
    assert sorted(lk.name for lk in locks.management_locks.list_at_subscription_level()) == ["no-delete", "sub-lock"]
    # group list: its own and the subscription's (inherited)
    assert sorted(lk.name for lk in locks.management_locks.list_at_resource_group_level("rg-app")) == [
        "no-delete",
        "sub-lock",
    ]
    # atScope(): at or above only
    at_sub = locks.management_locks.list_by_scope(sub, filter="atScope()")
    assert [lk.name for lk in at_sub] == ["sub-lock"]
    locks.management_locks.delete_at_subscription_level("sub-lock")
    locks.management_locks.delete_by_scope(rg, "no-delete")
    assert list(locks.management_locks.list_at_subscription_level()) == []
    with pytest.raises(ResourceNotFoundError) as err:
        locks.management_locks.get_by_scope(sub, "sub-lock")
    assert _code(err) == (404, "LockNotFound")
    locks.management_locks.delete_by_scope(sub, "sub-lock")  # deleting what is gone: 204, no error


def test_update_keeps_201_then_200_on_the_wire(sandbox, rg):
    locks = sandbox.client(ManagementLockClient)
    locks.management_locks.create_or_update_by_scope(rg, "l1", {"properties": {"level": "CanNotDelete"}})
    updated = locks.management_locks.create_or_update_by_scope(rg, "l1", {"properties": {"level": "ReadOnly"}})
    assert updated.level == "ReadOnly"
    statuses = [c["status"] for c in sandbox.calls() if c["method"] == "PUT" and c["path"].endswith("/locks/l1")]
    assert statuses == [201, 200]


def test_invalid_level_and_missing_scope_are_refused(sandbox, rg):
    locks = sandbox.client(ManagementLockClient)
    with pytest.raises(HttpResponseError) as err:
        locks.management_locks.create_or_update_by_scope(rg, "bad", {"properties": {"level": "NotSpecified"}})
    assert _code(err) == (400, "LockLevelInvalid")
    with pytest.raises(HttpResponseError) as err:
        locks.management_locks.create_or_update_at_resource_group_level(
            "rg-missing", "l", ManagementLockObject(level="ReadOnly")
        )
    assert _code(err) == (404, "ResourceGroupNotFound")
    with pytest.raises(HttpResponseError) as err:
        locks.management_locks.create_or_update_at_resource_level(
            "rg-app", "Microsoft.KeyVault", "", "vaults", "kv-missing", "l", ManagementLockObject(level="ReadOnly")
        )
    assert _code(err) == (404, "ResourceNotFound")
    assert "Microsoft.KeyVault/vaults/kv-missing" in err.value.error.message


def test_contributor_cannot_lock_but_owner_and_user_access_admin_can(sandbox, rg):
    _grant(sandbox, "bot", "Contributor", rg)
    bot = sandbox.client(ManagementLockClient, "bot")
    with pytest.raises(HttpResponseError) as err:
        bot.management_locks.create_or_update_at_resource_group_level(
            "rg-app", "l", {"properties": {"level": "ReadOnly"}}
        )
    assert _code(err) == (403, "AuthorizationFailed")
    assert "Microsoft.Authorization/locks/write" in err.value.error.message
    sandbox.client(ManagementLockClient).management_locks.create_or_update_at_resource_group_level(
        "rg-app", "l", {"properties": {"level": "CanNotDelete"}}
    )
    assert [lk.name for lk in bot.management_locks.list_at_resource_group_level("rg-app")] == ["l"]  # reads fine
    with pytest.raises(HttpResponseError) as err:
        bot.management_locks.delete_at_resource_group_level("rg-app", "l")
    assert _code(err) == (403, "AuthorizationFailed")
    _grant(sandbox, "intruder", "User Access Administrator", rg)
    sandbox.client(ManagementLockClient, "intruder").management_locks.delete_at_resource_group_level("rg-app", "l")


def test_can_not_delete_lock_blocks_deleting_the_group_and_the_subscription_lock_too(sandbox, rg):
    locks = sandbox.client(ManagementLockClient)
    rm = sandbox.client(ResourceManagementClient)
    locks.management_locks.create_or_update_at_resource_group_level(
        "rg-app", "l", {"properties": {"level": "CanNotDelete"}}
    )
    with pytest.raises(HttpResponseError) as err:
        rm.resource_groups.begin_delete("rg-app").result()
    assert _code(err) == (409, "ScopeLocked")
    assert f"following scope(s) are locked: '{rg}'" in err.value.error.message
    rm.resource_groups.create_or_update("rg-app", {"location": "westeurope", "tags": {"a": "b"}})  # writes allowed
    locks.management_locks.delete_at_resource_group_level("rg-app", "l")  # the lock itself can go
    locks.management_locks.create_or_update_at_subscription_level("sub", {"properties": {"level": "CanNotDelete"}})
    with pytest.raises(HttpResponseError) as err:
        rm.resource_groups.begin_delete("rg-app").result()
    assert _code(err) == (409, "ScopeLocked")
    locks.management_locks.delete_at_subscription_level("sub")
    rm.resource_groups.begin_delete("rg-app").result()


def test_read_only_lock_blocks_put_and_patch_but_not_reads(sandbox, rg):
    locks = sandbox.client(ManagementLockClient)
    rm = sandbox.client(ResourceManagementClient)
    locks.management_locks.create_or_update_at_resource_group_level(
        "rg-app", "ro", {"properties": {"level": "ReadOnly"}}
    )
    with pytest.raises(HttpResponseError) as err:
        rm.resource_groups.create_or_update("rg-app", {"location": "westeurope", "tags": {"a": "b"}})
    assert _code(err) == (409, "ScopeLocked")
    with pytest.raises(HttpResponseError) as err:
        rm.resource_groups.update("rg-app", {"tags": {"a": "b"}})
    assert _code(err) == (409, "ScopeLocked")
    assert rm.resource_groups.get("rg-app").name == "rg-app"
    locks.management_locks.delete_at_resource_group_level("rg-app", "ro")
    rm.resource_groups.update("rg-app", {"tags": {"a": "b"}})


def test_resource_level_lock_on_a_key_vault(sandbox, rg):
    from azure.mgmt.keyvault import KeyVaultManagementClient

    kv = sandbox.client(KeyVaultManagementClient)
    vault = kv.vaults.begin_create_or_update(
        "rg-app",
        "kv-locked-1",
        {
            "location": "westeurope",
            "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
        },
    ).result()
    locks = sandbox.client(ManagementLockClient)
    lock = locks.management_locks.create_or_update_at_resource_level(
        "rg-app", "Microsoft.KeyVault", "", "vaults", "kv-locked-1", "keep", {"properties": {"level": "CanNotDelete"}}
    )
    assert lock.id == f"{vault.id}{LOCKS}/keep"
    listed = locks.management_locks.list_at_resource_level("rg-app", "Microsoft.KeyVault", "", "vaults", "kv-locked-1")
    assert [lk.name for lk in listed] == ["keep"]
    assert [lk.name for lk in locks.management_locks.list_at_resource_group_level("rg-app")] == ["keep"]  # below
    with pytest.raises(HttpResponseError) as err:
        kv.vaults.delete("rg-app", "kv-locked-1")
    assert _code(err) == (409, "ScopeLocked")
    with pytest.raises(HttpResponseError) as err:
        sandbox.client(ResourceManagementClient).resource_groups.begin_delete("rg-app").result()
    assert _code(err) == (409, "ScopeLocked")
    locks.management_locks.delete_at_resource_level("rg-app", "Microsoft.KeyVault", "", "vaults", "kv-locked-1", "keep")
    kv.vaults.delete("rg-app", "kv-locked-1")


def test_lock_api_versions_and_unknown_filter(sandbox, rg):
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{sandbox.base_url}{rg}{LOCKS}/old"
    r = httpx.put(
        url,
        params={"api-version": "2016-09-01"},
        json={"properties": {"level": "ReadOnly"}},
        headers=headers,
        verify=sandbox.ssl,
    )
    assert r.status_code == 201
    assert r.json() == {
        "properties": {"level": "ReadOnly"},
        "id": f"{rg}{LOCKS}/old",
        "type": "Microsoft.Authorization/locks",
        "name": "old",
    }
    r = httpx.get(
        f"{sandbox.base_url}{rg}{LOCKS}",
        params={"api-version": "2017-04-01", "$filter": "name eq 'x'"},
        headers=headers,
        verify=sandbox.ssl,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidFilterInQueryString")
    r = httpx.get(url, params={"api-version": "2019-01-01"}, headers=headers, verify=sandbox.ssl)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "NoRegisteredProviderFound")
