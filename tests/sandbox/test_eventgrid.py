"""Event Grid end to end: subscriptions through the real EventGridManagementClient, the handshake, deliveries to a
plain HTTP receiver, filters, retries, dead letters, the at-least-once knobs and the Key Vault topic."""

import itertools
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.mgmt.eventgrid import EventGridManagementClient
from azure.mgmt.eventgrid.models import (
    EventSubscription,
    EventSubscriptionFilter,
    RetryPolicy,
    StorageBlobDeadLetterDestination,
    StringBeginsWithAdvancedFilter,
    StringInAdvancedFilter,
    WebHookEventSubscriptionDestination,
)
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.locks import ManagementLockClient
from azure.mgmt.resource.locks.models import ManagementLockObject
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.rbac import ROLES
from sandbox.scenarios import assign
from tests.waits import wait_until

RG = "rg-events"
VAULT_WRITES = EventSubscriptionFilter(
    advanced_filters=[StringInAdvancedFilter(key="data.operationName", values=["Microsoft.KeyVault/vaults/write"])]
)
STORAGE = "/subscriptions/{sub}/resourceGroups/rg-ops/providers/Microsoft.Storage/storageAccounts/stdeadletters"


class Receiver:
    """A test webhook: answers the handshake (or not), then answers notifications from a script of statuses. Each
    request is recorded with when it came: `at` (real, monotonic) and `clock` (the sandbox clock's timestamp)."""

    def __init__(self, sandbox, handshake="echo", statuses=()):
        self.sandbox = sandbox
        self.handshake, self.statuses = handshake, list(statuses)
        self.requests, self.lock = [], threading.Lock()
        outer = self
        clock = sandbox.running.sandbox.state.clock  # the sandbox runs in this process

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                handshake = headers.get("aeg-event-type") == "SubscriptionValidation"
                with outer.lock:
                    outer.requests.append(
                        {"headers": headers, "body": body, "at": time.monotonic(), "clock": clock.timestamp()}
                    )
                    status = outer.statuses.pop(0) if outer.statuses and not handshake else 200
                answer = b""
                if handshake:
                    status, answer = outer.answer(body[0]["data"]["validationCode"])
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_OPTIONS(self):  # the CloudEvents abuse-protection handshake
                with outer.lock:
                    outer.requests.append(
                        {
                            "headers": dict(self.headers),
                            "body": None,
                            "at": time.monotonic(),
                            "clock": clock.timestamp(),
                        }
                    )
                self.send_response(200)
                self.send_header("WebHook-Allowed-Origin", self.headers["WebHook-Request-Origin"])
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/events?code=s3cret"

    def answer(self, code):
        if self.handshake == "echo":
            return 200, json.dumps({"validationResponse": code}).encode()
        if self.handshake == "wrong":
            return 200, json.dumps({"validationResponse": "nope"}).encode()
        return int(self.handshake), b"{}"

    @property
    def notifications(self):
        with self.lock:
            return [r for r in self.requests if (r["headers"] or {}).get("aeg-event-type") == "Notification"]

    def events(self):
        return [e for r in self.notifications for e in r["body"]]

    def wait(self, count):
        """The events received, once there are `count` and the sandbox has delivered all it published (so that
        nothing more comes)."""
        wait_until(
            lambda: len(self.events()) >= count,
            lambda: f"{len(self.events())} of {count} events arrived: {self.events()}",
        )
        delivered(self.sandbox)
        return self.events()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def delivered(sandbox):
    """Wait until the sandbox's Event Grid has delivered (or dead-lettered) every event it published: none waits to
    be sent, is on its way or waits for a retry. Events are queued before the request that caused them is answered,
    so after this nothing more comes from what happened before."""
    wait_until(
        lambda: not sum(s["queued"] for s in sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"]),
        "the sandbox delivered every event it published",
    )


def attempted(sandbox, n):
    """Wait until the sandbox has made `n` notification attempts and handled their answers (a failed event is then
    waiting for its retry, due on the schedule): moving the clock earlier would move the failure too."""
    wait_until(
        lambda: (
            sum(1 for d in sandbox.admin("GET", "/_sandbox/deliveries")["value"] if d["kind"] == "Notification") >= n
        ),
        f"{n} delivery attempt(s) made and answered",
    )


@pytest.fixture
def receiver(sandbox):
    made = []

    def make(**kwargs):
        made.append(Receiver(sandbox, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def eg(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    return sandbox.client(EventGridManagementClient)


def subscribe(sandbox, eg, url, name="cryptward", scope=None, **props):
    props.setdefault("destination", WebHookEventSubscriptionDestination(endpoint_url=url))
    info = EventSubscription(**props)
    scope = scope or f"/subscriptions/{sandbox.subscription_id}"
    return eg.event_subscriptions.begin_create_or_update(scope, name, info).result()


def make_vault(sandbox, name):
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    return kv.vaults.begin_create_or_update(RG, name, {"location": "westeurope", "properties": props}).result()


def settings(sandbox, **values):
    sandbox.admin("PATCH", "/_sandbox/settings", values)


def test_vault_then_tags_then_lock_is_exactly_three_events(sandbox, eg, receiver):
    rcv = receiver()
    es = subscribe(sandbox, eg, rcv.url)
    assert es.provisioning_state == "Succeeded"
    assert es.topic == f"/subscriptions/{sandbox.subscription_id}"
    assert es.destination.endpoint_base_url == rcv.url.split("?")[0]  # the secret query is never shown
    handshake = rcv.requests[0]
    assert handshake["headers"]["aeg-event-type"] == "SubscriptionValidation"
    assert handshake["body"][0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"

    vault = make_vault(sandbox, "kv-events-1")
    rm = sandbox.client(ResourceManagementClient)
    rm.tags.begin_create_or_update_at_scope(vault.id, {"properties": {"tags": {"owner": "sec"}}}).result()
    sandbox.client(ManagementLockClient).management_locks.create_or_update_by_scope(
        vault.id, "no-delete", ManagementLockObject(level="CanNotDelete")
    )
    got = rcv.wait(3)
    assert [(e["eventType"], e["data"]["operationName"], e["subject"]) for e in got] == [
        ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.KeyVault/vaults/write", vault.id),
        (
            "Microsoft.Resources.ResourceWriteSuccess",
            "Microsoft.Resources/tags/write",
            f"{vault.id}/providers/Microsoft.Resources/tags/default",
        ),
        (
            "Microsoft.Resources.ResourceWriteSuccess",
            "Microsoft.Authorization/locks/write",
            f"{vault.id}/providers/Microsoft.Authorization/locks/no-delete",
        ),
    ]
    first, admin = got[0], sandbox.principal("admin")
    assert first["topic"] == f"/subscriptions/{sandbox.subscription_id}"
    assert (first["dataVersion"], first["metadataVersion"]) == ("2", "1")
    data = first["data"]
    assert data["status"] == "Succeeded" and data["resourceProvider"] == "Microsoft.KeyVault"
    assert data["httpRequest"]["method"] == "PUT" and data["httpRequest"]["url"].startswith(sandbox.base_url)
    evidence = data["authorization"]["evidence"]
    assert evidence["role"] == "Owner" and evidence["principalType"] == "User"
    assert evidence["roleDefinitionId"] == ROLES["Owner"].replace("-", "")
    assert evidence["principalId"] == admin.object_id.replace("-", "")
    assert data["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] == admin.object_id
    headers = rcv.notifications[0]["headers"]
    assert headers["aeg-subscription-name"] == "CRYPTWARD"
    assert (headers["aeg-delivery-count"], headers["aeg-data-version"], headers["aeg-metadata-version"]) == (
        "0",
        "2",
        "1",
    )
    # An action (a POST) is an event too: ResourceActionSuccess.
    assert eg.event_subscriptions.get_full_url(es.id.rsplit("/providers/", 1)[0], es.name).endpoint_url == rcv.url
    action = rcv.wait(4)[3]
    assert (action["eventType"], action["data"]["operationName"]) == (
        "Microsoft.Resources.ResourceActionSuccess",
        "Microsoft.EventGrid/eventSubscriptions/getFullUrl/action",
    )


def test_refused_write_is_a_write_failure_event(sandbox, eg, receiver):
    rcv = receiver()
    subscribe(
        sandbox,
        eg,
        rcv.url,
        filter=EventSubscriptionFilter(included_event_types=["Microsoft.Resources.ResourceWriteFailure"]),
    )
    with pytest.raises(HttpResponseError):
        sandbox.client(ResourceManagementClient, "reader").resource_groups.create_or_update(
            "rg-nope", {"location": "westeurope"}
        )
    (event,) = rcv.wait(1)
    assert event["data"]["status"] == "Failed"
    assert event["subject"].endswith("/resourceGroups/rg-nope")
    assert "evidence" not in event["data"]["authorization"]  # nothing granted it


def test_filters_and_batches(sandbox, eg, receiver):
    rcv = receiver()
    vault = make_vault(sandbox, "kv-events-2")
    subscribe(
        sandbox,
        eg,
        rcv.url,
        filter=EventSubscriptionFilter(
            included_event_types=["Microsoft.Resources.ResourceWriteSuccess"],
            subject_begins_with=vault.id.upper(),
            advanced_filters=[
                StringInAdvancedFilter(
                    key="data.operationName",
                    values=["Microsoft.Authorization/locks/write", "Microsoft.Resources/tags/write"],
                ),
                StringBeginsWithAdvancedFilter(key="subject", values=[f"{vault.id}/providers/Microsoft.Authorization"]),
            ],
        ),
    )
    rm = sandbox.client(ResourceManagementClient)
    rm.tags.begin_create_or_update_at_scope(vault.id, {"properties": {"tags": {"a": "1"}}}).result()
    locks = sandbox.client(ManagementLockClient).management_locks
    locks.create_or_update_by_scope(vault.id, "l1", ManagementLockObject(level="CanNotDelete"))
    locks.create_or_update_at_resource_group_level(RG, "l2", ManagementLockObject(level="CanNotDelete"))
    locks.delete_by_scope(vault.id, "l1")
    (event,) = rcv.wait(1)
    assert event["subject"] == f"{vault.id}/providers/Microsoft.Authorization/locks/l1"


def seed_estate(sandbox):
    """Dozens of writes published in one go (one admin request): their subjects, in the order they happened. Only the
    subscription's own: the estate also writes in its shared-keys subscription, whose events go to that
    subscription's system topic."""
    before = len(sandbox.admin("GET", "/_sandbox/operations")["value"])
    sandbox.admin("POST", "/_sandbox/seed", {"scenario": "estate"})
    own = f"/subscriptions/{sandbox.subscription_id}/".lower()
    made = sandbox.admin("GET", f"/_sandbox/operations?since={before}")["value"]
    return [o["resource_id"] for o in made if o["resource_id"].lower().startswith(own)]


def test_batching_up_to_max_events_per_batch(sandbox, eg, receiver):
    rcv = receiver(statuses=[503])  # the first batch is retried; the others go on meanwhile
    dest = WebHookEventSubscriptionDestination(endpoint_url=rcv.url, max_events_per_batch=3)
    subscribe(sandbox, eg, rcv.url, destination=dest)
    published = seed_estate(sandbox)
    got = rcv.wait(len(published) + 3)  # the failed batch came twice
    sizes = [len(r["body"]) for r in rcv.notifications]
    assert max(sizes) == 3 and sizes[0] == 3
    assert sorted({e["subject"] for e in got}) == sorted(set(published))


def test_failed_handshake_fails_the_create(sandbox, eg, receiver):
    for mode, reason in (("500", "failed with response code InternalServerError"), ("wrong", "invalid content")):
        rcv = receiver(handshake=mode)
        with pytest.raises(HttpResponseError) as err:
            subscribe(sandbox, eg, rcv.url, name=f"bad-{mode}")
        assert err.value.error.code == "Url validation"
        message = err.value.error.message
        assert message.startswith(f"Webhook validation handshake failed for {rcv.url}. Http POST request")
        assert reason in message and "https://aka.ms/esvalidation" in message
        scope = f"/subscriptions/{sandbox.subscription_id}"
        assert eg.event_subscriptions.get(scope, f"bad-{mode}").provisioning_state == "Failed"
    make_vault(sandbox, "kv-events-3")
    delivered(sandbox)
    assert all(r["headers"]["aeg-event-type"] == "SubscriptionValidation" for r in rcv.requests)


def test_retries_follow_the_schedule_compressed(sandbox, eg, receiver):
    """The schedule in real time, divided by delivery_time_scale: each retry comes at least its compressed wait
    after the attempt before it. How soon after depends on the machine's speed and is not asserted; the schedule's
    steps themselves (10 s, then 30 s) are checked on the sandbox clock, in the next test."""
    settings(sandbox, delivery_time_scale=200)  # 10 s -> 50 ms, 30 s -> 150 ms
    rcv = receiver(statuses=[500, 500])
    subscribe(sandbox, eg, rcv.url)
    make_vault(sandbox, "kv-events-4")
    rcv.wait(3)
    attempts = rcv.notifications
    assert [r["headers"]["aeg-delivery-count"] for r in attempts] == ["0", "1", "2"]
    assert len({r["body"][0]["id"] for r in attempts}) == 1
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.145  # (a slower machine only makes them longer)


def test_retry_fires_when_the_sandbox_clock_advances(sandbox, eg, receiver):
    """Event Grid's schedule on the sandbox clock: the first retry 10 s after the failure, the second 30 s after
    that. The sandbox clock is wall time plus the offset tests move, so the gaps are read on it when the attempts
    arrive: they hold however long the test itself takes."""
    settings(sandbox, delivery_time_scale=0)  # waits follow the sandbox clock only
    rcv = receiver(statuses=[500, 500])
    subscribe(sandbox, eg, rcv.url)
    make_vault(sandbox, "kv-events-5")

    attempted(sandbox, 1)
    time.sleep(0.05)  # a retry that did not wait for the clock would come meanwhile: the gaps below catch it
    sandbox.advance(9)
    time.sleep(0.05)
    sandbox.advance(1)  # 10 s after the failure
    attempted(sandbox, 2)
    sandbox.advance(29)
    time.sleep(0.05)
    sandbox.advance(1)  # 30 s after the second failure
    attempted(sandbox, 3)
    attempts = rcv.notifications
    assert [r["headers"]["aeg-delivery-count"] for r in attempts] == ["0", "1", "2"]
    first, second = (b["clock"] - a["clock"] for a, b in itertools.pairwise(attempts))
    assert first >= 10 and second >= 30, (first, second)


def test_dead_letter_after_max_attempts_and_at_once_on_400(sandbox, eg, receiver):
    dead = StorageBlobDeadLetterDestination(
        resource_id=STORAGE.format(sub=sandbox.subscription_id), blob_container_name="deadletters"
    )
    always_500 = receiver(statuses=[500] * 10)
    subscribe(
        sandbox,
        eg,
        always_500.url,
        name="three-tries",
        filter=VAULT_WRITES,
        retry_policy=RetryPolicy(max_delivery_attempts=3, event_time_to_live_in_minutes=60),
        dead_letter_destination=dead,
    )
    bad_request = receiver(statuses=[400] * 10)
    subscribe(sandbox, eg, bad_request.url, name="bad-request", filter=VAULT_WRITES, dead_letter_destination=dead)
    make_vault(sandbox, "kv-events-6")
    wait_until(lambda: len(sandbox.admin("GET", "/_sandbox/deadletters")["value"]) >= 2, "two dead letters")
    rows = {
        r["eventSubscriptionId"].rsplit("/", 1)[-1]: r for r in sandbox.admin("GET", "/_sandbox/deadletters")["value"]
    }
    assert len(always_500.notifications) == 3 and len(bad_request.notifications) == 1
    three = rows["three-tries"]["event"]
    assert (three["deadLetterReason"], three["deliveryAttempts"], three["lastDeliveryOutcome"]) == (
        "MaxDeliveryAttemptsExceeded",
        3,
        "InternalServerError",
    )
    assert three["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert rows["three-tries"]["blobContainerName"] == "deadletters"
    once = rows["bad-request"]["event"]
    assert (once["deliveryAttempts"], once["lastDeliveryOutcome"]) == (1, "BadRequest")


def test_dead_letter_when_the_time_to_live_runs_out(sandbox, eg, receiver):
    # On the sandbox clock (not real time compressed): the event's age is exact however slow the round trips are.
    settings(sandbox, delivery_time_scale=0)
    rcv = receiver(statuses=[500] * 30)
    dead = StorageBlobDeadLetterDestination(
        resource_id=STORAGE.format(sub=sandbox.subscription_id), blob_container_name="deadletters"
    )
    policy = RetryPolicy(max_delivery_attempts=30, event_time_to_live_in_minutes=1)  # 10 s, 30 s, then the TTL
    subscribe(sandbox, eg, rcv.url, filter=VAULT_WRITES, retry_policy=policy, dead_letter_destination=dead)
    make_vault(sandbox, "kv-events-10")
    for attempts, wait in ((1, 10), (2, 30), (3, 20)):  # 0 s, 10 s, 40 s, then 60 s: the TTL
        attempted(sandbox, attempts)
        sandbox.advance(wait)
    wait_until(lambda: sandbox.admin("GET", "/_sandbox/deadletters")["value"], "the dead letter")
    (row,) = sandbox.admin("GET", "/_sandbox/deadletters")["value"]
    assert row["event"]["deadLetterReason"] == "TimeToLiveExceeded"
    assert row["event"]["deliveryAttempts"] == len(rcv.notifications) == 3


def test_cloud_event_schema(sandbox, eg, receiver):
    rcv = receiver()
    subscribe(sandbox, eg, rcv.url, event_delivery_schema="CloudEventSchemaV1_0")
    assert rcv.requests[0]["body"] is None  # OPTIONS, not the Event Grid handshake
    vault = make_vault(sandbox, "kv-events-11")
    (event,) = rcv.wait(1)
    assert event["specversion"] == "1.0" and event["type"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert (event["source"], event["subject"]) == (f"/subscriptions/{sandbox.subscription_id}", vault.id)
    assert rcv.notifications[0]["headers"]["content-type"].startswith("application/cloudevents-batch+json")


def test_duplicates_and_reorder_are_seeded(sandbox, eg, receiver):
    settings(sandbox, duplicate_rate=1.0)
    rcv = receiver()
    subscribe(sandbox, eg, rcv.url)
    make_vault(sandbox, "kv-events-7")
    got = rcv.wait(2)
    assert got[0] == got[1]  # at least once: the same event again
    assert [r["headers"]["aeg-delivery-count"] for r in rcv.notifications] == ["0", "1"]

    def burst(seed):
        sandbox.reset()
        settings(sandbox, reorder=True, delivery_seed=seed)
        r = receiver()
        subscribe(sandbox, eg, r.url)
        published = seed_estate(sandbox)
        return published, [e["subject"] for e in r.wait(len(published))]

    published, first = burst(7)
    assert sorted(first) == sorted(published) and first != published
    assert burst(7)[1] == first  # one seed, one order


def test_key_new_version_created_on_create_and_rotate(sandbox, eg, receiver):
    vault = make_vault(sandbox, "kv-events-8")
    sb = sandbox.running.sandbox
    assign(sb, vault.id, sb.directory.named("admin"), ROLES["Key Vault Crypto Officer"])
    rcv = receiver()
    subscribe(
        sandbox,
        eg,
        rcv.url,
        name="kv-keys",
        scope=vault.id,
        filter=EventSubscriptionFilter(included_event_types=["Microsoft.KeyVault.KeyNewVersionCreated"]),
    )
    keys = KeyClient(
        vault_url=vault.properties.vault_uri,
        credential=sandbox.credential("admin"),
        verify_challenge_resource=False,
        connection_verify=sandbox.ca,
    )
    created = keys.create_rsa_key("cmk")
    rotated = keys.rotate_key("cmk")
    got = rcv.wait(2)
    assert [e["data"]["Id"] for e in got] == [created.id, rotated.id]
    event = got[1]
    assert event["topic"] == vault.id and event["subject"] == "cmk"
    assert event["eventType"] == "Microsoft.KeyVault.KeyNewVersionCreated"
    assert event["data"] | {"Id": None} == {
        "Id": None,
        "VaultName": "kv-events-8",
        "ObjectType": "Key",
        "ObjectName": "cmk",
        "Version": rotated.properties.version,
        "NBF": None,
        "EXP": None,
    }
    assert (event["dataVersion"], event["metadataVersion"]) == ("1", "1")
    assert rcv.notifications[0]["headers"]["aeg-data-version"] == "1"
    listed = eg.event_subscriptions.list_by_resource(RG, "Microsoft.KeyVault", "vaults", "kv-events-8")
    assert [s.name for s in listed] == ["kv-keys"]
    assert [s.name for s in eg.event_subscriptions.list_global_by_subscription()] == []


def test_key_near_expiry_and_expired_follow_the_sandbox_clock(sandbox, eg, receiver):
    vault = make_vault(sandbox, "kv-events-9")
    rcv = receiver()
    subscribe(sandbox, eg, rcv.url, name="expiry", scope=vault.id)
    exp = int(datetime.now(UTC).timestamp()) + 40 * 86400
    kv = sandbox.client(KeyVaultManagementClient)
    kv.keys.create_if_not_exist(RG, vault.name, "cmk", {"properties": {"kty": "RSA", "attributes": {"exp": exp}}})
    assert [e["eventType"] for e in rcv.wait(1)] == ["Microsoft.KeyVault.KeyNewVersionCreated"]
    sandbox.advance(9 * 86400)
    delivered(sandbox)  # the clock's events are queued before the advance is answered
    assert len(rcv.events()) == 1  # 31 days left: not yet
    sandbox.advance(2 * 86400)
    sandbox.advance(86400)  # once per version
    got = rcv.wait(2)
    assert got[1]["eventType"] == "Microsoft.KeyVault.KeyNearExpiry" and got[1]["data"]["EXP"] == str(exp)
    sandbox.advance(30 * 86400)
    got = rcv.wait(3)
    assert [e["eventType"] for e in got[2:]] == ["Microsoft.KeyVault.KeyExpired"]


def test_admin_api_manages_subscriptions(sandbox, receiver):
    rcv = receiver()
    made = sandbox.admin("POST", "/_sandbox/eventSubscriptions", {"name": "via-admin", "endpointUrl": rcv.url})
    assert made["properties"]["provisioningState"] in ("Creating", "Succeeded")
    wait_until(
        lambda: (
            sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"][0]["properties"]["provisioningState"]
            == "Succeeded"
        ),
        "the subscription made through the admin API validated",
    )
    sandbox.admin("DELETE", f"/_sandbox/eventSubscriptions?id={made['id']}")
    assert sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"] == []
    assert sandbox.admin("GET", "/_sandbox/deliveries")["value"][0]["kind"] == "SubscriptionValidation"


def test_injected_delivery_fault_is_retried(sandbox, eg, receiver):
    rcv = receiver()
    subscribe(sandbox, eg, rcv.url, filter=VAULT_WRITES)
    sandbox.admin("POST", "/_sandbox/faults", [{"on": "delivery", "kind": "500", "path": "/api/events", "count": 1}])
    make_vault(sandbox, "kv-events-12")
    rcv.wait(1)
    assert [r["headers"]["aeg-delivery-count"] for r in rcv.notifications] == ["1"]  # attempt 0 never arrived


def test_secret_and_certificate_expiry_events_follow_the_sandbox_clock(sandbox, eg, receiver):
    vault = make_vault(sandbox, "kv-events-13")
    rcv = receiver()
    subscribe(sandbox, eg, rcv.url, name="secret-expiry", scope=vault.id)
    exp = int(datetime.now(UTC).timestamp()) + 40 * 86400
    kv = sandbox.client(KeyVaultManagementClient)
    kv.secrets.create_or_update(RG, vault.name, "db", {"properties": {"value": "v", "attributes": {"exp": exp}}})
    cert = {"value": "v", "contentType": "application/x-pkcs12", "attributes": {"exp": exp}}
    kv.secrets.create_or_update(RG, vault.name, "web", {"properties": cert})
    sandbox.advance(9 * 86400)
    delivered(sandbox)
    assert rcv.events() == []  # 31 days left: not yet
    sandbox.advance(2 * 86400)
    sandbox.advance(86400)  # once per expiry
    got = rcv.wait(2)
    assert sorted((e["eventType"], e["data"]["ObjectType"], e["data"]["ObjectName"]) for e in got) == [
        ("Microsoft.KeyVault.CertificateNearExpiry", "Certificate", "web"),
        ("Microsoft.KeyVault.SecretNearExpiry", "Secret", "db"),
    ]
    assert got[0]["topic"] == vault.id and got[0]["data"]["EXP"] == str(exp)
    sandbox.advance(30 * 86400)
    got = rcv.wait(4)
    assert sorted(e["eventType"].rsplit(".", 1)[1] for e in got[2:]) == ["CertificateExpired", "SecretExpired"]
