"""End to end: Microsoft's Modify built-in "Configure key vaults to enable firewall" (ac673a9a, unmodified from
Azure/azure-policy) in remediate mode, applied by the bot through events seconds after a vault is written, where Azure
Policy needs a remediation task. The sandbox, Azurite and `cryptward serve`, as in tests/test_e2e.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from azure.mgmt.keyvault import KeyVaultManagementClient

from tests.test_e2e import RG, bot, ledger_of, make_vault  # noqa: F401 (bot is a fixture)

FIREWALL = "ac673a9a-f77d-4846-b2d8-a57f8e1c01dc"
BUILTINS = Path(__file__).resolve().parent / "builtins" / "definitions"


def test_a_modify_builtin_runs_as_a_fix_through_events(sandbox, bot, azurite, tmp_path):  # noqa: F811
    shutil.copytree(BUILTINS / FIREWALL, tmp_path / FIREWALL, ignore=shutil.ignore_patterns("samples"))
    (tmp_path / FIREWALL / "cryptward.yaml").write_text("mode: remediate\n")
    app = bot(CRYPTWARD_POLICIES=str(tmp_path))
    acls = {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [{"value": "203.0.113.0/24"}]}
    vault = make_vault(sandbox, "kv-e2e-modify", networkAcls=acls)
    app.wait_for(lambda: app.writes())
    app.settle()
    fixed = sandbox.client(KeyVaultManagementClient).vaults.get(RG, "kv-e2e-modify")
    got = fixed.properties.network_acls
    assert got.default_action == "Deny"
    assert (got.bypass, [r.value for r in got.ip_rules]) == ("AzureServices", ["203.0.113.0/24"])
    # One write, and the bot's own write caused no further work.
    assert app.writes() == [("PATCH", vault.id.lower())]
    (record,) = [r for r in ledger_of(azurite).audit_for(vault.id) if r.policy == FIREWALL]
    assert record.result == "applied"
    assert (record.before, record.after) == (
        {"properties.networkAcls.defaultAction": "Allow"},
        {"properties.networkAcls.defaultAction": "Deny"},
    )


def test_the_same_builtin_in_approve_mode_waits_for_a_person(sandbox, bot, azurite, tmp_path):  # noqa: F811
    shutil.copytree(BUILTINS / FIREWALL, tmp_path / FIREWALL, ignore=shutil.ignore_patterns("samples"))
    (tmp_path / FIREWALL / "cryptward.yaml").write_text("mode: approve\n")
    app = bot(CRYPTWARD_POLICIES=str(tmp_path))
    vault = make_vault(
        sandbox, "kv-e2e-modify-approve", networkAcls={"bypass": "AzureServices", "defaultAction": "Allow"}
    )
    ledger = ledger_of(azurite)

    def waiting():
        return [p for p in ledger.list_pending("approval") if p.resource_id.lower() == vault.id.lower()]

    (pending,) = app.wait_for(waiting)
    app.settle()
    assert pending.policy == FIREWALL and app.writes() == []
    fixed = sandbox.client(KeyVaultManagementClient).vaults.get(RG, "kv-e2e-modify-approve")
    assert fixed.properties.network_acls.default_action == "Allow"
