"""Existence checks (AuditIfNotExists / DeployIfNotExists) through the engine against the sandbox: the related
resources are read once per run, at the scope Azure reads them, and what could not be read decides nothing."""

import json
import shutil
from pathlib import Path

import pytest

from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.existence import compile_existence
from remediations.policy.fields import Scope as FieldScope
from remediations.policy.loader import load_policies
from remediations.settings import Settings

BUILTINS = Path(__file__).resolve().parents[1] / "builtins" / "definitions"
RESOURCE_LOGS = "cf820ca0-f99e-4f3e-84fb-66e913812d21"  # Resource logs in Key Vault should be enabled
DIAG_API = "2021-05-01-preview"


def builtin(tmp_path, *names):
    for name in names:
        shutil.copytree(BUILTINS / name, tmp_path / name, ignore=shutil.ignore_patterns("samples"))
    return list(load_policies(tmp_path, fixes=[]))


def vault_ids(sandbox):
    sub = f"/subscriptions/{sandbox.subscription_id}/resourceGroups"
    return {
        "kv-weu-app": f"{sub}/rg-app-weu/providers/Microsoft.KeyVault/vaults/kv-weu-app",
        "kv-neu-legacy": f"{sub}/rg-app-neu/providers/Microsoft.KeyVault/vaults/kv-neu-legacy",
        "kv-weu-disks": f"{sub}/rg-keys-weu/providers/Microsoft.KeyVault/vaults/kv-weu-disks",
    }


def put_setting(sandbox, azure, vault_id, name, **properties):
    group = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-ops"
    workspace = f"{group}/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
    body = {"properties": {"workspaceId": workspace, **properties}}
    azure.write("PUT", f"{vault_id}/providers/Microsoft.Insights/diagnosticSettings/{name}", DIAG_API, body)


def test_a_vault_with_a_qualifying_diagnostic_setting_is_compliant_and_each_list_is_read_once(
    sandbox, azure_as, tmp_path
):
    sandbox.reset("estate")
    vaults = vault_ids(sandbox)
    admin = azure_as("admin")
    put_setting(sandbox, admin, vaults["kv-weu-app"], "audit", logs=[{"categoryGroup": "audit", "enabled": True}])
    put_setting(sandbox, admin, vaults["kv-neu-legacy"], "off", logs=[{"categoryGroup": "audit", "enabled": False}])
    (policy,) = builtin(tmp_path, RESOURCE_LOGS)
    azure = azure_as("reader")
    since = len(sandbox.calls())
    report = scan(Scope((sandbox.subscription_id,)), [policy, policy], settings=Settings(), azure=azure)
    flagged = sorted(f.resource["name"] for f in report.findings if f.policy.id == RESOURCE_LOGS)
    assert flagged == ["kv-neu-legacy", "kv-neu-legacy", "kv-weu-disks", "kv-weu-disks"]
    assert not any(f.unreadable for f in report.findings)
    lists = [
        c["path"].lower()
        for c in sandbox.calls(since)
        if c["method"] == "GET" and c["path"].lower().endswith("/providers/microsoft.insights/diagnosticsettings")
    ]
    assert sorted(lists) == sorted(
        {f"{v}/providers/microsoft.insights/diagnosticsettings".lower() for v in vaults.values()}
    )


def test_diagnostic_settings_that_cannot_be_read_decide_nothing(sandbox, azure_as, tmp_path, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Insights/diagnosticSettings/read"])
    (policy,) = builtin(tmp_path, RESOURCE_LOGS)
    report = scan(Scope((sandbox.subscription_id,)), [policy], settings=Settings(), azure=azure_as("bot"))
    assert len(report.findings) == 3
    assert all(f.unreadable and "AuthorizationFailed" in f.unreadable for f in report.findings)
    assert report.plan.changes == () and {s.reason for s in report.plan.skipped} == {"cannot-read"}


def test_a_related_list_that_fails_is_reported_as_unread(sandbox, azure_as, tmp_path, grant_custom_role):
    # A principal that may read everything but VM extensions (the bot's own role has no extension read: a definition
    # whose existence check lists them needs it added): the list fails, and nothing is decided.
    sandbox.reset("estate")
    no_extensions = {
        "roleName": "Reader without VM extensions",
        "description": "Reads all but VM extensions",
        "actions": ["*/read"],
        "notActions": ["Microsoft.Compute/virtualMachines/extensions/read"],
        "dataActions": [],
        "notDataActions": [],
    }
    grant_custom_role("vault-owner", role=no_extensions)
    rule = {
        "if": {"field": "type", "equals": "Microsoft.Compute/virtualMachines"},
        "then": {
            "effect": "AuditIfNotExists",
            "details": {
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "existenceCondition": {"field": "Microsoft.Compute/virtualMachines/extensions/type", "equals": "X"},
            },
        },
    }
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "definition.json").write_text(json.dumps({"properties": {"mode": "All", "policyRule": rule}}))
    (policy,) = load_policies(tmp_path, fixes=[])
    report = scan(Scope((sandbox.subscription_id,)), [policy], settings=Settings(), azure=azure_as("vault-owner"))
    assert len(report.findings) == 3
    assert all(f.unreadable for f in report.findings), [f.unreadable for f in report.findings]


G = "/subscriptions/s/resourceGroups/g/providers"
KV, VM = f"{G}/Microsoft.KeyVault/vaults/kv", f"{G}/Microsoft.Compute/virtualMachines/vm"
DIAG, LINKS = "Microsoft.Insights/diagnosticSettings", "Microsoft.Resources/links"


@pytest.mark.parametrize(
    ("primary", "details", "kind", "path"),
    [
        (KV, {"type": DIAG}, "extension", f"{KV}/providers/{DIAG}"),
        (VM, {"type": "Microsoft.Compute/virtualMachines/extensions"}, "child", f"{VM}/extensions"),
        (VM, {"type": LINKS}, "group", f"{G}/{LINKS}"),
        (VM, {"type": LINKS, "resourceGroupName": "o"}, "group", G.replace("/g/", "/o/") + f"/{LINKS}"),
        (VM, {"type": "A.B/c", "existenceScope": "subscription"}, "subscription", "/subscriptions/s/providers/A.B/c"),
    ],
)  # fmt: skip
def test_where_an_existence_check_looks(primary, details, kind, path):
    check = compile_existence(details, FieldScope({}), "details")
    kind_of = primary.split("/providers/")[1].rsplit("/", 1)[0]
    where = check.where({"id": primary, "type": kind_of})
    assert (where.kind, where.path) == (kind, path)
