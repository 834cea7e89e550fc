"""The outbox: notices sent to their owners' routes, failures kept and retried later; in memory and in Table Storage
(Azurite)."""

import uuid
from datetime import timedelta

from remediations.notices.compose import Routes
from remediations.notices.delivery import Delivery
from remediations.notices.outbox import Failed, MemoryNoticeStore, notify, retry_due
from remediations.store.outbox import TableNoticeStore
from tests import notice_samples as s


class FakeSender:
    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.sent = []

    def send(self, notice, ref):
        self.sent.append((notice.id, ref))
        ok = self.outcomes.pop(0) if self.outcomes else True
        if ok == "raise":
            raise RuntimeError("boom")
        return Delivery(notice.id, ref, ok, 202 if ok else 500, "" if ok else "500 Internal Server Error")


ROUTES = Routes.parse('{"alice@contoso.com": ["teams:ops", "webhook:siem"], "*": ["teams:default"]}')


def test_notify_sends_to_each_route_and_keeps_failures_for_later():
    store, sender = MemoryNoticeStore(), FakeSender(True, False, "raise")
    a, b = s.applied(), s.failed()  # alice's, and one without owner
    deliveries = notify([a, b], ROUTES, sender, store, now=s.NOW)
    outcomes = [(d.destination, d.ok) for d in deliveries]
    assert outcomes == [("teams:ops", True), ("webhook:siem", False), ("teams:default", False)]
    assert "RuntimeError" in deliveries[2].detail  # a sender that raises does not stop the loop
    kept = {f.id: f for f in store.items.values()}
    assert set(kept) == {f"{a.id}:webhook:siem", f"{b.id}:teams:default"}
    assert all(f.attempts == 1 and f.next_at == s.NOW + timedelta(minutes=5) for f in kept.values())
    assert store.due(s.NOW) == []


def test_retry_due_backs_off_forgets_delivered_and_gives_up():
    store, notice = MemoryNoticeStore(), s.applied()
    notify([notice], Routes.parse('{"*": ["webhook:siem"]}'), FakeSender(False), store, now=s.NOW)
    later = s.NOW + timedelta(minutes=5)
    assert retry_due(store, FakeSender(False), later)[0].ok is False
    [failed] = store.items.values()
    assert failed.attempts == 2 and failed.next_at == later + timedelta(minutes=10)
    assert retry_due(store, FakeSender(True), later) == []  # not due yet
    delivered = retry_due(store, FakeSender(True), later + timedelta(minutes=10))
    assert [d.ok for d in delivered] == [True] and store.items == {}
    notify([notice], Routes.parse('{"*": ["webhook:siem"]}'), FakeSender(False), store, now=s.NOW)
    when = s.NOW
    for _ in range(20):
        when += timedelta(hours=7)
        retry_due(store, FakeSender(False), when)
    assert store.items == {} and [f.destination for f in store.given_up] == ["webhook:siem"]


def test_a_broken_store_never_stops_the_run(caplog):
    class Broken(MemoryNoticeStore):
        def save_failed(self, failed):
            raise OSError("table unreachable")

    deliveries = notify([s.applied()], ROUTES, FakeSender(False, False), Broken(), now=s.NOW)
    assert [d.ok for d in deliveries] == [False, False]
    assert "could not be saved" in caplog.text


def test_table_store_keeps_due_and_forgets(table_store):
    big = s.many(500)  # ~450 KB of JSON: more than one table property holds
    kept = [
        Failed(s.applied(), "teams:ops", "500 Internal Server Error", 1, s.NOW + timedelta(minutes=5)),
        Failed(big, "webhook:siem", "x" * 10_000, 3, s.NOW + timedelta(minutes=1)),
        Failed(s.failed(), "teams:ops", "later", 1, s.NOW + timedelta(hours=1)),
    ]
    for failed in kept:
        table_store.save_failed(failed)
    due = table_store.due(s.NOW + timedelta(minutes=5))
    assert [f.id for f in due] == [kept[1].id, kept[0].id]  # oldest first, not the later one
    assert due[0].notice == big and due[0].attempts == 3 and due[0].next_at == kept[1].next_at
    assert due[1].notice == kept[0].notice and due[1].error == "500 Internal Server Error"
    table_store.save_failed(Failed(s.applied(), "teams:ops", "again", 2, s.NOW + timedelta(hours=2)))  # replaces
    table_store.done(kept[1].id)
    assert table_store.due(s.NOW + timedelta(minutes=5)) == []
    assert [f.error for f in table_store.due(s.NOW + timedelta(days=1))] == ["later", "again"]


def test_table_store_drives_the_outbox(table_store):
    routes = Routes.parse('{"*": ["webhook:siem"]}')
    notify([s.pending()], routes, FakeSender(False), table_store, now=s.NOW)
    [delivered] = retry_due(table_store, FakeSender(True), s.NOW + timedelta(minutes=5))
    assert delivered.ok and delivered.notice_id == s.pending().id
    assert table_store.due(s.NOW + timedelta(days=1)) == []


def test_table_store_from_env(azurite):
    env = {"AzureWebJobsStorage": azurite, "CRYPTWARD_TABLE_PREFIX": f"t{uuid.uuid4().hex[:8]}"}
    store = TableNoticeStore.from_env(env)
    assert store.table_name == f"{env['CRYPTWARD_TABLE_PREFIX']}notices"
    assert store.due(s.NOW) == []
    store.close()
