"""Delivery through real HTTP to the sandbox's receivers: a Teams Workflows-like webhook, a generic webhook, an Event
Grid custom topic (CloudEvents 1.0)."""

import base64
import json
import logging
import time

import pytest

from remediations import azure
from remediations.notices import cards, signing
from remediations.notices.compose import Routes
from remediations.notices.delivery import Destinations, RateLimiter, Sender, cloudevents, setting_prefix
from remediations.notices.outbox import MemoryNoticeStore, notify, retry_due
from tests import notice_samples as s
from tests.notices.test_signing import readme_verifier
from tests.waits import limit

TEAMS_SIG = "sIgTeamsWorkflowSecret0123456789abcdefXYZ"
WEBHOOK_SECRET = "whsec-notice-secret-do-not-log-42"
FAST = azure.Retries(total=3, backoff=0.01, backoff_max=0.05, timeout=limit(30))


@pytest.fixture
def env(sandbox):
    topic = sandbox.admin("PUT", "/_sandbox/receivers/eventgrid/changes", {"inputSchema": "CloudEventSchemaV1_0"})
    base = sandbox.base_url
    teams = "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig="
    values = {"KEY": topic["key"]}
    for name in ("ops", "busy", "big", "other"):
        values[f"{setting_prefix(name)}_URL"] = f"{base}/_receivers/teams/{name}{teams}{TEAMS_SIG}"
    for name in ("siem", "flaky", "down"):
        values[f"{setting_prefix(name)}_URL"] = f"{base}/_receivers/webhook/{name}"
        values[f"{setting_prefix(name)}_SECRET"] = WEBHOOK_SECRET
    values["CRYPTWARD_DEST_BUS_URL"] = topic["endpoint"]
    values["CRYPTWARD_DEST_BUS_KEY"] = topic["key"]
    values["CRYPTWARD_DEST_WRONG_KEY_URL"] = topic["endpoint"]
    values["CRYPTWARD_DEST_WRONG_KEY_KEY"] = base64.b64encode(b"not the key").decode()
    return values


@pytest.fixture
def sender(sandbox, env):
    with Sender(Destinations(env), retries=FAST, verify=sandbox.ca) as sender:
        yield sender


def received(sandbox, receiver):
    return sandbox.admin("GET", f"/_sandbox/received?receiver={receiver}")["value"]


# --- Teams ---------------------------------------------------------------------------------------------------------


def test_teams_receives_one_adaptive_card_envelope(sandbox, sender):
    notice = s.pending()
    delivery = sender.send(notice, "teams:ops")
    assert delivery.ok and delivery.status == 202 and delivery.destination == "teams:ops"
    [item] = received(sandbox, "teams/ops")
    assert item["status"] == 202 and item["warnings"] == []  # no Action.Submit
    assert item["json"] == json.loads(cards.fit(notice))
    assert "MessageCard" not in item["body"] and item["json"]["type"] == "message"
    assert item["headers"]["content-type"] == "application/json"


def test_a_500_change_run_stays_under_the_teams_limit(sandbox, sender):
    notice = s.many(500)
    delivery = sender.send(notice, "teams:big")
    [item] = received(sandbox, "teams/big")
    assert delivery.ok and item["status"] == 202
    assert delivery.bytes == len(base64.b64decode(item["bodyBase64"])) <= 28 * 1024
    assert "more changes" in item["body"]


class RecordingLimiter(RateLimiter):
    """The sender's own rate limiter (its defaults), keeping every start it allowed."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed: list[float] = []

    def wait(self) -> float:
        waited = super().wait()
        self.allowed.append(self.starts[-1])
        return waited


def test_twelve_cards_in_a_row_keep_to_four_a_second(sandbox, env):
    """The sender starts at most 4 requests in any 1.1 s (Teams takes 4 a second; the extra tenth is for the jitter
    of arrivals after the starts). Checked on the starts it allowed: whether the arrivals at the receiver jitter by
    more than that tenth depends on the machine, and a 429 then is retried after its Retry-After (next test)."""
    limiter = RecordingLimiter()
    with Sender(Destinations(env), retries=FAST, verify=sandbox.ca, limiter=lambda: limiter) as sender:
        deliveries = [sender.send(s.applied(), "teams:busy") for _ in range(12)]
    assert all(d.ok for d in deliveries)
    assert [i["status"] for i in received(sandbox, "teams/busy")].count(202) == 12  # each card once
    starts = limiter.allowed
    assert len(starts) == 12 and all(later - first >= 1.1 for first, later in zip(starts, starts[4:], strict=False))


def test_a_429_is_retried_after_its_retry_after(sandbox, env):
    # One request a second at this receiver: the second card comes within a second of the first (the time of one
    # request, however busy the machine), not five within a second as Teams' own limit would need.
    sandbox.admin("PUT", "/_sandbox/receivers/teams/other", {"maxPerSecond": 1})
    unlimited = lambda: RateLimiter(per_second=1000)  # noqa: E731
    with Sender(Destinations(env), retries=FAST, verify=sandbox.ca, limiter=unlimited) as sender:
        deliveries = [sender.send(s.applied(), "teams:other") for _ in range(2)]
    assert all(d.ok for d in deliveries)
    assert [i["status"] for i in received(sandbox, "teams/other")] == [202, 429, 202]


def test_rate_limiter_spaces_requests():
    now = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(round(seconds, 3))
        now[0] += seconds

    limiter = RateLimiter(per_second=4, window=1.1, clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(9):
        limiter.wait()
        starts.append(round(now[0], 3))
    assert starts == [0, 0, 0, 0, 1.1, 1.1, 1.1, 1.1, 2.2]
    assert all(sum(1 for t in starts if a <= t < a + 1.0) <= 4 for a in starts)


# --- generic webhook -----------------------------------------------------------------------------------------------


def test_webhook_is_signed_so_the_receiver_can_verify_it(sandbox, sender):
    notice = s.applied()
    assert sender.send(notice, "webhook:siem").ok
    [item] = received(sandbox, "webhook/siem")
    raw, headers = base64.b64decode(item["bodyBase64"]), item["headers"]
    ts, sig = headers["x-cryptward-timestamp"], headers["x-cryptward-signature"]
    assert signing.verify_webhook(WEBHOOK_SECRET, ts, raw, sig, now=time.time())
    assert not signing.verify_webhook("another secret", ts, raw, sig, now=time.time())
    readme_headers = {"X-Cryptward-Timestamp": ts, "X-Cryptward-Signature": sig}
    assert readme_verifier()(WEBHOOK_SECRET.encode(), readme_headers, raw)
    assert headers["idempotency-key"] == notice.id
    body = json.loads(raw)
    assert body["id"] == notice.id and body["resourceId"] == s.VAULT and len(body["lines"]) == 2
    assert body["lines"][0]["after"] == {"properties.enablePurgeProtection": True}


def test_webhook_retries_500_500_then_200(sandbox, sender):
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/flaky", {"statuses": [500, 500]})
    delivery = sender.send(s.applied(), "webhook:flaky")
    assert delivery.ok and delivery.status == 200
    items = received(sandbox, "webhook/flaky")
    assert [i["status"] for i in items] == [500, 500, 200]
    assert len({i["headers"]["idempotency-key"] for i in items}) == 1  # the receiver can drop duplicates
    assert len({i["bodyBase64"] for i in items}) == 1


def test_failed_after_retries_is_kept_and_delivered_later(sandbox, sender):
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/down", {"status": 503})
    store, notice = MemoryNoticeStore(), s.failed()
    [delivery] = notify([notice], Routes.parse('{"*": ["webhook:down"]}'), sender, store, now=s.NOW)
    assert not delivery.ok and delivery.status == 503
    assert [i["status"] for i in received(sandbox, "webhook/down")] == [503] * 4  # the try and 3 retries
    [failed] = store.due(s.NOW + s.timedelta_minutes(5))
    assert failed.notice == notice and failed.destination == "webhook:down" and failed.attempts == 1
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/down", {"status": 200})
    [again] = retry_due(store, sender, s.NOW + s.timedelta_minutes(5))
    assert again.ok and store.items == {}


def test_missing_settings_and_unreachable_endpoints_are_deliveries_not_exceptions(sandbox, env):
    env = {**env, "CRYPTWARD_DEST_GONE_URL": "https://127.0.0.1:9/hook", "CRYPTWARD_DEST_GONE_SECRET": "x"}
    retries = azure.Retries(total=1, backoff=0.01, timeout=limit(30))
    with Sender(Destinations(env), retries=retries, verify=sandbox.ca) as sender:
        missing = sender.send(s.applied(), "webhook:nowhere")
        assert not missing.ok and "CRYPTWARD_DEST_NOWHERE_URL must be set" in missing.detail
        gone = sender.send(s.applied(), "webhook:gone")
        assert not gone.ok and gone.status == 0 and "127.0.0.1" not in gone.detail
        assert not sender.send(s.applied(), "slack:x").ok


# --- Event Grid ----------------------------------------------------------------------------------------------------


def test_event_grid_topic_receives_cloudevents(sandbox, sender):
    notice = s.escalated()
    delivery = sender.send(notice, "eventgrid:bus")
    assert delivery.ok
    items = received(sandbox, "eventgrid/changes")
    assert [i["schema"] for i in items] == ["CloudEventSchemaV1_0"] * 2
    event = items[0]["event"]
    assert event["specversion"] == "1.0" and event["type"] == "Cryptward.Change.Escalated"
    assert event["source"] == f"/cryptward/{s.SUB}" and event["subject"] == s.VAULT.replace(s.VAULT, s.VM)
    assert event["id"] == f"{notice.id}-0" and event["time"].startswith("2026-03-01T02:30:00")
    assert event["data"]["noticeId"] == notice.id and event["data"]["change"]["status"] == "blocked"
    assert items[0]["headers"]["aeg-sas-key"]


def test_webhooks_never_carry_approval_links(sandbox, sender):
    """A webhook feeds machines (an audit store, a SIEM): the links stay with the people, in the Teams cards."""
    notice = s.pending()
    assert notice.lines[0].approve_url  # the notice has links: the Teams card shows them
    assert sender.send(notice, "webhook:siem").ok
    [item] = received(sandbox, "webhook/siem")
    body = base64.b64decode(item["bodyBase64"]).decode()
    assert "token=" not in body and "approveUrl" not in body and json.loads(body)["lines"][0]["kind"] == "pending"


def test_event_grid_events_never_carry_approval_links():
    [event] = cloudevents(s.pending())
    assert event["type"] == "Cryptward.Change.Pending"
    assert "token=" not in json.dumps(event, default=str)


def test_event_grid_wrong_key_is_a_failed_delivery(sandbox, sender):
    delivery = sender.send(s.applied(), "eventgrid:wrong-key")
    assert not delivery.ok and delivery.status == 401
    assert received(sandbox, "eventgrid/changes") == []


# --- secrets -------------------------------------------------------------------------------------------------------


def test_no_url_secret_key_or_link_appears_in_logs(sandbox, env, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/flaky", {"statuses": [500, 500, 500, 500, 500]})
    routes = Routes.parse(
        '{"*": ["teams:ops", "webhook:siem", "webhook:flaky", "eventgrid:bus", "eventgrid:wrong-key", "teams:nope"]}'
    )
    with Sender(Destinations(env), retries=FAST, verify=sandbox.ca) as sender:
        deliveries = notify([s.pending(), s.applied()], routes, sender, MemoryNoticeStore(), now=s.NOW)
    assert {d.ok for d in deliveries} == {True, False}
    secrets = [TEAMS_SIG, WEBHOOK_SECRET, env["CRYPTWARD_DEST_BUS_KEY"], env["CRYPTWARD_DEST_WRONG_KEY_KEY"]]
    secrets += [line.approve_url.split("token=")[1] for line in s.pending().lines]
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "cryptward notice" in logged  # something was logged
    for secret in secrets:
        assert secret not in logged
    assert all(secret not in repr(d) for d in deliveries for secret in secrets)
    assert TEAMS_SIG not in repr(Destinations(env).of("teams:ops"))
