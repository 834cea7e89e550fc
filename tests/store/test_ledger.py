"""ledger.py against a real Table service (Azurite): dedupe windows, concurrent claims, audit records and their size
limits, pending changes, fight counters, and keys for ids with characters Table Storage forbids."""

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediations.changes import Caller
from remediations.engine.applier import Status
from remediations.errors import SettingsError
from remediations.store.ledger import Ledger, Tables, key_of
from remediations.store.tables import MAX_PROPERTY_UNITS

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
VAULT = (
    "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-Sec/providers/Microsoft.KeyVault/vaults/kv-1"
)
ODD_IDS = [
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/a#b?c\\d",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d\x00\x1f\x7f\x9f",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/ünïcødé-😀",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/lone-\ud800-surrogate",
    "",
]


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def tables(azurite: str) -> Tables:
    """Fresh tables for each test (a unique prefix), created once."""
    tables = Tables.with_prefix(f"t{uuid.uuid4().hex[:10]}")
    Ledger(azurite, tables).create_tables()
    return tables


@pytest.fixture
def make_ledger(azurite: str, tables: Tables) -> Iterator[Callable[..., Ledger]]:
    made: list[Ledger] = []

    def make(clock: Callable[[], datetime] | None = None) -> Ledger:
        ledger = Ledger(azurite, tables, clock or Clock())
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(make_ledger: Callable[..., Ledger], clock: Clock) -> Ledger:
    return make_ledger(clock)


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


# -- dedupe ---------------------------------------------------------------------------------------------------------


def test_claims_within_the_window_make_one_work_item(ledger, clock):
    assert ledger.claim(VAULT.lower(), window_seconds=60)
    clock.advance(30)
    assert not ledger.claim(VAULT, window_seconds=60)  # any case of the id is the same resource
    assert ledger.claim(VAULT + "-other", window_seconds=60)
    clock.advance(31)
    assert ledger.claim(VAULT, window_seconds=60)
    assert not ledger.claim(VAULT, window_seconds=60, now=T0 + timedelta(seconds=90))
    assert ledger.claim(VAULT, window_seconds=10, now=T0 + timedelta(seconds=72))


def test_twenty_workers_claiming_at_once_let_exactly_one_win(make_ledger):
    ledgers = [make_ledger() for _ in range(20)]
    first = _race(20, lambda i: ledgers[i].claim(VAULT, window_seconds=60))
    assert first.count(True) == 1
    # The claim exists and has expired: now every worker replaces it at once, and the ETag lets only one through.
    later = T0 + timedelta(minutes=5)
    renewed = _race(20, lambda i: ledgers[i].claim(VAULT, window_seconds=60, now=later))
    assert renewed.count(True) == 1


# -- audit ----------------------------------------------------------------------------------------------------------


def test_an_audit_record_round_trips(ledger, clock):
    caller = Caller(upn="dana@contoso.com", appid="a-1", oid="o-1")
    before = {"properties": {"enablePurgeProtection": None, "note": "ünïcødé 😀"}}
    after = {"properties": {"enablePurgeProtection": True}}
    record = ledger.record_change(
        VAULT, policy="kv-purge-protection", before=before, after=after, caller=caller,
        correlation_id="corr-1", result="applied", change_id="c-1",
    )  # fmt: skip
    (stored,) = ledger.audit_for(VAULT.upper())
    assert stored == record
    assert (stored.resource_id, stored.before, stored.after, stored.caller) == (VAULT, before, after, caller)
    assert (stored.policy, stored.result, stored.correlation_id, stored.change_id) == (
        "kv-purge-protection", "applied", "corr-1", "c-1",
    )  # fmt: skip
    assert stored.time == T0 and stored.truncated == ()


def test_a_status_member_is_stored_as_its_plain_string(ledger, tables, azurite):
    # azure-data-tables writes any Enum as str(value): a StrEnum's is its value; a (str, Enum) would give "Status.X".
    from azure.data.tables import TableClient

    for status in Status:
        ledger.record_change(VAULT, policy="p", before=None, after=None, caller=None, correlation_id=None,
                             result=status, change_id=f"c-{status.name}")  # fmt: skip
    with TableClient.from_connection_string(azurite, tables.audit) as table:
        stored = {e["ChangeId"]: e["Result"] for e in table.list_entities()}
    assert stored == {f"c-{s.name}": s.value for s in Status}
    assert {type(v) for v in stored.values()} == {str}
    assert stored["c-ALREADY"] == "already-compliant"


def test_audit_records_come_back_in_time_order_per_resource(ledger):
    common: dict[str, Any] = {"policy": "p", "before": {}, "after": {}, "correlation_id": None, "result": "applied"}
    ledger.record_change(VAULT, caller=None, now=T0 + timedelta(seconds=2), change_id="late", **common)
    ledger.record_change(VAULT, caller=Caller(upn="u@x"), now=T0 + timedelta(seconds=1), change_id="early", **common)
    ledger.record_change(VAULT + "2", caller=None, change_id="other", **common)
    records = ledger.audit_for(VAULT)
    assert [r.change_id for r in records] == ["early", "late"]
    assert records[0].caller == Caller(upn="u@x") and records[1].caller == Caller()


def test_a_big_before_and_after_are_truncated_with_a_marker(ledger):
    big = {"blob": "x" * 200_000, "emoji": "😀" * 40_000}
    record = ledger.record_change(
        VAULT, policy="p", before=big, after=big, caller=None, correlation_id="c", result="applied"
    )
    (stored,) = ledger.audit_for(VAULT)
    assert stored == record
    assert set(stored.truncated) == {"Before", "After"}
    assert isinstance(stored.before, str) and stored.before.startswith('{"blob": "xxx')
    assert stored.before.endswith("over the 64 KB property limit]") and len(stored.before) <= MAX_PROPERTY_UNITS
    emoji = ledger.record_change(
        VAULT,
        policy="😀" * 40_000,
        before=1,
        after=2,
        caller=None,
        correlation_id=None,
        result="applied",
        now=T0 + timedelta(seconds=1),
    )  # 80,000 UTF-16 units, stored as they are (not JSON-escaped)
    assert emoji.truncated == ("Policy",) and emoji.policy.startswith("😀😀")
    assert len(emoji.policy.encode("utf-16-le")) // 2 <= MAX_PROPERTY_UNITS
    assert ledger.audit_for(VAULT)[-1] == emoji


# -- pending --------------------------------------------------------------------------------------------------------


def test_pending_changes_are_added_once_listed_and_resolved(ledger, clock):
    added = ledger.add_pending("approval", VAULT, "kv-purge-protection", {"summary": "enable purge protection"})
    again = ledger.add_pending("approval", VAULT, "kv-purge-protection", {"summary": "changed"})
    assert again == added and added.status == "open" and added.detail == {"summary": "enable purge protection"}
    clock.advance(1)
    other = ledger.add_pending("deallocated", VAULT, "disk-cmk")
    assert ledger.list_pending() == [added, other]
    assert ledger.list_pending("deallocated") == [other]
    elsewhere = ledger.add_pending("approval", VAULT + "-2", "kv-purge-protection")
    assert ledger.list_pending(resource_id=VAULT.upper()) == [added, other]  # one resource's, any case of its id
    assert ledger.list_pending("approval", resource_id=VAULT + "-2") == [elsewhere]
    ledger.resolve_pending("approval", elsewhere.pending_id, "done")

    clock.advance(60)
    resolved = ledger.resolve_pending("approval", added.pending_id, "approved by dana@contoso.com")
    assert resolved is not None and resolved.status == "resolved" and resolved.resolved_at == clock.now
    assert ledger.resolve_pending("approval", added.pending_id, "rejected") == resolved  # the first answer stands
    assert ledger.list_pending("approval") == []
    assert ledger.list_pending("approval", open_only=False, resource_id=VAULT) == [resolved]
    assert ledger.resolve_pending("approval", "no-such-id", "approved") is None
    assert ledger.resolve_pending("approval", "bad/id", "approved") is None

    reopened = ledger.add_pending("approval", VAULT, "kv-purge-protection", "again")
    assert reopened.status == "open" and reopened.pending_id == added.pending_id and reopened.detail == "again"
    with pytest.raises(ValueError, match="valid: approval, deallocated"):
        ledger.add_pending("someday", VAULT, "p")


# -- fights ---------------------------------------------------------------------------------------------------------


def test_fix_counts_mark_a_fight_within_the_window(ledger, clock):
    assert [ledger.note_fix(VAULT, window_seconds=3600) for _ in range(2)] == [1, 2]
    assert not ledger.is_fighting(VAULT, threshold=3, window_seconds=3600)
    clock.advance(600)
    assert ledger.note_fix(VAULT.upper(), window_seconds=3600) == 3
    assert ledger.is_fighting(VAULT, threshold=3, window_seconds=3600)
    assert not ledger.is_fighting(VAULT + "-other", threshold=1, window_seconds=3600)
    clock.advance(3300)  # the first two fell out of the hour
    assert not ledger.is_fighting(VAULT, threshold=2, window_seconds=3600)
    assert ledger.note_fix(VAULT, window_seconds=3600) == 2


def test_concurrent_fix_counts_lose_no_increment(make_ledger):
    ledgers = [make_ledger() for _ in range(10)]
    counts = _race(10, lambda i: ledgers[i].note_fix(VAULT, window_seconds=3600))
    assert sorted(counts) == list(range(1, 11))


# -- keys, tables, settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource_id", ODD_IDS)
def test_ids_with_characters_keys_forbid_work_everywhere(ledger, resource_id):
    assert len(key_of(resource_id)) == 64 and key_of(resource_id) == key_of(resource_id.upper())
    assert ledger.claim(resource_id, window_seconds=60)
    assert not ledger.claim(resource_id, window_seconds=60)
    ledger.record_change(
        resource_id, policy="p#1/x", before=None, after=[1], caller=None, correlation_id="c?", result="applied",
        change_id="id/with#odd?chars",
    )  # fmt: skip
    (record,) = ledger.audit_for(resource_id)
    assert record.change_id == "id/with#odd?chars" and record.after == [1]
    assert ledger.note_fix(resource_id) == 1
    assert ledger.add_pending("approval", resource_id, "p/1").status == "open"


def test_creating_tables_is_idempotent(azurite, tables):
    Ledger(azurite, tables).create_tables()
    Ledger(azurite, tables).create_tables()


def test_from_env_reads_the_storage_setting_and_the_prefix(azurite):
    prefix = f"e{uuid.uuid4().hex[:8]}"
    ledger = Ledger.from_env({"AzureWebJobsStorage": azurite, "CRYPTWARD_TABLE_PREFIX": prefix})
    with ledger:
        assert ledger.tables.audit == f"{prefix}audit"
        assert "AccountKey" not in repr(ledger)
        assert ledger.claim(VAULT, 60)
    with pytest.raises(SettingsError, match="AzureWebJobsStorage is not set"):
        Ledger.from_env({})
    with pytest.raises(SettingsError, match="CRYPTWARD_TABLE_PREFIX"):
        Ledger.from_env({"AzureWebJobsStorage": azurite, "CRYPTWARD_TABLE_PREFIX": "9-bad"})
    assert Ledger("UseDevelopmentStorage=true").tables == Tables()


# --- decisions on pending changes (approve / deny links) -------------------------------------------------------------

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-1"


def test_a_pending_change_is_found_by_its_change_id_and_decided_once(ledger: Ledger) -> None:
    ledger.add_pending("approval", VAULT, "kv-purge-protection", {"changeId": "c1", "summary": "purge"})
    found = ledger.find_pending("c1")
    assert found is not None and found.policy == "kv-purge-protection" and found.decision is None
    assert ledger.find_pending("nope") is None
    first = ledger.decide_pending(
        "approval", found.pending_id, decision="approved", status="pending-deallocation", detail="VM runs"
    )
    assert first is not None and first.decision == "approved" and first.status == "open"
    second = ledger.decide_pending("approval", found.pending_id, decision="denied", status="denied", detail="late")
    assert second is not None and second.decision == "approved"  # the first decision stays
    assert ledger.decided_for(VAULT.upper(), "approved") == ["c1"]  # still open: the next run applies it
    ledger.resolve_pending("approval", found.pending_id, "applied")
    assert ledger.decided_for(VAULT, "approved") == []


def test_concurrent_decisions_keep_exactly_one(make_ledger: Callable[..., Ledger]) -> None:
    ledgers = [make_ledger() for _ in range(6)]
    pending = ledgers[0].add_pending("approval", VAULT, "kv-purge-protection", {"changeId": "c2"})
    barrier = threading.Barrier(len(ledgers))
    got: list[str | None] = [None] * len(ledgers)

    def decide(i: int) -> None:
        barrier.wait()
        decision = "approved" if i % 2 else "denied"
        status = "applied" if i % 2 else "denied"
        stored = ledgers[i].decide_pending("approval", pending.pending_id, decision=decision, status=status, detail="")
        got[i] = stored.decision if stored else None

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(len(ledgers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and got[0] in ("approved", "denied")


def test_a_denied_change_is_not_opened_again_but_a_new_change_is(ledger: Ledger) -> None:
    p = ledger.add_pending("approval", VAULT, "kv-purge-protection", {"changeId": "c3"})
    ledger.decide_pending("approval", p.pending_id, decision="denied", status="denied", detail="no")
    again = ledger.add_pending("approval", VAULT, "kv-purge-protection", {"changeId": "c3"})
    assert again.status == "resolved" and again.decision == "denied"
    assert ledger.decided_for(VAULT, "denied") == ["c3"]
    assert not ledger.list_pending("approval")
    other = ledger.add_pending("approval", VAULT, "kv-purge-protection", {"changeId": "c4"})
    assert other.status == "open" and other.decision is None and other.change_id == "c4"


def test_is_claimed_reads_without_claiming(ledger: Ledger, clock: Clock) -> None:
    assert not ledger.is_claimed("nonce:n1", 60)
    assert ledger.claim("nonce:n1", 60)
    assert ledger.is_claimed("nonce:n1", 60)
    clock.advance(61)
    assert not ledger.is_claimed("nonce:n1", 60)
