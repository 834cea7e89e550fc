"""One notice per owner per sweep: a sweep's notices held, then grouped per owner across subscriptions into one
digest each (one Teams card, one webhook body, the notices' Event Grid events), in memory and in Table Storage."""

from __future__ import annotations

import json
from datetime import timedelta

from remediations.notices import cards, digest
from remediations.notices.compose import Routes
from remediations.notices.delivery import cloudevents
from remediations.notices.outbox import QUIET, Failed, MemoryNoticeStore, flush_held
from tests import notice_samples as s
from tests.notices.test_outbox import FakeSender

SUBS = [f"00000000-0000-0000-0000-0000000000{i:02}" for i in range(1, 41)]
RUN = "sweep-20260301T023000Z-0a1b2c3d"
ROUTES = Routes.parse('{"alice@contoso.com": ["teams:alice"], "bob@contoso.com": ["teams:bob"], "*": ["teams:ops"]}')


def _in(sub: str, owners: tuple[str, ...], name: str = "kv-payments-weu"):
    base = s.applied()
    rid = base.resource_id.replace(s.SUB, sub).replace("kv-payments-weu", name)
    return s.notice(rid, *base.lines, owners=owners)


def estate():
    """alice owns a vault in each of 40 subscriptions (one shared with bob); one vault has no owner."""
    notices = [_in(sub, ("alice@contoso.com",)) for sub in SUBS[1:]]
    notices.append(_in(SUBS[0], ("alice@contoso.com", "Bob@contoso.com"), "kv-shared"))
    notices.append(_in(SUBS[5], (), "kv-nobody"))
    return notices


def test_one_digest_per_owner_across_subscriptions():
    digests = {d.owner: d for d in digest.group(estate(), RUN, s.NOW)}
    assert set(digests) == {"alice@contoso.com", "Bob@contoso.com", ""}
    alice = digests["alice@contoso.com"]
    assert len(alice.notices) == 40 and alice.subscriptions() == tuple(sorted(SUBS))
    assert [n.name for n in digests["Bob@contoso.com"].notices] == ["kv-shared"]
    assert digests[""].owners == () and alice.owners == ("alice@contoso.com",)
    assert alice.counts() == {"applied": 80}  # two lines in each of the 40 notices
    again = digest.from_dict(json.loads(json.dumps(alice.to_dict())))
    assert isinstance(again, digest.Digest) and again.id == alice.id and again.notices == alice.notices
    assert digest.from_dict(alice.notices[0].to_dict()) == alice.notices[0]  # a plain notice stays one


def test_the_digest_card_fits_a_teams_message_and_names_every_subscription_it_shows():
    (alice,) = [d for d in digest.group(estate(), RUN, s.NOW) if d.owner == "alice@contoso.com"]
    body = digest.fit(alice)
    assert len(body) <= cards.MAX_BYTES
    text = json.dumps(json.loads(body), ensure_ascii=False)
    assert "40 resources in 40 subscriptions" in text
    small = digest.fit(alice, max_bytes=6000)
    assert len(small) <= 6000 and "more resources" in small.decode()
    events = cloudevents(alice)
    assert len(events) == 80 and len({e["id"] for e in events}) == 80


def test_a_sweeps_notices_are_held_until_it_is_quiet_then_each_owner_hears_once():
    store, sender = MemoryNoticeStore(), FakeSender()
    for notice in estate():
        store.hold(RUN, notice, s.NOW)
    store.hold(RUN, estate()[0], s.NOW)  # the same notice twice (a retried work item) is held once
    assert flush_held(store, ROUTES, sender, s.NOW + QUIET - timedelta(seconds=1)) == []  # the sweep may go on
    deliveries = flush_held(store, ROUTES, sender, s.NOW + QUIET)
    assert sorted(d.destination for d in deliveries) == ["teams:alice", "teams:bob", "teams:ops"]
    assert store.held() == [] and flush_held(store, ROUTES, sender, s.NOW + 2 * QUIET) == []


def test_the_table_store_holds_a_sweeps_notices_and_keeps_a_failed_digest(table_store):
    for notice in estate()[-3:]:  # alice's, alice's and bob's, nobody's
        table_store.hold(RUN, notice, s.NOW)
    held = table_store.held()
    assert {(run, n.id) for run, _, n in held} == {(RUN, n.id) for n in estate()[-3:]}
    assert all(at == s.NOW for _, at, _ in held)
    deliveries = flush_held(table_store, ROUTES, FakeSender(False), s.NOW + QUIET)
    outcomes = [(d.destination, d.ok) for d in deliveries]
    assert outcomes == [("teams:alice", False), ("teams:bob", True), ("teams:ops", True)]
    assert table_store.held() == []
    (failed,) = table_store.due(s.NOW + QUIET + timedelta(hours=1))
    assert isinstance(failed, Failed) and isinstance(failed.notice, digest.Digest)
    assert len(failed.notice.notices) == 2 and failed.destination == "teams:alice"
