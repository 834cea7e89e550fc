"""The HTTP doors refuse floods before reading them, and tell nothing before authentication (issue: "Unauthenticated
DoS", "One key opens both the Event Grid webhook and the HTTP functions in serve, and function names are listed
before the key is checked").

Against `cryptward serve`'s own host over real HTTP: bodies are streamed, not held, and refused with 413.
"""

from __future__ import annotations

import httpx
import pytest

from remediations.cli import serve
from remediations.cli.functions import functions
from remediations.triggers.intake import MAX_ALERT_BYTES, on_alert
from tests.waits import limit

KEY, SYSTEM_KEY = "function-k3y", "system-k3y"
EG = "/runtime/webhooks/EventGrid"


@pytest.fixture
def client():
    running = serve.start_in_thread(serve.Host(functions(), KEY, system_key=SYSTEM_KEY), background=False)
    try:
        with httpx.Client(base_url=running.base_url, timeout=limit(60)) as c:
            yield c
    finally:
        running.stop()


def _stream(size: int, chunk: int = 64 * 1024):
    sent = 0
    while sent < size:
        yield b"x" * min(chunk, size - sent)
        sent += chunk


def test_twenty_megabytes_are_refused_with_413_whether_declared_or_streamed(client):
    big = 20 * 1024 * 1024
    declared = {"content-length": str(big)}
    for url in (f"{EG}?functionName=eventgrid&code={SYSTEM_KEY}", f"/api/alerts?code={KEY}", "/api/approvals"):
        assert client.post(url, content=_stream(big)).status_code == 413, url  # chunked: no length given
        assert client.post(url, content=b"x" * big, headers=declared).status_code == 413, url


def test_an_alert_body_is_refused_before_it_is_parsed():
    status, reply = on_alert(b"[" * (MAX_ALERT_BYTES + 1))  # deep nesting: costly to parse, never parsed
    assert status == 413 and reply["error"] == "PayloadTooLarge"


def test_the_event_grid_webhook_takes_only_its_system_key_and_names_nothing_before_it(client):
    body = [{"eventType": "Other"}]
    assert client.post(f"{EG}?functionName=eventgrid&code={KEY}", json=body).status_code == 403  # the function key
    anonymous = client.post(f"{EG}?functionName=nothere", json=body)
    assert anonymous.status_code == 401 and "eventgrid" not in anonymous.text.lower().replace("event grid", "")
    assert client.post(f"{EG}?functionName=eventgrid&code={SYSTEM_KEY}", json=body).status_code == 200
    assert client.post(f"/api/alerts?code={SYSTEM_KEY}", json={}).status_code == 403  # nor the other way round
