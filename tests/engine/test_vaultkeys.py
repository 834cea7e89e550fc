"""`Microsoft.KeyVault.Data` definitions through the engine against the sandbox: every key of the vaults in scope is
evaluated as the data plane presents it (one list per vault, one GET per key the reader had not read), and keys that
cannot be read decide nothing."""

import shutil
from pathlib import Path

from azure.mgmt.keyvault import KeyVaultManagementClient

from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.loader import load_policies
from remediations.settings import Settings

BUILTINS = Path(__file__).resolve().parents[1] / "builtins" / "definitions"
EXPIRY = "152b15f7-8e1f-4c1f-ab71-8c010ba5dbc0"  # Key Vault keys should have an expiration date


def expiry_policy(tmp_path):
    shutil.copytree(BUILTINS / EXPIRY, tmp_path / EXPIRY, ignore=shutil.ignore_patterns("samples"))
    return list(load_policies(tmp_path, fixes=[]))


def test_every_key_of_the_vaults_is_judged_as_the_data_plane_presents_it(sandbox, azure_as, tmp_path):
    sandbox.reset("estate")
    kv = sandbox.client(KeyVaultManagementClient).keys
    kv.create_if_not_exist("rg-app-weu", "kv-weu-app", "no-expiry", {"properties": {"kty": "RSA", "keySize": 2048}})
    expires = {"kty": "EC", "curveName": "P-256", "attributes": {"exp": 4102444800}}
    kv.create_if_not_exist("rg-app-weu", "kv-weu-app", "expires", {"properties": expires})
    since = len(sandbox.calls())
    report = scan(
        Scope((sandbox.subscription_id,)), expiry_policy(tmp_path), settings=Settings(), azure=azure_as("reader")
    )
    assert sorted(f.resource["name"] for f in report.findings) == ["des-key", "no-expiry", "short-key"]
    assert not any(f.unreadable for f in report.findings)
    gets = [c["path"].lower() for c in sandbox.calls(since) if c["method"] == "GET" and "/keys" in c["path"].lower()]
    assert sorted(p.rsplit("/", 1)[-1] for p in gets if p.endswith("/keys")) == ["keys", "keys", "keys"]
    each = sorted(p.rsplit("/", 1)[-1] for p in gets if not p.endswith("/keys"))
    # one GET per key; central-key (another subscription's vault) is read by the reader for the set that uses it
    assert each == ["central-key", "des-key", "expires", "no-expiry", "short-key"]


def test_keys_that_cannot_be_listed_decide_nothing(sandbox, azure_as, tmp_path, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.KeyVault/vaults/keys/read"])
    report = scan(
        Scope((sandbox.subscription_id,)), expiry_policy(tmp_path), settings=Settings(), azure=azure_as("bot")
    )
    assert report.findings and all(f.unreadable for f in report.findings)
    assert {f.resource["name"] for f in report.findings} >= {"kv-weu-app", "kv-neu-legacy"}
    assert report.plan.changes == ()
