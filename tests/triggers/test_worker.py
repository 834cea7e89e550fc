"""The worker against the sandbox (as the bot, with its role) and Azurite: one resource per item, audit records,
fights escalated instead of fixed, concurrent workers applying once, failures recorded for the poison queue."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations.changes import Caller
from remediations.errors import EventRejected
from remediations.triggers import worker
from remediations.work import WorkItem
from tests.botapp import bot_env

RG = "rg-worker"


@pytest.fixture
def env(sandbox, azurite, grant_custom_role, bot_runtime):
    grant_custom_role("bot")
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    return bot_runtime(bot_env(sandbox, azurite, debounce=0))


def vault(sandbox, name):
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    return kv.vaults.begin_create_or_update(RG, name, {"location": "westeurope", "properties": props}).result().id


def message(resource_id, **kw):
    base = {"caller": Caller(upn="alice@contoso.com"), "event_id": "e1"}
    return WorkItem("eventgrid", resource_id, "microsoft.keyvault/vaults", **(base | kw)).to_json()


def bot_writes(sandbox, since):
    oid = sandbox.principal("bot").object_id
    return [
        (c["method"], c["path"].lower())
        for c in sandbox.calls(since)
        if c["principal"] == oid and c["method"] != "GET" and (c["status"] or 500) < 400
    ]


def test_a_change_is_fixed_and_audited(sandbox, env):
    vid = vault(sandbox, "kv-worker-1")
    out = worker.handle(message(vid))
    assert (out.status, out.applied, out.pending) == ("done", 2, 1)  # lock + owner tag; purge protection waits
    records = env.ledger.audit_for(vid)
    assert Counter(r.result for r in records) == {"applied": 2, "pending-approval": 1}
    assert {r.caller.upn for r in records} == {"alice@contoso.com"}
    assert [p.policy for p in env.ledger.list_pending("approval")] == ["kv-purge-protection"]
    mark = len(sandbox.calls())
    assert worker.handle(message(vid)).applied == 0  # a second run writes nothing
    assert bot_writes(sandbox, mark) == []


def test_concurrent_workers_on_one_resource_apply_once(sandbox, env):
    vid = vault(sandbox, "kv-worker-2")
    mark = len(sandbox.calls())
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(worker.handle(message(vid)))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writes = bot_writes(sandbox, mark)
    assert len(writes) == 2 and max(Counter(writes).values()) == 1
    assert sum(o.applied for o in outcomes) == 2
    assert "busy" in {o.status for o in outcomes} or len({o.applied for o in outcomes}) > 1


def test_a_fight_is_escalated_not_fixed(sandbox, env):
    vid = vault(sandbox, "kv-worker-3")
    locks = sandbox.client(ManagementLockClient).management_locks
    for i in range(3):  # the bot fixes, an administrator removes the lock again, three times
        assert worker.handle(message(vid, event_id=f"e{i}")).applied >= 1
        locks.delete_by_scope(vid, "cryptward-cannot-delete")
    mark = len(sandbox.calls())
    out = worker.handle(message(vid, event_id="e4"))
    assert out.status == "escalated"
    assert bot_writes(sandbox, mark) == []
    last = env.ledger.audit_for(vid)[-1]
    assert last.result == "escalated" and "3 times" in last.after["escalation"]


def test_a_retry_of_the_same_message_is_not_counted_as_a_fight(sandbox, env):
    vid = vault(sandbox, "kv-worker-4")
    locks = sandbox.client(ManagementLockClient).management_locks
    for _ in range(3):
        worker.handle(message(vid), message_id="same-message")
        locks.delete_by_scope(vid, "cryptward-cannot-delete")
    assert worker.handle(message(vid), message_id="same-message").status == "done"


def test_failures_are_recorded_and_raised_for_the_queue_to_retry(sandbox, env):
    vid = vault(sandbox, "kv-worker-5")
    locks = sandbox.client(ManagementLockClient).management_locks
    locks.create_or_update_by_scope(vid, "frozen", {"level": "ReadOnly"})
    with pytest.raises(worker.WorkFailed, match="ScopeLocked"):
        worker.handle(message(vid), dequeue_count=1)
    assert env.ledger.audit_for(vid)[-1].result == "retrying"
    with pytest.raises(worker.WorkFailed):
        worker.handle(message(vid), dequeue_count=5)
    last = env.ledger.audit_for(vid)[-1]
    assert last.result == "poisoned" and last.after["attempt"] == 5 and "ScopeLocked" in last.after["error"]


def test_a_malformed_message_raises_for_the_poison_queue(env):
    with pytest.raises(EventRejected):
        worker.handle(b"not json")
    with pytest.raises(EventRejected):
        worker.handle(b'{"source": "elsewhere", "resourceId": "/x"}')


def test_a_sweep_pack_is_worked_item_by_item_and_a_failed_item_goes_back_alone(sandbox, env, monkeypatch):
    from remediations.store.workqueue import decode_all, pack_json

    good = [vault(sandbox, f"kv-pack-{i}") for i in range(3)]
    frozen = vault(sandbox, "kv-pack-frozen")
    sandbox.client(ManagementLockClient).management_locks.create_or_update_by_scope(
        frozen, "frozen", {"level": "ReadOnly"}
    )
    items = [WorkItem("sweep", rid, "microsoft.keyvault/vaults") for rid in (good[0], frozen, *good[1:])]
    assert env.settings.intake.retry_seconds == 10  # host.json's visibilityTimeout
    sender = env.queue._client(env.queue.name, encoded=True)
    sent = []  # what the worker queued, as the Storage service answered: id, pop receipt, when it becomes visible
    real_send = sender.send_message
    monkeypatch.setattr(sender, "send_message", lambda *a, **kw: sent.append(real_send(*a, **kw)) or sent[-1])
    outcomes = worker.handle_message(pack_json(items).encode(), 1, "pack-1")
    assert [(o.resource_id, o.applied) for o in outcomes] == [(rid, 2) for rid in good]  # the rest went on
    assert env.ledger.audit_for(frozen)[-1].result == "retrying"
    (again,) = sent
    # queued again to become visible after host.json's visibilityTimeout (the service's own record), not at once
    assert again.next_visible_on - again.inserted_on == timedelta(seconds=10)
    client = env.queue._client(env.queue.name)
    assert list(client.receive_messages()) == []
    client.update_message(again.id, again.pop_receipt, visibility_timeout=0)  # its time has come, without waiting
    (message,) = list(client.receive_messages())
    assert decode_all(message.content) == [items[1]]  # alone: its retries and its poisoning are its own


def test_a_pack_left_over_past_its_time_budget_is_queued_again_not_lost(sandbox, env, monkeypatch):
    from remediations.store.workqueue import decode_all, pack_json

    monkeypatch.setattr(worker, "PACK_BUDGET_SECONDS", 0.0)  # the budget is over after the first item
    ids = [vault(sandbox, f"kv-budget-{i}") for i in range(3)]
    items = [WorkItem("sweep", rid, "microsoft.keyvault/vaults") for rid in ids]
    outcomes = worker.handle_message(pack_json(items), 1, "pack-2")
    assert [o.resource_id for o in outcomes] == ids[:1]
    (rest,) = list(env.queue._client(env.queue.name).receive_messages())
    assert decode_all(rest.content) == items[1:]


def test_a_single_item_message_is_handled_as_before(sandbox, env):
    vid = vault(sandbox, "kv-single")
    (out,) = worker.handle_message(message(vid))
    assert (out.resource_id, out.applied) == (vid, 2)
    with pytest.raises(EventRejected, match=r"message.items\[0\]"):
        worker.handle_message(b'{"items": [{"source": "sweep"}]}')


def test_a_change_waiting_for_a_fresh_role_is_queued_again_not_failed_until_the_window_ends(
    sandbox, azurite, grant_custom_role, bot_runtime, monkeypatch
):
    import json

    from remediations import runtime
    from remediations.settings import Settings
    from tests import keyworld

    grant_custom_role("bot")
    world = keyworld.make(sandbox)
    des_map = json.dumps({keyworld.LOC: {keyworld.CMK: world.des_id}})
    modes = json.dumps({"disk-cmk": "remediate"})
    env = bot_env(sandbox, azurite, debounce=0, CRYPTWARD_DES_MAP=des_map, CRYPTWARD_POLICY_MODES=modes)
    rt = bot_runtime(env)
    assert rt.settings.plan.role_propagation_seconds == 600  # the default: Microsoft's "up to 10 minutes"
    sender = rt.queue._client(rt.queue.name, encoded=True)
    sent = []
    real_send = sender.send_message
    monkeypatch.setattr(sender, "send_message", lambda *a, **kw: sent.append(real_send(*a, **kw)) or sent[-1])

    granted = worker.handle(message(world.des_id, event_id="e-des"))
    assert granted.results and {s for s, _ in granted.results.values()} == {"applied"}
    out = worker.handle(message(world.disk_id, event_id="e-disk"), dequeue_count=1)  # no WorkFailed: it waits
    assert (out.status, out.failed, 0 < (out.waiting or 0) <= 600) == ("done", [], True)
    assert env_results(rt, world.disk_id) == ["waiting-for-role"]
    (again,) = sent  # a fresh message, visible a quarter of the window later (not the queue's retry)
    assert again.next_visible_on - again.inserted_on == timedelta(seconds=150)
    assert worker.role_retry_delay(10, 600) == 15 and worker.role_retry_delay(400, 600) == 150

    # Past the window (here: a bot whose window is shorter than the sandbox's delay) the refusal is a failure again.
    short = runtime.Runtime(Settings.from_env({**env, "CRYPTWARD_ROLE_PROPAGATION_SECONDS": "0.001"}))
    try:
        with pytest.raises(worker.WorkFailed, match="KeyVaultAccessForbidden"):
            worker.handle(message(world.disk_id, event_id="e-disk"), dequeue_count=1, rt=short)
    finally:
        short.close()
    assert env_results(rt, world.disk_id)[-2:] == ["failed", "retrying"]


def env_results(rt, resource_id):
    return [r.result for r in rt.ledger.audit_for(resource_id)]
