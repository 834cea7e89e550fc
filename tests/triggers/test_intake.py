"""Between the triggers and the worker: settings, loop prevention, dedupe, scope, alerts, the streamed sweep."""

from __future__ import annotations

import uuid

import pytest

from remediations.changes import Caller
from remediations.errors import SettingsError
from remediations.store.workqueue import WorkQueue
from remediations.triggers import intake
from remediations.work import WorkItem

SUB = "11111111-2222-3333-4444-555555555555"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-1"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1"
BOT = "b0b0b0b0-0000-4000-8000-000000000001"


def test_settings_defaults_and_bot_identity_falls_back_to_azure_client_id():
    s = intake.IntakeSettings.from_env({"AZURE_CLIENT_ID": BOT.upper(), "AZURE_SUBSCRIPTION_ID": SUB})
    assert (s.debounce_seconds, s.fight_threshold, s.fight_window_seconds) == (30.0, 3, 3600.0)
    assert s.bot_ids == {BOT} and s.max_dequeue_count == 5
    assert s.scope_of(VAULT) is not None and s.scope_of("/subscriptions/other/x") is None
    explicit = intake.IntakeSettings.from_env({"AZURE_CLIENT_ID": BOT, "CRYPTWARD_BOT_OBJECT_ID": "oid-1"})
    assert explicit.bot_ids == {"oid-1"}


def test_settings_scopes_and_refusals():
    s = intake.IntakeSettings.from_env({"CRYPTWARD_SCOPES": f"/subscriptions/{SUB}/resourceGroups/rg, other-sub"})
    assert [(x.subscriptions, x.resource_group) for x in s.scopes] == [((SUB,), "rg"), (("other-sub",), None)]
    with pytest.raises(SettingsError, match="CRYPTWARD_DEBOUNCE_SECONDS"):
        intake.IntakeSettings.from_env({"CRYPTWARD_DEBOUNCE_SECONDS": "soon"})
    with pytest.raises(SettingsError, match="CRYPTWARD_FIGHT_THRESHOLD"):
        intake.IntakeSettings.from_env({"CRYPTWARD_FIGHT_THRESHOLD": "0"})
    with pytest.raises(SettingsError, match="CRYPTWARD_SCOPES"):
        intake.IntakeSettings.from_env({"CRYPTWARD_SCOPES": "/providers/x"})


@pytest.fixture
def intake_env(azurite):
    tag = uuid.uuid4().hex[:8]
    return {
        "AzureWebJobsStorage": azurite,
        "CRYPTWARD_TABLE_PREFIX": f"t{tag}",
        "CRYPTWARD_WORK_QUEUE": f"cw-{tag}",
        "CRYPTWARD_DEBOUNCE_SECONDS": "30",
        "CRYPTWARD_SCOPES": SUB,
        "AZURE_CLIENT_ID": BOT,
    }


@pytest.fixture
def rt(intake_env, bot_runtime):
    return bot_runtime(intake_env)


def queued(rt) -> list[WorkItem]:
    env = rt.settings.storage.values
    q = WorkQueue(env["AzureWebJobsStorage"], env["CRYPTWARD_WORK_QUEUE"])
    try:
        client = q._client(q.name)
        from remediations.store.workqueue import decode_all

        return [w for m in client.peek_messages(max_messages=32) for w in decode_all(m.content)]
    finally:
        q.close()


def item(**kw) -> WorkItem:
    base = {"source": "eventgrid", "resource_id": VAULT, "resource_type": "microsoft.keyvault/vaults"}
    return WorkItem(**(base | kw))


def test_the_bots_own_change_causes_no_work_but_its_deallocation_does(rt):
    assert intake.accept(item(caller=Caller(appid=BOT)), rt) == intake.OWN
    vm = item(resource_id=VM_ID, resource_type="microsoft.compute/virtualmachines", deallocated=True)
    assert intake.accept(vm.__class__(**{**vars(vm), "caller": Caller(oid=BOT)}), rt) == intake.QUEUED
    assert intake.accept(item(reason="not watched"), rt) == intake.IGNORED
    assert intake.accept(item(resource_id=VAULT.replace(SUB, "elsewhere")), rt) == intake.OUT_OF_SCOPE


def test_duplicates_inside_the_window_are_dropped_and_the_first_waits_out_the_window(rt):
    outcomes = [intake.accept(item(event_id=str(i), caller=Caller(upn="a@contoso.com")), rt) for i in range(5)]
    assert outcomes == [intake.QUEUED] + [intake.DUPLICATE] * 4
    assert queued(rt) == []  # invisible for the debounce window: the worker reads the settled resource
    rt.recent.clear()  # another instance: only the ledger knows
    assert intake.accept(item(event_id="x"), rt) == intake.DUPLICATE


def test_with_no_window_every_change_is_queued_at_once(intake_env, bot_runtime):
    rt = bot_runtime({**intake_env, "CRYPTWARD_DEBOUNCE_SECONDS": "0"})
    assert [intake.accept(item(event_id=str(i)), rt) for i in range(2)] == [intake.QUEUED] * 2
    assert [w.event_id for w in queued(rt)] == ["0", "1"]


def test_alerts_answer_400_with_the_reason_or_202_with_counts(rt):
    status, reply = intake.on_alert(b'{"schemaId": "Microsoft.Insights/activityLogs"}')
    assert status == 400 and reply["field"] == "schemaId"
    assert intake.on_alert(b"[1, 2")[0] == 400
    body = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitoringService": "Activity Log - Administrative", "alertTargetIDs": [VAULT.lower()]},
            "alertContext": {"caller": "alice@contoso.com", "operationName": "Microsoft.KeyVault/vaults/write"},
        },
    }
    import json

    status, reply = intake.on_alert(json.dumps(body))
    assert status == 202 and reply["outcomes"] == {"queued": 1}
    assert queued(rt) == [] and len(rt.recent) == 1


def test_malformed_events_are_acknowledged_not_raised(rt):
    assert intake.on_event({"eventType": 3}) == intake.REJECTED
    assert intake.on_event([]) == intake.REJECTED


class FakeAzure:
    """Pages of a fake ARM list; counts how many items were ever alive at once (none are kept)."""

    def __init__(self, per_type: int):
        self.per_type = per_type
        self.paths: list[str] = []

    def list(self, path, api_version):
        self.paths.append(path)
        for i in range(self.per_type):
            yield {"id": f"{path}/r{i}", "type": path.split("/providers/")[1]}


def test_sweep_streams_one_item_per_resource(intake_env, bot_runtime):
    rt = bot_runtime({**intake_env, "CRYPTWARD_DEBOUNCE_SECONDS": "0"})
    fake = FakeAzure(3)
    assert intake.sweep(fake, rt) == 3 * len(intake.SWEEP_TYPES) == 21
    assert [p.rsplit("/providers/", 1)[1] for p in fake.paths] == list(intake.SWEEP_TYPES)
    got = queued(rt)
    assert len(got) == 21 and {w.source for w in got} == {"sweep"}
    assert sorted(w.resource_id for w in got) == sorted(f"{p}/r{i}" for p in fake.paths for i in range(3))
    assert intake.rotation_sweep(FakeAzure(2), rt) == 2


def test_the_sweep_packs_items_and_every_resource_is_in_exactly_one_message(intake_env, bot_runtime):
    from remediations.store.workqueue import PACK_ITEMS, decode_all

    rt = bot_runtime({**intake_env, "CRYPTWARD_DEBOUNCE_SECONDS": "0"})
    per_type = PACK_ITEMS * 2 + 5  # the last pack of each type's stream is not full
    types = len(intake.SWEEP_TYPES)
    assert intake.sweep(FakeAzure(per_type), rt) == types * per_type
    client = rt.queue._client(rt.queue.name)
    sizes, ids = [], []
    for message in client.receive_messages(max_messages=32):
        items = decode_all(message.content)
        sizes.append(len(items))
        ids += [w.resource_id for w in items]
    assert len(ids) == len(set(ids)) == types * per_type  # none lost, none twice
    assert max(sizes) == PACK_ITEMS and len(sizes) == -(-types * per_type // PACK_ITEMS)


def test_a_pack_too_big_for_one_message_is_split_not_cut(rt):
    from remediations.store.workqueue import MAX_MESSAGE_BYTES

    long_id = VAULT + "/" + "x" * 3000
    items = [item(resource_id=f"{long_id}{i}", source="sweep") for i in range(32)]
    assert len(items[0].to_json()) * 32 * 4 / 3 > MAX_MESSAGE_BYTES  # too big as one pack
    assert intake.stream_enqueue(rt, items) == 32
    got = queued(rt)
    assert sorted(w.resource_id for w in got) == sorted(w.resource_id for w in items)
