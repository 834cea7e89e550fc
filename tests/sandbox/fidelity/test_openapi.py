"""Proof of fidelity, item 2: response bodies are validated against Microsoft's OpenAPI files in azure-specs/openapi/.

(a) the validator first proves itself on Microsoft's own example responses (they must pass) and on broken copies
    of them (they must fail, at the right JSON path);
(b) a representative workload through the pinned SDKs (vaults, deleted vaults, management-plane keys, disk
    encryption sets, diagnostic settings, locks) records every response the clients receive (`raw_response_hook`)
    and validates each body against the schema of its operation's response, found by path template + method.
The replays in test_examples.py run the same check on every response they receive.

External `$ref`s (common-types Resource/ProxyResource/TrackedResource/systemData, compute's ./diskRPCommon.json and
common.json...) are not in azure-specs: they validate as "any" (see schemas.py); `test_unresolved_refs_are_known`
lists them so a new one is noticed.
"""

from __future__ import annotations

import copy

import pytest

from tests.sandbox.fidelity.replay import Ctx, Replay, example_files, load_example
from tests.sandbox.fidelity.schemas import Specs

SPECS = Specs()


def _example_responses() -> list[object]:
    out: list[object] = []
    for name in example_files():
        op = SPECS.for_example(name.rsplit("/", 1)[1])
        if op is None:
            continue
        for status, response in load_example(name)["responses"].items():
            if status != "default" and "body" in response:
                out.append(pytest.param(name, status, id=f"{name}:{status}"))
    return out


EXAMPLE_RESPONSES = _example_responses()


def test_examples_with_a_schema_are_found():
    # keyvault 10 files with bodies (13 bodies), DES 5 (8), diagnostic settings 3, locks 5 (7): 31 response bodies.
    assert len(EXAMPLE_RESPONSES) == 31


@pytest.mark.parametrize(("name", "status"), EXAMPLE_RESPONSES)
def test_microsoft_example_responses_pass_their_own_schema(name, status):
    op = SPECS.for_example(name.rsplit("/", 1)[1])
    body = load_example(name)["responses"][status]["body"]
    assert op.validate_response(status, body) == []
    assert op.validate_response(status, body, strict=True) == []


def _vault_example():
    op = SPECS.for_example("getVault.json")
    return op, copy.deepcopy(load_example("keyvault/getVault.json")["responses"]["200"]["body"])


def test_validator_reports_each_violation_with_its_json_path():
    op, body = _vault_example()
    body["properties"]["sku"]["name"] = "gold"  # a closed enum (modelAsString false)
    body["properties"]["enabledForDeployment"] = "yes"
    del body["properties"]["tenantId"]  # required
    body["properties"]["accessPolicies"][0]["permissions"]["keys"].append(7)
    problems = [str(v) for v in op.validate_response(200, body)]
    assert problems == [
        "$.properties: 'tenantId' is a required property",
        "$.properties.accessPolicies[0].permissions.keys[16]: 7 is not of type 'string'",
        "$.properties.enabledForDeployment: 'yes' is not of type 'boolean'",
        "$.properties.sku.name: 'gold' does not match '^(?i:standard|premium)$'",
    ]


def test_closed_enums_are_case_insensitive_and_open_enums_accept_any_string():
    op, body = _vault_example()
    body["properties"]["sku"]["name"] = "Standard"  # closed enum, other case
    body["properties"]["publicNetworkAccess"] = "SomethingNew"  # a plain string in the spec
    body["properties"]["provisioningState"] = "Upgrading"  # x-ms-enum modelAsString true
    assert op.validate_response(200, body) == []


def test_formats_are_checked_loosely():
    op = SPECS.for_example("getDeletedVault.json")
    body = copy.deepcopy(load_example("keyvault/getDeletedVault.json")["responses"]["200"]["body"])
    body["properties"]["deletionDate"] = "2017-01-01T00:00:59.1234567+00:00"
    assert op.validate_response(200, body) == []
    body["properties"]["deletionDate"] = "yesterday"
    assert [str(v) for v in op.validate_response(200, body)] == [
        "$.properties.deletionDate: 'yesterday' is not a 'date-time'"
    ]


def test_strict_mode_reports_properties_the_spec_does_not_know():
    op, body = _vault_example()
    body["properties"]["invented"] = True
    assert op.validate_response(200, body) == []
    assert [str(v) for v in op.validate_response(200, body, strict=True)] == [
        "$.properties.invented: unknown property (not in the spec)"
    ]


def test_operations_are_found_by_path_template_and_method():
    sub = "/subscriptions/s"
    cases = {
        ("PUT", f"{sub}/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v"): "Vaults_CreateOrUpdate",
        ("GET", f"{sub}/providers/Microsoft.KeyVault/locations/westus/deletedVaults/v"): "Vaults_GetDeleted",
        ("GET", f"{sub}/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v/keys/k/versions"): "Keys_ListVersions",
        (
            "PATCH",
            f"{sub}/resourceGroups/g/providers/Microsoft.Compute/diskEncryptionSets/d",
        ): "DiskEncryptionSets_Update",
        ("GET", f"{sub}/providers/Microsoft.Authorization/locks/l"): "ManagementLocks_GetAtSubscriptionLevel",
        (
            "GET",
            f"{sub}/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/locks",
        ): ("ManagementLocks_ListAtResourceLevel"),
        (
            "GET",
            f"{sub}/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v/providers/Microsoft.Insights/diagnosticSettings/x",
        ): ("DiagnosticSettings_Get"),
    }
    for (method, path), operation_id in cases.items():
        op = SPECS.find(method, f"https://127.0.0.1:1{path}?api-version=x")
        assert op is not None and op.operation_id == operation_id, (method, path)
    assert SPECS.find("GET", f"{sub}/resourceGroups/g/providers/Microsoft.Compute/disks/d") is None


def test_unresolved_refs_are_known():
    for spec in SPECS.specs:
        spec.json_schema({"type": "object"})  # translating every definition records the external refs
        for op in spec.operations:
            for status in op.raw.get("responses", {}):
                schema = op.response_schema(status)
                if schema is not None:
                    spec.json_schema(schema)
    files = {ref.split("#")[0].rsplit("/", 1)[-1] for refs in SPECS.unresolved.values() for ref in refs}
    assert files == {"types.json", "managedidentity.json", "common.json", "diskRPCommon.json"}


# -- (b) the sandbox's responses -------------------------------------------------------------------------------------


def _keyvault(ctx: Ctx) -> None:
    kv = ctx.kv
    ctx.vault("rg-fid", "kv-fid-1", enablePurgeProtection=True)
    ctx.vault(
        "rg-fid",
        "kv-fid-2",
        enableRbacAuthorization=False,
        accessPolicies=[
            {
                "tenantId": ctx.sandbox.tenant_id,
                "objectId": ctx.sandbox.principal("bot").object_id,
                "permissions": {"keys": ["get", "list"], "secrets": [], "certificates": []},
            }
        ],
        networkAcls={"defaultAction": "Deny", "bypass": "AzureServices", "ipRules": [{"value": "10.0.0.1"}]},
    )
    kv.vaults.get("rg-fid", "kv-fid-1")
    kv.vaults.update(
        "rg-fid", "kv-fid-1", {"tags": {"owner": "fidelity"}, "properties": {"enabledForDeployment": True}}
    )
    list(kv.vaults.list_by_subscription())
    list(kv.vaults.list_by_resource_group("rg-fid"))
    ctx.mgmt_key("rg-fid", "kv-fid-1", "k1")
    kv.keys.get("rg-fid", "kv-fid-1", "k1")
    list(kv.keys.list("rg-fid", "kv-fid-1"))
    versions = list(kv.keys.list_versions("rg-fid", "kv-fid-1", "k1"))
    kv.keys.get_version("rg-fid", "kv-fid-1", "k1", versions[0].name)
    kv.vaults.delete("rg-fid", "kv-fid-2")
    kv.vaults.get_deleted("kv-fid-2", "westus")
    list(kv.vaults.list_deleted())


def _des(ctx: Ctx) -> None:
    compute = ctx.compute
    vault = ctx.vault("rg-fid", "kv-fid-1", enablePurgeProtection=True, enabledForDiskEncryption=True)
    key_url = ctx.mgmt_key("rg-fid", "kv-fid-1", "des-key")
    des = compute.disk_encryption_sets.begin_create_or_update(
        "rg-fid",
        "des-fid",
        {
            "location": "westus",
            "identity": {"type": "SystemAssigned"},
            "properties": {"activeKey": {"keyUrl": key_url}, "encryptionType": "EncryptionAtRestWithCustomerKey"},
        },
    ).result()
    ctx.assign("Key Vault Crypto Service Encryption User", vault["id"], des.identity.principal_id)
    compute.disk_encryption_sets.get("rg-fid", "des-fid")
    compute.disk_encryption_sets.begin_update("rg-fid", "des-fid", {"tags": {"k": "v"}}).result()
    list(compute.disk_encryption_sets.list())
    list(compute.disk_encryption_sets.list_by_resource_group("rg-fid"))


def _diagnostic_settings(ctx: Ctx) -> None:
    resources, sub = ctx.resources, ctx.sandbox.subscription_id
    vault = ctx.vault("rg-fid", "kv-fid-1")
    ws = f"/subscriptions/{sub}/resourceGroups/rg-fid/providers/Microsoft.OperationalInsights/workspaces/law-fid"
    resources.resources.begin_create_or_update_by_id(
        ws.lstrip("/"), {"location": "westus", "properties": {"sku": {"name": "PerGB2018"}}}, api_version="2022-10-01"
    ).result()
    setting = f"{vault['id']}/providers/Microsoft.Insights/diagnosticSettings/to-law".lstrip("/")
    body = {
        "properties": {
            "workspaceId": ws,
            "logs": [{"categoryGroup": "audit", "enabled": True}],
            "metrics": [{"category": "AllMetrics", "enabled": True}],
        }
    }
    resources.resources.begin_create_or_update_by_id(setting, body, api_version="2021-05-01-preview").result()
    resources.resources.get_by_id(setting, api_version="2021-05-01-preview")


def _locks(ctx: Ctx) -> None:
    locks, sub = ctx.locks, ctx.sandbox.subscription_id
    ctx.vault("rg-fid", "kv-fid-1")
    group = f"/subscriptions/{sub}/resourceGroups/rg-fid"
    locks.management_locks.create_or_update_by_scope(group, "no-delete", {"properties": {"level": "CanNotDelete"}})
    locks.management_locks.create_or_update_at_resource_level(
        "rg-fid",
        "Microsoft.KeyVault",
        "",
        "vaults",
        "kv-fid-1",
        "kv-lock",
        {"properties": {"level": "CanNotDelete", "notes": "fidelity"}},
    )
    locks.management_locks.get_by_scope(group, "no-delete")
    list(locks.management_locks.list_by_scope(group))
    list(locks.management_locks.list_at_resource_group_level("rg-fid"))
    list(locks.management_locks.list_at_resource_level("rg-fid", "Microsoft.KeyVault", "", "vaults", "kv-fid-1"))
    list(locks.management_locks.list_at_subscription_level())
    locks.management_locks.delete_by_scope(group, "no-delete")


WORKLOADS = {
    "keyvault": (
        _keyvault,
        {
            "Vaults_CreateOrUpdate",
            "Vaults_Get",
            "Vaults_Update",
            "Vaults_ListBySubscription",
            "Vaults_ListByResourceGroup",
            "Vaults_GetDeleted",
            "Vaults_ListDeleted",
            "Keys_CreateIfNotExist",
            "Keys_Get",
            "Keys_List",
            "Keys_ListVersions",
            "Keys_GetVersion",
        },
        None,
    ),
    "disk-encryption-sets": (
        _des,
        {"DiskEncryptionSets_Get", "DiskEncryptionSets_List", "DiskEncryptionSets_ListByResourceGroup"},
        None,
    ),
    "diagnostic-settings": (
        _diagnostic_settings,
        {"DiagnosticSettings_CreateOrUpdate", "DiagnosticSettings_Get"},
        None,
    ),
    "locks": (
        _locks,
        {
            "ManagementLocks_CreateOrUpdateAtResourceGroupLevel",
            "ManagementLocks_CreateOrUpdateAtResourceLevel",
            "ManagementLocks_GetAtResourceGroupLevel",
            "ManagementLocks_ListAtResourceGroupLevel",
            "ManagementLocks_ListAtResourceLevel",
            "ManagementLocks_ListAtSubscriptionLevel",
        },
        None,
    ),
}


def _workload_params() -> list[object]:
    out: list[object] = []
    for name, (_, _, gap) in WORKLOADS.items():
        marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
        for strict in (False, True):
            out.append(pytest.param(name, strict, id=f"{name}-{'strict' if strict else 'schema'}", marks=marks))
    return out


@pytest.mark.parametrize(("family", "strict"), _workload_params())
def test_sandbox_responses_match_the_openapi_schemas(sandbox, family, strict):
    """Every response body of the workload against its operation's schema; `strict` also reports properties the
    spec does not define (a field the sandbox invented or misspelt)."""
    run, expected_operations, _ = WORKLOADS[family]
    ctx = Ctx(sandbox, family, {"parameters": {}, "responses": {}}, Replay())
    try:
        run(ctx)
    finally:
        ctx.close()
    problems, operations = [], set()
    for exchange in ctx.recorder.exchanges:
        if exchange.body is None or exchange.status >= 300:
            continue
        op = SPECS.find(exchange.method, exchange.url)
        if op is None or op.response_schema(exchange.status) is None:
            continue
        operations.add(op.operation_id)
        for violation in op.validate_response(exchange.status, exchange.body, strict=strict):
            problems.append(f"{op.operation_id} {exchange.status} {exchange.url.split('?')[0]}: {violation}")
    assert not problems, "\n".join(sorted(set(problems)))
    assert expected_operations <= operations, sorted(expected_operations - operations)
