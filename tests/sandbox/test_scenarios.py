"""Named scenarios: `empty` and the two-region non-compliant `estate`, seeded through ARM as the administrator."""

import json
import subprocess
import sys

from azure.keyvault.keys import KeyClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from tests.waits import START, limit, wait_until


def test_empty_has_one_subscription_and_the_named_roles(sandbox):
    assert list(sandbox.running.sandbox.state.subscriptions) == [sandbox.subscription_id]
    kv = sandbox.client(KeyVaultManagementClient)
    assert list(kv.vaults.list_by_subscription()) == []


def test_estate_is_realistic_and_non_compliant(sandbox):
    made = sandbox.reset("estate")
    # issue 20: vm-weu-ade (Azure Disk Encryption with kv-weu-app, not enabled for it) and its OS disk
    assert len(made["vaults"]) == 4 and len(made["disks"]) == 7 and len(made["virtualMachines"]) == 4
    # A second subscription holds a central vault whose key a set of the first uses by key URL alone.
    assert made["subscriptions"] == [sandbox.subscription_id, "00000000-0000-4000-8000-0000000c0de2"]
    central = ComputeManagementClient(
        sandbox.credential("admin"), sandbox.subscription_id, base_url=sandbox.base_url, connection_verify=sandbox.ca
    ).disk_encryption_sets.get("rg-keys-weu", "des-weu-central")
    assert central.active_key.source_vault is None and "/keys/central-key/" in central.active_key.key_url
    kv = sandbox.client(KeyVaultManagementClient)
    vaults = {v.name: v for v in kv.vaults.list_by_subscription()}
    assert {v.location for v in vaults.values()} == {"westeurope", "northeurope"}
    assert all(not v.properties.enable_purge_protection for v in vaults.values())
    assert vaults["kv-neu-legacy"].properties.enable_rbac_authorization is False

    compute = sandbox.client(ComputeManagementClient)
    disks = {d.name: d for d in compute.disks.list()}
    golden = disks.pop("disk-weu-golden")  # the estate image and snapshot source (sandbox/scenarios_compute.py)
    assert golden.encryption.type == "EncryptionAtRestWithCustomerKey"
    assert {d.encryption.type for d in disks.values()} == {"EncryptionAtRestWithPlatformKey"}
    assert disks["disk-weu-app-os"].managed_by.endswith("/vm-weu-app")
    assert disks["disk-weu-data"].managed_by is None
    des = compute.disk_encryption_sets.get("rg-keys-weu", "des-weu")
    assert des.rotation_to_latest_key_version_enabled in (None, False)
    assert des.identity.principal_id
    batch = compute.virtual_machines.instance_view("rg-app-weu", "vm-weu-batch")
    assert "PowerState/deallocated" in {s.code for s in batch.statuses}
    legacy = compute.virtual_machines.get("rg-app-neu", "vm-neu-legacy")
    assert legacy.storage_profile.os_disk.vhd.uri.endswith(".vhd")

    # Keys are past their rotation age: created 120 days before the sandbox clock's now.
    sb = sandbox.running.sandbox
    sb.directory.named("admin")
    from sandbox.rbac import ROLES
    from sandbox.scenarios import assign

    vault = vaults["kv-weu-disks"]
    assign(sb, vault.id, sb.directory.named("admin"), ROLES["Key Vault Crypto Officer"])
    client = KeyClient(
        vault.properties.vault_uri,
        sandbox.credential("admin"),
        verify_challenge_resource=False,
        connection_verify=sandbox.ca,
    )
    key = client.get_key("des-key")
    age = sb.state.clock.now() - key.properties.created_on
    assert age.days >= 119


def test_estate_creation_is_in_the_operations_log(sandbox):
    sandbox.reset("estate")
    ops = sandbox.admin("GET", "/_sandbox/operations")["value"]
    names = {op["operation_name"] for op in ops}
    assert "Microsoft.KeyVault/vaults/write" in names
    assert "Microsoft.Compute/virtualMachines/deallocate/action" in names
    assert {op["claims"]["upn"] for op in ops} == {"admin@contoso.example"}


def test_unknown_scenario_is_a_clear_error(sandbox):
    r = sandbox.admin_api.post("/_sandbox/seed", json={"scenario": "nope"})
    assert r.status_code == 400
    assert "valid: ['empty', 'estate', 'legacy']" in r.json()["error"]["message"]


def test_cli_serve_env_seed_round_trip(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _listening(proc, state), "the sandbox wrote server.json", within=START)
        env = subprocess.run(
            [sys.executable, "-m", "sandbox", "env", "--state", str(state)], capture_output=True, text=True, check=True
        ).stdout
        assert "export AZURE_CLIENT_ID=" in env and "export IDENTITY_ENDPOINT=" in env
        info = json.loads((state / "server.json").read_text())
        assert f"export AZURE_CLIENT_ID={info['principals']['bot']['client_id']}" in env
        out = subprocess.run(
            [sys.executable, "-m", "sandbox", "seed", "estate", "--state", str(state)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(out)["scenario"] == "estate"
        bad = subprocess.run(
            [sys.executable, "-m", "sandbox", "clock", "--advance", "soon", "--state", str(state)],
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 2 and "bad duration" in bad.stderr
        moved = subprocess.run(
            [sys.executable, "-m", "sandbox", "clock", "--advance", "90d", "--state", str(state)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(moved)["offsetSeconds"] == 90 * 86400
    finally:
        proc.terminate()
        proc.wait(timeout=limit(30))
    missing = subprocess.run(
        [sys.executable, "-m", "sandbox", "env", "--state", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no running sandbox" in missing.stderr


def _listening(proc, state):
    """The sandbox's server.json is written once it listens; a sandbox that exited fails at once, with its stderr."""
    assert proc.poll() is None, proc.stderr.read().decode()
    return (state / "server.json").exists()


def _serve(state, *extra):
    (state / "server.json").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", str(state), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_until(lambda: _listening(proc, state), "the sandbox wrote server.json", within=START)
    return proc, json.loads((state / "server.json").read_text())


def test_persisted_state_survives_a_restart(tmp_path):
    import ssl

    import httpx

    def token(info):
        params = {"api-version": "2019-08-01", "resource": "https://management.azure.com", "client_id": ""}
        params["client_id"] = info["principals"]["admin"]["client_id"]
        r = httpx.get(
            info["identityEndpoint"],
            params=params,
            headers={"X-IDENTITY-HEADER": info["identityHeader"]},
            verify=ssl.create_default_context(cafile=info["ca"]),
        )
        return r.json()["access_token"]

    state = tmp_path / "state"
    proc, info = _serve(state, "--persist")
    try:
        url = f"{info['baseUrl']}/subscriptions/{info['subscriptionId']}/resourcegroups/rg-kept?api-version=2025-04-01"
        tls = ssl.create_default_context(cafile=info["ca"])
        r = httpx.put(
            url, json={"location": "westeurope"}, headers={"Authorization": f"Bearer {token(info)}"}, verify=tls
        )
        assert r.status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=limit(30))
    assert (state / "state.json").exists()
    proc, info2 = _serve(state, "--persist")
    try:
        assert info2["principals"]["admin"] == info["principals"]["admin"]  # same ids after the restart
        url = (
            f"{info2['baseUrl']}/subscriptions/{info2['subscriptionId']}/resourcegroups/rg-kept?api-version=2025-04-01"
        )
        tls = ssl.create_default_context(cafile=info2["ca"])
        r = httpx.get(url, headers={"Authorization": f"Bearer {token(info2)}"}, verify=tls)
        assert r.status_code == 200 and r.json()["name"] == "rg-kept"
    finally:
        proc.terminate()
        proc.wait(timeout=limit(30))


def test_legacy_holds_an_access_policy_vault_and_sets_that_can_and_cannot_reach_its_key(sandbox):
    import pytest
    from azure.core.exceptions import HttpResponseError

    made = sandbox.reset("legacy")
    assert len(made["vaults"]) == 1 and len(made["diskEncryptionSets"]) == 3
    vault = sandbox.client(KeyVaultManagementClient).vaults.get("rg-legacy", "kv-legacy")
    assert vault.properties.enable_rbac_authorization is None  # absent: access policies
    assert vault.properties.enable_soft_delete is None and vault.properties.soft_delete_retention_in_days is None
    compute = sandbox.client(ComputeManagementClient)
    sets = {d.name: d for d in compute.disk_encryption_sets.list_by_resource_group("rg-legacy")}
    uai = sets["des-legacy-uai"].identity
    assert uai.principal_id is None and [i.principal_id for i in uai.user_assigned_identities.values()] != [None]

    def disk(name, des):
        body = {
            "location": "westeurope",
            "sku": {"name": "Premium_LRS"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32,
                           "encryption": {"diskEncryptionSetId": sets[des].id}},
        }  # fmt: skip
        return compute.disks.begin_create_or_update("rg-legacy", name, body).result()

    assert disk("d-uai", "des-legacy-uai").encryption.type == "EncryptionAtRestWithCustomerKey"
    for des in ("des-legacy-revoked", "des-legacy-sys"):
        with pytest.raises(HttpResponseError) as refused:
            disk(f"d-{des}", des)
        assert refused.value.error.code == "KeyVaultAccessForbidden", des
