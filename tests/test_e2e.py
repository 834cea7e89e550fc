"""End to end: the sandbox (Azure), Azurite (the function app's storage) and `cryptward serve` hosting function_app.py,
acting as the bot's managed identity holding only infra/cryptward-role.json. Event Grid delivers to serve's webhook
exactly as Azure's Event Grid would to the Functions host."""

from __future__ import annotations

import functools
import json
import uuid
from collections import Counter

import httpx
import pytest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations import azure as azure_access
from remediations.store.ledger import Ledger, Tables
from tests.botapp import KEY, make_workspace, start_bot
from tests.waits import limit

RG = "rg-e2e"
ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"  # Key Vault Crypto Service Encryption User
KV_API = "2026-05-15"


@pytest.fixture
def bot(sandbox, azurite, monkeypatch, grant_custom_role):
    grant_custom_role("bot")
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    workspace = make_workspace(sandbox)
    started = []

    def start(**kwargs):
        kwargs.setdefault("CRYPTWARD_WORKSPACE_ID", workspace)
        # host.json's visibilityTimeout, the wait before a failed item's next try, is serve's retry delay here
        # (RETRY_DELAY, not 10 s); make_host gives the worker's retry of a failed item of a pack the same.
        started.append(start_bot(sandbox, azurite, monkeypatch.setenv, **kwargs))
        return started[-1]

    yield start
    for app in started:
        app.stop()


def ledger_of(azurite):
    import os

    ledger = Ledger(azurite, Tables.with_prefix(os.environ["CRYPTWARD_TABLE_PREFIX"]))
    ledger.create_tables()
    return ledger


def make_vault(sandbox, name, *, who="admin", **props):
    kv = sandbox.client(KeyVaultManagementClient, who)
    body = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}, **props}
    return kv.vaults.begin_create_or_update(RG, name, {"location": "westeurope", "properties": body}).result()


def vault_state(sandbox, vault_id):
    kv = sandbox.client(KeyVaultManagementClient)
    vault = kv.vaults.get(RG, vault_id.rsplit("/", 1)[-1])
    locks = list(sandbox.client(ManagementLockClient).management_locks.list_by_scope(vault_id))
    rm = sandbox.client(ResourceManagementClient)
    diag = rm.resources.get_by_id(
        f"{vault_id}/providers/Microsoft.Insights/diagnosticSettings/cryptward", api_version="2021-05-01-preview"
    )
    return vault, locks, diag


def needed_vault_writes(vault_id, *, purge=False):
    v = vault_id.lower()
    out = [
        ("PUT", f"{v}/providers/microsoft.authorization/locks/cryptward-cannot-delete"),
        ("PUT", f"{v}/providers/microsoft.insights/diagnosticsettings/cryptward"),
    ]
    return out


def test_new_vault_is_fixed_by_the_bot_within_seconds(sandbox, bot, azurite):
    app = bot(CRYPTWARD_POLICY_MODES=json.dumps({"kv-purge-protection": "remediate"}))
    vault = make_vault(sandbox, "kv-e2e-1")
    app.wait_for(lambda: len(app.writes()) >= 4)
    app.settle()
    fixed, locks, diag = vault_state(sandbox, vault.id)
    admin = sandbox.principal("admin")
    assert fixed.properties.enable_purge_protection is True
    assert [lk.level for lk in locks] == ["CanNotDelete"]
    assert fixed.tags.get("owner") == admin.upn
    assert diag.properties["workspaceId"].lower().endswith("/workspaces/law-cryptward")
    writes = app.writes()
    # Exactly the needed writes, each once: the bot's own writes caused no further work.
    assert max(Counter(writes).values()) == 1, writes
    assert len(writes) == 4, writes
    ledger = ledger_of(azurite)
    records = ledger.audit_for(vault.id)
    assert {r.result for r in records} == {"applied"}
    assert {r.policy for r in records} >= {"kv-delete-lock", "kv-owner-tag", "kv-purge-protection"}
    assert all(r.caller.upn == admin.upn for r in records)


def test_purge_protection_waits_for_approval_by_default(sandbox, bot, azurite):
    app = bot()
    vault = make_vault(sandbox, "kv-e2e-2")
    app.wait_for(lambda: len(app.writes()) >= 3)
    app.settle()
    fixed, locks, _ = vault_state(sandbox, vault.id)
    assert not fixed.properties.enable_purge_protection
    assert len(locks) == 1
    ledger = ledger_of(azurite)
    pending = [p for p in ledger.list_pending("approval") if p.resource_id.lower() == vault.id.lower()]
    assert [p.policy for p in pending] == ["kv-purge-protection"]
    assert len(app.writes()) == 3


def alert_body(sandbox, vault_id, *, schema="azureMonitorCommonAlertSchema"):
    admin = sandbox.principal("admin")
    return {
        "schemaId": schema,
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.AlertsManagement/alerts/"
                + str(uuid.uuid4()),
                "alertRule": "kv-changes",
                "severity": "Sev4",
                "signalType": "Activity Log",
                "monitorCondition": "Fired",
                "monitoringService": "Activity Log - Administrative",
                "alertTargetIDs": [vault_id.lower()],
                "originAlertId": str(uuid.uuid4()),
                "firedDateTime": "2026-01-01T00:00:00.000Z",
            },
            "alertContext": {
                "caller": admin.upn,
                "operationName": "Microsoft.KeyVault/vaults/write",
                "eventDataId": str(uuid.uuid4()),
                "eventTimestamp": "2026-01-01T00:00:00.000Z",
                "status": "Succeeded",
            },
        },
    }


def test_activity_log_alert_leads_to_the_same_fix_and_forged_calls_do_not(sandbox, bot, azurite):
    app = bot(subscribe=False)
    vault = make_vault(sandbox, "kv-e2e-alert")
    url = f"{app.running.base_url}/api/alerts"
    body = alert_body(sandbox, vault.id)
    with httpx.Client() as http:
        assert http.post(url, json=body).status_code == 401
        assert http.post(url, json=body, params={"code": "wrong"}).status_code == 403
        assert http.post(url, json=body, headers={"x-functions-key": "wrong"}).status_code == 403
        wrong = http.post(
            url, json=alert_body(sandbox, vault.id, schema="Microsoft.Insights/activityLogs"), params={"code": KEY}
        )
        assert wrong.status_code == 400 and "schemaId" in wrong.json()["field"]
        assert http.post(url, content=b"{not json", params={"code": KEY}).status_code == 400
        app.settle()
        assert app.writes() == []  # nothing came through
        ok = http.post(url, json=body, headers={"x-functions-key": KEY})
        assert ok.status_code == 202, ok.text
    app.wait_for(lambda: len(app.writes()) >= 3)
    app.settle()
    fixed, locks, _ = vault_state(sandbox, vault.id)
    assert len(locks) == 1 and fixed.tags.get("owner") == sandbox.principal("admin").upn
    assert len(app.writes()) == 3


def put(sandbox, rid, body, api):
    rm = sandbox.client(ResourceManagementClient)
    return rm.resources.begin_create_or_update_by_id(rid, body, api_version=api).result()


def disk_estate(sandbox):
    """A vault, key and disk encryption set, and a running VM with a platform-key data disk (made before the bot
    listens)."""
    sub = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{RG}/providers"
    vault = make_vault(sandbox, "kv-e2e-disks", enablePurgeProtection=True, enabledForDiskEncryption=True)
    kv = sandbox.client(KeyVaultManagementClient)
    key = kv.keys.create_if_not_exist(RG, vault.name, "des-key", {"properties": {"kty": "RSA", "keySize": 2048}})
    des = f"{sub}/Microsoft.Compute/diskEncryptionSets/des-e2e"
    put(
        sandbox,
        des,
        {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"sourceVault": {"id": vault.id}, "keyUrl": key.key_uri_with_version},
            },
        },
        "2026-03-02",
    )
    principal = sandbox.client(ComputeManagementClient).disk_encryption_sets.get(RG, "des-e2e").identity.principal_id
    role = (
        f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{ENCRYPTION_USER}"
    )
    with sandbox.roles_at_once():  # made long before the bot listens: in effect
        sandbox.client(AuthorizationManagementClient).role_assignments.create(
            vault.id,
            str(uuid.uuid4()),
            {"properties": {"roleDefinitionId": role, "principalId": principal, "principalType": "ServicePrincipal"}},
        )
    disk = f"{sub}/Microsoft.Compute/disks/disk-e2e-data"
    body = {"creationData": {"createOption": "Empty"}, "diskSizeGB": 64}
    put(sandbox, disk, {"location": "westeurope", "sku": {"name": "Premium_LRS"}, "properties": body}, "2026-03-02")
    os_disk = f"{sub}/Microsoft.Compute/disks/disk-e2e-os"
    body = {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32, "osType": "Linux"}
    put(sandbox, os_disk, {"location": "westeurope", "sku": {"name": "Premium_LRS"}, "properties": body}, "2026-03-02")
    vm = f"{sub}/Microsoft.Compute/virtualMachines/vm-e2e"
    storage = {
        "osDisk": {"osType": "Linux", "createOption": "Attach", "managedDisk": {"id": os_disk}},
        "dataDisks": [{"lun": 0, "createOption": "Attach", "managedDisk": {"id": disk}}],
    }
    props = {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}, "storageProfile": storage}
    put(sandbox, vm, {"location": "westeurope", "properties": props}, "2026-04-01")
    return des, disk, vm


def test_disk_change_waits_for_the_vm_deallocation_event(sandbox, bot, azurite):
    des, disk, vm = disk_estate(sandbox)
    modes = {"disk-cmk": "remediate"}
    des_map = {"westeurope": {"EncryptionAtRestWithCustomerKey": des}}
    app = bot(subscribe=False, CRYPTWARD_POLICY_MODES=json.dumps(modes), CRYPTWARD_DES_MAP=json.dumps(des_map))
    app.subscribe()
    app.mark = len(app.calls(0))
    rm = sandbox.client(ResourceManagementClient)
    rm.tags.begin_update_at_scope(disk, {"operation": "Merge", "properties": {"tags": {"team": "app"}}}).result()
    ledger = ledger_of(azurite)
    waiting = app.wait_for(
        lambda: [p for p in ledger.list_pending("deallocated") if p.resource_id.lower() == disk.lower()]
    )
    assert waiting and waiting[0].policy == "disk-cmk" and waiting[0].detail["vm"].lower() == vm.lower()
    app.settle()
    compute = sandbox.client(ComputeManagementClient)
    assert compute.disks.get(RG, "disk-e2e-data").encryption.type == "EncryptionAtRestWithPlatformKey"
    compute.virtual_machines.begin_deallocate(RG, "vm-e2e").result()
    app.wait_for(lambda: compute.disks.get(RG, "disk-e2e-data").encryption.type == "EncryptionAtRestWithCustomerKey")
    app.settle()
    encryption = compute.disks.get(RG, "disk-e2e-data").encryption
    assert encryption.type == "EncryptionAtRestWithCustomerKey"
    assert encryption.disk_encryption_set_id.lower() == des.lower()
    assert not [p for p in ledger.list_pending("deallocated") if p.resource_id.lower() == disk.lower()]
    disk_writes = [w for w in app.writes() if w[1] == disk.lower()]
    assert len(disk_writes) == 1, app.writes()


def write_event(sandbox, resource_id, n, *, caller="admin"):
    who = sandbox.principal(caller)
    return {
        "id": f"{uuid.uuid4()}",
        "topic": f"/subscriptions/{sandbox.subscription_id}",
        "subject": resource_id,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": f"2026-01-01T00:00:{n % 60:02d}.000Z",
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "resourceUri": resource_id,
            "operationName": "Microsoft.KeyVault/vaults/write",
            "status": "Succeeded",
            "correlationId": str(uuid.uuid4()),
            "claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": who.upn, "oid": who.object_id},
        },
    }


def test_a_thousand_duplicate_and_reordered_deliveries_make_each_write_once(sandbox, bot, azurite):
    """100 vaults, 10 deliveries each (duplicates of the same change and later changes), shuffled, posted in batches
    to serve's Event Grid webhook: exactly three writes per vault (lock, owner tag, diagnostic setting), none twice."""
    import random

    vaults = [make_vault(sandbox, f"kv-dup-{i:03d}").id for i in range(100)]
    app = bot(subscribe=False, debounce=2.0)
    # ARM's real budgets would make this test wait ~10 s for write tokens; throttling has its own test below.
    sandbox.admin("PATCH", "/_sandbox/settings", {"read_budget": 5000, "write_budget": 5000})
    rng = random.Random(7)
    events = [write_event(sandbox, v, n) for v in vaults for n in range(10)]
    rng.shuffle(events)
    with httpx.Client(timeout=limit(60)) as http:
        for i in range(0, len(events), 50):
            r = http.post(
                app.running.eventgrid_url(), json=events[i : i + 50], headers={"aeg-event-type": "Notification"}
            )
            assert r.status_code == 200
    app.wait_for(lambda: len(app.writes()) >= 300)
    app.settle()
    writes = app.writes()
    assert max(Counter(writes).values()) == 1
    assert len(writes) == 300
    assert Counter(path.rsplit("/providers/", 1)[-1] for _, path in writes) == {
        "microsoft.authorization/locks/cryptward-cannot-delete": 100,
        "microsoft.insights/diagnosticsettings/cryptward": 100,
        "microsoft.resources/tags/default": 100,
    }


def test_through_injected_faults_every_fix_lands_once_and_the_rest_is_poisoned_with_its_reason(sandbox, bot, azurite):
    vaults = [make_vault(sandbox, f"kv-fault-{i:02d}").id for i in range(8)]
    doomed = make_vault(sandbox, "kv-doomed").id
    # A read-only lock an administrator put on one vault: every write of the bot there is refused (409 ScopeLocked).
    sandbox.client(ManagementLockClient).management_locks.create_or_update_by_scope(
        doomed, "frozen", {"level": "ReadOnly"}
    )
    app = bot(subscribe=False, debounce=0.2)
    bot_id = sandbox.principal("bot").client_id
    rules = [
        {"kind": "429", "rate": 0.08, "principal": bot_id, "retryAfter": 0},
        {"kind": "503", "rate": 0.07, "principal": bot_id},
        {"kind": "reset", "rate": 0.06, "principal": bot_id},
    ]
    sandbox.admin("POST", "/_sandbox/faults", {"seed": 3, "rules": rules})
    with httpx.Client(timeout=limit(60)) as http:
        events = [write_event(sandbox, v, 0) for v in [*vaults, doomed]]
        assert http.post(app.running.eventgrid_url(), json=events).status_code == 200
    app.wait_for(lambda: app.poisoned())
    app.settle()
    summary = sandbox.admin("GET", "/_sandbox/calls/summary?principal=bot")
    assert sum(summary["faults"].values()) > 0, summary
    writes = app.writes()
    assert not [w for w in writes if w[1].startswith(doomed.lower() + "/")]
    assert max(Counter(writes).values()) == 1, [w for w, n in Counter(writes).items() if n > 1]
    for v in vaults:
        mine = {path for _, path in writes if path.startswith(v.lower() + "/")}
        assert len(mine) == 3, (v, mine)
    poisoned = app.poisoned()
    assert len(poisoned) == 1
    ledger = ledger_of(azurite)
    last = ledger.audit_for(doomed)[-1]
    assert last.result == "poisoned" and "ScopeLocked" in last.after["error"], last.after


def test_a_notice_that_keeps_failing_is_kept_in_the_table_and_sent_when_the_receiver_recovers(
    sandbox, bot, azurite, monkeypatch
):
    from datetime import UTC, datetime, timedelta

    from remediations.notices.delivery import setting_prefix
    from remediations.store.outbox import TableNoticeStore
    from remediations.triggers.worker import retry_notices

    name = f"down{uuid.uuid4().hex[:6]}"
    sandbox.admin("PUT", f"/_sandbox/receivers/webhook/{name}", {"status": 500})
    # azure-core's backoff between a notice's 3 retries (0.8 s, 1.6 s, 3.2 s) is time, not what this test is about
    monkeypatch.setattr(
        azure_access, "Retries", functools.partial(azure_access.Retries, backoff=0.01, backoff_max=0.05)
    )
    app = bot(
        CRYPTWARD_ROUTES=json.dumps({"*": [f"webhook:{name}"]}),
        **{
            f"{setting_prefix(name)}_URL": f"{sandbox.base_url}/_receivers/webhook/{name}",
            f"{setting_prefix(name)}_SECRET": "whsec-e2e",
        },
    )
    make_vault(sandbox, "kv-e2e-outbox")
    store = TableNoticeStore.from_env(app.running.host.runtime.settings.storage.values)
    later = datetime.now(UTC) + timedelta(minutes=6)
    kept = app.wait_for(lambda: store.due(later))
    app.settle()
    assert [f.destination for f in kept] == [f"webhook:{name}"] and kept[0].attempts == 1
    assert "kv-e2e-outbox" in kept[0].notice.resource_id

    def received():
        return sandbox.admin("GET", f"/_sandbox/received?receiver=webhook/{name}")["value"]

    tries = len(received())
    assert tries == 4 and {i["status"] for i in received()} == {500}  # the try and azure-core's 3 retries
    assert retry_notices() == 0 and len(received()) == tries  # not due yet: nothing sent
    assert retry_notices(later) == 0  # still 500: kept, with a later next try
    [again] = store.due(later + timedelta(minutes=11))
    assert again.attempts == 2 and not store.due(later)
    sandbox.admin("PUT", f"/_sandbox/receivers/webhook/{name}", {"status": 200})
    assert retry_notices(later + timedelta(minutes=11)) == 1
    assert received()[-1]["status"] == 200
    assert store.due(later + timedelta(days=1)) == []
    store.close()


def test_the_sweep_timer_catches_what_no_event_reported_in_packs_and_poisons_only_the_failing_vault(
    sandbox, bot, azurite
):
    from azure.functions.timer import TimerRequest

    from remediations.cli.functions import functions
    from remediations.store.workqueue import PACK_ITEMS, decode_all

    vaults = [make_vault(sandbox, f"kv-swept-{i:02d}").id for i in range(PACK_ITEMS + 8)]  # two packs
    doomed = make_vault(sandbox, "kv-swept-doomed").id
    sandbox.client(ManagementLockClient).management_locks.create_or_update_by_scope(
        doomed, "frozen", {"level": "ReadOnly"}
    )
    app = bot(subscribe=False, debounce=0)  # no Event Grid subscription: every event was lost
    (sweep,) = [f for f in functions() if f.get_function_name() == "sweep"]
    sweep.get_user_function()(TimerRequest(past_due=False))  # what the host does on %SWEEP_SCHEDULE%
    app.wait_for(lambda: app.poisoned())
    app.settle()
    writes = app.writes()
    assert max(Counter(writes).values()) == 1, [w for w, n in Counter(writes).items() if n > 1]
    for v in vaults:  # lock, owner tag, diagnostic setting; purge protection waits for approval
        assert len({path for _, path in writes if path.startswith(v.lower() + "/")}) == 3, v
    assert not [w for w in writes if w[1].startswith(doomed.lower() + "/")]
    (poisoned,) = app.poisoned()  # the failing vault alone, not the pack it came in
    assert [w.resource_id for w in decode_all(poisoned)] == [doomed]
    last = ledger_of(azurite).audit_for(doomed)[-1]
    assert last.result == "poisoned" and "ScopeLocked" in last.after["error"], last.after
