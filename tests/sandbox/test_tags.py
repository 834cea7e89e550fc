"""Tags at scope (Microsoft.Resources/tags/default) through the real ResourceManagementClient: LRO pollers,
replace / merge / delete semantics, limits, locks, permissions and the operations log."""

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.mgmt.resource.resources.models import TagsPatchResource, TagsResource

TAGS = "/providers/Microsoft.Resources/tags/default"


@pytest.fixture
def rm(sandbox):
    client = sandbox.client(ResourceManagementClient)
    client.resource_groups.create_or_update("rg-t", {"location": "westeurope", "tags": {"owner": "ops"}})
    return client


@pytest.fixture
def rg(sandbox, rm):
    return f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-t"


def _put(rm, scope, tags):
    return rm.tags.begin_create_or_update_at_scope(scope, TagsResource(properties={"tags": tags})).result()


def _patch(rm, scope, operation, tags):
    return rm.tags.begin_update_at_scope(
        scope, TagsPatchResource(operation=operation, properties={"tags": tags})
    ).result()


def test_get_put_and_the_group_shows_them(sandbox, rm, rg):
    got = rm.tags.get_at_scope(rg)
    assert (got.id, got.name, got.type, got.properties.tags) == (
        f"{rg}{TAGS}",
        "default",
        "Microsoft.Resources/tags",
        {"owner": "ops"},
    )
    put = _put(rm, rg, {"env": "prod", "cost": "42"})
    assert put.properties.tags == {"env": "prod", "cost": "42"}  # PUT replaces the whole set
    assert rm.resource_groups.get("rg-t").tags == {"env": "prod", "cost": "42"}
    # the SDK's pollers went through the LRO: 202 + Location, then the operation, then the final GET
    calls = sandbox.calls()
    assert [c["status"] for c in calls if c["method"] == "PUT" and c["path"].endswith(TAGS)] == [202]
    assert any("/providers/Microsoft.Resources/locations/" in c["path"] and c["status"] == 200 for c in calls)


def test_patch_merge_replace_delete(rm, rg):
    _put(rm, rg, {"env": "prod", "team": "a", "cost": "42"})
    merged = _patch(rm, rg, "Merge", {"ENV": "test", "new": "x"})  # names are case-insensitive
    assert merged.properties.tags == {"env": "test", "team": "a", "cost": "42", "new": "x"}
    # Delete by name (empty value) or by name and value (only when the value matches)
    deleted = _patch(rm, rg, "Delete", {"team": "", "cost": "999", "new": "x"})
    assert deleted.properties.tags == {"env": "test", "cost": "42"}
    replaced = _patch(rm, rg, "Replace", {"only": "one"})
    assert replaced.properties.tags == {"only": "one"}
    assert rm.resource_groups.get("rg-t").tags == {"only": "one"}


def test_delete_removes_all_tags_and_subscription_tags_work(sandbox, rm, rg):
    rm.tags.begin_delete_at_scope(rg).result()
    assert rm.tags.get_at_scope(rg).properties.tags == {}
    assert not rm.resource_groups.get("rg-t").tags
    sub = f"/subscriptions/{sandbox.subscription_id}"
    assert _put(rm, sub, {"billing": "central"}).properties.tags == {"billing": "central"}
    assert rm.tags.get_at_scope(sub).properties.tags == {"billing": "central"}
    assert sandbox.running.sandbox.state.subscriptions[sandbox.subscription_id]["tags"] == {"billing": "central"}


def test_tags_on_a_resource_show_on_the_resource(sandbox, rm, rg):
    from azure.mgmt.keyvault import KeyVaultManagementClient

    kv = sandbox.client(KeyVaultManagementClient)
    vault = kv.vaults.begin_create_or_update(
        "rg-t",
        "kv-tags-1",
        {
            "location": "westeurope",
            "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
        },
    ).result()
    _put(rm, vault.id, {"cryptward": "managed"})
    _patch(rm, vault.id, "Merge", {"env": "prod"})
    assert kv.vaults.get("rg-t", "kv-tags-1").tags == {"cryptward": "managed", "env": "prod"}
    missing = vault.id.replace("kv-tags-1", "kv-nope")
    with pytest.raises(HttpResponseError) as err:
        rm.tags.get_at_scope(missing)
    assert (err.value.status_code, err.value.error.code) == (404, "ResourceNotFound")


def test_each_write_is_its_own_operation(sandbox, rm, rg):
    state = sandbox.running.sandbox.state
    before = len(state.operations)
    _put(rm, rg, {"a": "1"})
    _patch(rm, rg, "Merge", {"b": "2"})
    rm.tags.begin_delete_at_scope(rg).result()
    ops = state.operations[before:]
    assert [(o.operation_name, o.http_method) for o in ops] == [
        ("Microsoft.Resources/tags/write", "PUT"),
        ("Microsoft.Resources/tags/write", "PATCH"),
        ("Microsoft.Resources/tags/delete", "DELETE"),
    ]
    assert all(o.resource_id == f"{rg}{TAGS}" for o in ops)


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ({"a/b": "x"}, "InvalidTagNameCharacters"),
        ({"50%": "x"}, "InvalidTagNameCharacters"),
        ({"n" * 513: "x"}, "InvalidTagName"),
        ({"k": "v" * 257}, "InvalidTagValueLength"),
        ({f"t{i}": "v" for i in range(51)}, "InvalidTagCount"),
    ],
)
def test_limits_are_refused(rm, rg, tags, code):
    with pytest.raises(HttpResponseError) as err:
        _put(rm, rg, tags)
    assert (err.value.status_code, err.value.error.code) == (400, code)


def test_merge_past_fifty_is_refused(rm, rg):
    _put(rm, rg, {f"t{i}": "v" for i in range(50)})
    with pytest.raises(HttpResponseError) as err:
        _patch(rm, rg, "Merge", {"one-more": "v"})
    assert err.value.error.code == "InvalidTagCount"


def test_read_only_lock_blocks_tag_writes(sandbox, rm, rg):
    locks = sandbox.client(ManagementLockClient)
    locks.management_locks.create_or_update_at_resource_group_level("rg-t", "ro", {"properties": {"level": "ReadOnly"}})
    with pytest.raises(HttpResponseError) as err:
        _patch(rm, rg, "Merge", {"a": "b"})
    assert (err.value.status_code, err.value.error.code) == (409, "ScopeLocked")
    assert rm.tags.get_at_scope(rg).properties.tags == {"owner": "ops"}


def test_reader_reads_tags_but_cannot_write_them(sandbox, rm, rg):
    reader = sandbox.client(ResourceManagementClient, "reader")
    assert reader.tags.get_at_scope(rg).properties.tags == {"owner": "ops"}
    with pytest.raises(HttpResponseError) as err:
        _put(reader, rg, {"x": "y"})
    assert (err.value.status_code, err.value.error.code) == (403, "AuthorizationFailed")
    assert "Microsoft.Resources/tags/write" in err.value.error.message


def test_bad_patch_operation_and_api_versions(sandbox, rg):
    token = sandbox.credential().get_token("https://management.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{sandbox.base_url}{rg}{TAGS}"
    r = httpx.patch(
        url,
        params={"api-version": "2021-04-01"},
        json={"operation": "Append", "properties": {"tags": {"a": "b"}}},
        headers=headers,
        verify=sandbox.ssl,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidRequestContent")
    r = httpx.get(url, params={"api-version": "2019-10-01"}, headers=headers, verify=sandbox.ssl)
    assert r.status_code == 200
    assert r.json()["properties"] == {"tags": {"owner": "ops"}}
    r = httpx.get(url, params={"api-version": "2019-05-01"}, headers=headers, verify=sandbox.ssl)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "NoRegisteredProviderFound")
    r = httpx.put(
        url,
        params={"api-version": "2024-11-01"},
        json={"properties": {"tags": {"z": "1"}}},
        headers=headers,
        verify=sandbox.ssl,
    )
    assert r.status_code == 202
    assert "Location" in r.headers
