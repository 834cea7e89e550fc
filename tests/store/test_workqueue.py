"""workqueue.py against a real Queue service (Azurite): round trips in the Functions host's base64 encoding, the
poison queue, delays and the 64 KB limit."""

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy

from remediations.changes import Caller
from remediations.errors import EventRejected, QueueRefused, SettingsError
from remediations.store.workqueue import (
    MAX_MESSAGE_BYTES,
    WorkQueue,
    decode,
    decode_all,
    encode,
    pack_json,
    poison_name,
    unpack,
)
from remediations.triggers.events import work_item
from remediations.work import WorkItem

VAULT = (
    "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-Sec/providers/Microsoft.KeyVault/vaults/kv-1"
)
ITEM = WorkItem(
    "eventgrid", VAULT, "microsoft.keyvault/vaults", "Microsoft.KeyVault/vaults/write", caller=Caller(upn="u@x")
)


@pytest.fixture
def queue(azurite: str) -> Iterator[WorkQueue]:
    q = WorkQueue(azurite, f"work-{uuid.uuid4().hex[:12]}")
    q.create()
    yield q
    q.close()


def test_work_items_round_trip_and_complete(queue):
    items = [ITEM, work_item(VAULT + "/keys/cmk", "rotation")]
    for item in items:
        queue.enqueue(item)
    got = queue.receive(visibility_timeout=30)
    # Storage queues do not promise order.
    by_id = lambda i: i.resource_id  # noqa: E731
    assert sorted((i for g in got for i in g.items), key=by_id) == sorted(items, key=by_id)
    assert all(g.dequeue_count == 1 for g in got)
    for g in got:
        queue.complete(g)
    assert queue.receive() == []


def test_messages_are_base64_json_as_the_functions_queue_trigger_expects(azurite, queue):
    queue.enqueue(ITEM)
    with QueueClient.from_connection_string(
        azurite, queue.name, message_decode_policy=TextBase64DecodePolicy()
    ) as host:  # what the Functions host does with the default messageEncoding (base64)
        (message,) = host.peek_messages()
    assert message.content == ITEM.to_json()
    assert decode(encode(ITEM)) == ITEM


def test_a_delayed_item_is_invisible_until_its_time(queue):
    queue.enqueue(ITEM, delay_seconds=30)
    assert queue.receive() == []


def test_the_poison_queue_follows_the_functions_convention(azurite, queue):
    assert queue.poison_name == poison_name(queue.name) == f"{queue.name}-poison"
    with QueueServiceClient.from_connection_string(azurite) as service:
        names = {q.name for q in service.list_queues(name_starts_with=queue.name)}
    assert names == {queue.name, f"{queue.name}-poison"}
    queue.create()  # idempotent


def test_a_message_that_is_not_a_work_item_goes_to_the_poison_queue(azurite, queue):
    with QueueClient.from_connection_string(azurite, queue.name) as raw:
        raw.send_message("not base64!")
        raw.send_message("eyJub3QiOiJhbiBpdGVtIn0=")  # base64 of {"not":"an item"}
    queue.enqueue(ITEM)
    assert [g.items for g in queue.receive()] == [(ITEM,)]
    assert sorted(queue.poisoned()) == ["eyJub3QiOiJhbiBpdGVtIn0=", "not base64!"]
    assert queue.receive() == []


def test_items_over_64_kb_are_refused_and_not_queued(queue):
    big = WorkItem("sweep", VAULT + "/" + "x" * 50_000)
    with pytest.raises(QueueRefused, match=f"the limit is {MAX_MESSAGE_BYTES}"):
        queue.enqueue(big)
    fits = WorkItem("sweep", VAULT + "/" + "x" * 40_000)
    queue.enqueue(fits)
    assert [g.items for g in queue.receive()] == [(fits,)]


def test_queue_names_and_settings_are_checked(azurite):
    for bad in ("Work", "w", "a--b", "-ab", "x" * 57):
        with pytest.raises(SettingsError, match="CRYPTWARD_WORK_QUEUE"):
            WorkQueue(azurite, bad)
    name = f"env-{uuid.uuid4().hex[:8]}"
    q = WorkQueue.from_env({"AzureWebJobsStorage": azurite, "CRYPTWARD_WORK_QUEUE": name})
    assert q.name == name and "AccountKey" not in repr(q)
    q.close()
    assert WorkQueue("UseDevelopmentStorage=true").name == "cryptward-work"


def test_a_pack_holds_several_items_in_one_message_and_round_trips(azurite, queue):
    items = [WorkItem("sweep", f"{VAULT}{i}", "microsoft.keyvault/vaults") for i in range(32)]
    queue.enqueue_pack(items)
    (got,) = queue.receive()
    assert got.items == tuple(items)
    assert unpack(pack_json(items)) == (items, True) and unpack(ITEM.to_json()) == ([ITEM], False)
    queue.enqueue_pack(items[:1])  # a pack of one is sent as the item itself: any reader of single items reads it
    with QueueClient.from_connection_string(
        azurite, queue.name, message_decode_policy=TextBase64DecodePolicy()
    ) as host:
        (message,) = host.peek_messages()
    assert message.content == items[0].to_json()
    assert decode_all(encode(items[0])) == [items[0]]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ('{"items": []}', "message.items", "non-empty list"),
        ('{"items": {"source": "sweep"}}', "message.items", "non-empty list"),
        ('{"items": [{"source": "sweep", "resourceId": "/a"}, 3]}', "message.items[1]", "JSON object"),
        ('{"items": [{"source": "sweep", "resourceId": "/a"}, {"source": "x"}]}', "message.items[1].source", "one of"),
        ('{"items": [{"source": "sweep"}]}', "message.items[0].resourceId", "missing"),
    ],
)
def test_a_bad_pack_is_refused_whole_naming_the_item(body, field, reason):
    with pytest.raises(EventRejected) as e:
        unpack(body)
    assert e.value.field == field and reason in e.value.reason


def test_a_pack_over_64_kb_is_refused_and_not_queued(queue):
    items = [WorkItem("sweep", VAULT + "/" + "x" * 3000 + str(i)) for i in range(32)]
    with pytest.raises(QueueRefused, match="send fewer per message"):
        queue.enqueue_pack(items)
    with pytest.raises(ValueError, match="at least one"):
        queue.enqueue_pack([])
    assert queue.receive() == []
