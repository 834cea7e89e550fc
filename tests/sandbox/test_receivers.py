"""The receivers on the sandbox's port: a Teams Workflows-like webhook (plain httpx), a generic webhook, and an Event
Grid custom topic endpoint driven by azure-eventgrid's EventGridPublisherClient."""

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core.credentials import AzureKeyCredential, AzureSasCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient, generate_sas


def _card(*actions, text="Vault kv-1 had purge protection off; it is on now."):
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                    "actions": list(actions) or [{"type": "Action.OpenUrl", "title": "Open", "url": "https://x"}],
                },
            }
        ],
    }


@pytest.fixture
def http(sandbox):
    with httpx.Client(base_url=sandbox.base_url, verify=sandbox.ssl) as client:
        yield client


def _received(sandbox, receiver):
    return sandbox.admin("GET", f"/_sandbox/received?receiver={receiver}")["value"]


# -- Teams -----------------------------------------------------------------------------------------------------


def test_teams_accepts_an_adaptive_card_envelope(sandbox, http):
    r = http.post("/_receivers/teams/ops", json=_card())
    assert r.status_code == 202 and r.content == b""
    assert r.headers["x-ms-workflow-run-id"]
    [item] = _received(sandbox, "teams/ops")
    assert item["status"] == 202 and item["warnings"] == []
    assert item["json"]["attachments"][0]["content"]["body"][0]["text"].startswith("Vault kv-1")


def test_teams_refuses_message_cards_and_other_shapes(sandbox, http):
    message_card = {"@type": "MessageCard", "@context": "https://schema.org/extensions", "text": "hi", "sections": []}
    r = http.post("/_receivers/teams/ops", json=message_card)
    assert r.status_code == 400 and "MessageCard" in r.json()["error"]["message"]
    assert "attachments" in r.json()["error"]["message"]  # the flow's own error is quoted
    bad_bodies = ({"text": "plain"}, {"type": "message", "attachments": [{"contentType": "image/png"}]}, [1, 2])
    for i, bad in enumerate(bad_bodies):  # one webhook each: a webhook takes 4 requests a second
        assert http.post(f"/_receivers/teams/shape{i}", json=bad).status_code == 400
    assert http.post("/_receivers/teams/json", content=b"{not json").status_code == 400
    assert [i["status"] for i in _received(sandbox, "teams/shape2")] == [400]


def test_teams_refuses_more_than_28_kb(sandbox, http):
    r = http.post("/_receivers/teams/ops", json=_card(text="x" * 30 * 1024))
    assert r.status_code == 413 and "28 KB" in r.json()["error"]["message"]


def test_teams_throttles_the_fifth_request_within_a_second(sandbox, http):
    statuses = [http.post("/_receivers/teams/busy", json=_card()).status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 202, 429]
    r = http.post("/_receivers/teams/busy", json=_card())
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert http.post("/_receivers/teams/other", json=_card()).status_code == 202  # per webhook


def test_teams_flags_action_submit(sandbox, http):
    r = http.post("/_receivers/teams/ops", json=_card({"type": "Action.Submit", "title": "Approve", "data": {}}))
    assert r.status_code == 202
    [item] = _received(sandbox, "teams/ops")
    assert len(item["warnings"]) == 1 and "Action.Submit" in item["warnings"][0]


def test_received_items_can_be_cleared(sandbox, http):
    http.post("/_receivers/teams/a", json=_card())
    http.post("/_receivers/webhook/b", content=b"x")
    assert len(sandbox.admin("GET", "/_sandbox/received")["value"]) == 2
    sandbox.admin("DELETE", "/_sandbox/received?receiver=teams/a")
    assert _received(sandbox, "teams/a") == [] and len(_received(sandbox, "webhook/b")) == 1
    assert sandbox.admin_api.get("/_sandbox/received", headers={"x-sandbox-key": "wrong"}).status_code == 403


# -- generic webhook -------------------------------------------------------------------------------------------


def test_webhook_keeps_the_raw_body_and_follows_its_status_script(sandbox, http):
    sandbox.admin("PUT", "/_sandbox/receivers/webhook/bot", {"statuses": [500, 503], "delayMs": 1})
    raw = b'{"b": 1,  "a": 2}'
    headers = {"Content-Type": "application/json", "X-Signature": "sha256=abc"}
    statuses = [http.post("/_receivers/webhook/bot", content=raw, headers=headers).status_code for _ in range(3)]
    assert statuses == [500, 503, 200]
    items = _received(sandbox, "webhook/bot")
    assert [i["status"] for i in items] == [500, 503, 200]
    assert base64.b64decode(items[0]["bodyBase64"]) == raw and items[0]["headers"]["x-signature"] == "sha256=abc"
    assert items[0]["method"] == "POST"
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.admin("PUT", "/_sandbox/receivers/webhook/bot", {"colour": "red"})


def test_webhook_answers_the_event_grid_validation_handshake(sandbox, http):
    event = [
        {"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "C0DE"}}
    ]
    r = http.post("/_receivers/webhook/eg", json=event, headers={"aeg-event-type": "SubscriptionValidation"})
    assert r.status_code == 200 and r.json() == {"validationResponse": "C0DE"}


# -- Event Grid custom topic -----------------------------------------------------------------------------------


def _topic(sandbox, name, schema="EventGridSchema"):
    return sandbox.admin("PUT", f"/_sandbox/receivers/eventgrid/{name}", {"inputSchema": schema})


def _publisher(sandbox, topic, credential):
    return EventGridPublisherClient(topic["endpoint"], credential, connection_verify=sandbox.ca)


def test_event_grid_events_from_the_sdk(sandbox):
    topic = _topic(sandbox, "cryptward")
    event = EventGridEvent(
        subject="vaults/kv-1", event_type="Cryptward.Remediated", data={"vault": "kv-1"}, data_version="1.0"
    )
    with _publisher(sandbox, topic, AzureKeyCredential(topic["key"])) as client:
        client.send(
            [
                event,
                {
                    "id": "2",
                    "subject": "s",
                    "eventType": "t",
                    "eventTime": "2026-01-01T00:00:00Z",
                    "data": {},
                    "dataVersion": "1",
                },
            ]
        )
    items = _received(sandbox, "eventgrid/cryptward")
    assert [i["schema"] for i in items] == ["EventGridSchema", "EventGridSchema"]
    assert items[0]["event"]["eventType"] == "Cryptward.Remediated" and items[0]["event"]["data"] == {"vault": "kv-1"}
    assert items[0]["query"] == "api-version=2018-01-01"
    with _publisher(sandbox, topic, AzureKeyCredential("d3Jvbmc=")) as client, pytest.raises(ClientAuthenticationError):
        client.send(event)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    sas = generate_sas(topic["endpoint"], topic["key"], expiry)
    with _publisher(sandbox, topic, AzureSasCredential(sas)) as client:
        client.send(event)
    assert len(_received(sandbox, "eventgrid/cryptward")) == 3


def test_cloud_events_from_the_sdk(sandbox):
    topic = _topic(sandbox, "cloud", "CloudEventSchemaV1_0")
    event = CloudEvent(source="/cryptward/engine", type="Cryptward.Remediated", data={"vault": "kv-1"}, subject="kv-1")
    with _publisher(sandbox, topic, AzureKeyCredential(topic["key"])) as client:
        client.send([event])
    [item] = _received(sandbox, "eventgrid/cloud")
    assert item["schema"] == "CloudEventSchemaV1_0" and item["event"]["specversion"] == "1.0"
    assert item["event"]["type"] == "Cryptward.Remediated" and item["event"]["data"] == {"vault": "kv-1"}
    assert item["headers"]["content-type"].startswith("application/cloudevents-batch+json")
    eg_topic = _topic(sandbox, "eg-only")
    with (
        _publisher(sandbox, eg_topic, AzureKeyCredential(eg_topic["key"])) as client,
        pytest.raises(HttpResponseError) as err,
    ):
        client.send([event])
    assert err.value.status_code == 400


def test_event_grid_refuses_bad_input_with_its_error_shape(sandbox, http):
    topic = _topic(sandbox, "strict")
    url = "/_receivers/eventgrid/strict/api/events?api-version=2018-01-01"
    key = {"aeg-sas-key": topic["key"]}
    r = http.post(
        url, json=[{"id": "1", "eventType": "t", "eventTime": "2026-01-01T00:00:00Z", "data": {}}], headers=key
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "BadRequest" and "subject" in error["message"]
    assert error["details"][0]["code"] == "InputJsonInvalid"
    bad_time = [{"id": "1", "subject": "s", "eventType": "t", "eventTime": "yesterday", "data": {}}]
    assert http.post(url, json=bad_time, headers=key).status_code == 400
    assert http.post(url, json=[], headers={}).status_code == 401
    assert "aeg-sas-key" in http.post(url, json=[], headers={}).json()["error"]["message"]
    too_big = [
        {"id": "1", "subject": "s", "eventType": "t", "eventTime": "2026-01-01T00:00:00Z", "data": "x" * 1_100_000}
    ]
    assert http.post(url, content=json.dumps(too_big), headers=key).status_code == 413
    assert http.post("/_receivers/eventgrid/nope/api/events", json=[], headers=key).status_code == 404
