"""`cryptward serve`: the host adapter over function_app.py's own functions (served in this process on a thread), its
queue poller against Azurite, its timers, settings and --help; hypothesis throws malformed, truncated, oversized and
wrong-schema payloads at the webhooks."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from remediations.cli import serve
from remediations.cli.functions import functions
from remediations.cli.main import app as cli
from remediations.errors import SettingsError
from tests.waits import START, WAIT, limit, wait_until

KEY = "k3y"
SYSTEM_KEY = "eventgrid-extension-k3y"
SUB = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def client(azurite, monkeypatch):
    tag = uuid.uuid4().hex[:8]
    for k, v in {
        "AzureWebJobsStorage": azurite,
        "CRYPTWARD_TABLE_PREFIX": f"t{tag}",
        "CRYPTWARD_WORK_QUEUE": f"cw-{tag}",
        "CRYPTWARD_SCOPES": SUB,
        "CRYPTWARD_DEBOUNCE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(k, v)
    running = serve.start_in_thread(serve.Host(functions(), KEY, system_key=SYSTEM_KEY), background=False)
    try:
        with httpx.Client(base_url=running.base_url, timeout=limit(WAIT)) as c:
            yield c
    finally:
        running.stop()


EG = "/runtime/webhooks/EventGrid"


def test_eventgrid_handshake_needs_the_key_and_answers_the_code(client):
    body = [
        {
            "id": "1",
            "topic": f"/subscriptions/{SUB}",
            "subject": "",
            "eventType": serve.VALIDATION,
            "eventTime": "2026-01-01T00:00:00Z",
            "dataVersion": "1",
            "data": {"validationCode": "abc", "validationUrl": "https://x?code=secret"},
        }
    ]
    headers = {"aeg-event-type": "SubscriptionValidation"}
    assert client.post(f"{EG}?functionName=eventgrid", json=body, headers=headers).status_code == 401
    assert client.post(f"{EG}?functionName=eventgrid&code=nope", json=body).status_code == 403
    assert client.post(f"{EG}?functionName=eventgrid&code={KEY}", json=body).status_code == 403  # a function key
    r = client.post(f"{EG}?functionName=eventgrid&code={SYSTEM_KEY}", json=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"validationResponse": "abc"}
    missing = client.post(f"{EG}?functionName=nothere&code={SYSTEM_KEY}", json=body)
    assert missing.status_code == 404 and "nothere" in missing.json()["error"]
    assert "eventgrid" not in client.post(f"{EG}?functionName=nothere", json=body).text  # nothing told without a key


def test_eventgrid_malformed_bodies(client):
    url = f"{EG}?functionName=eventgrid&code={SYSTEM_KEY}"
    assert client.post(url, content=b"{truncated").status_code == 400
    assert client.post(url, content=b"x" * (serve.MAX_EVENTGRID_BYTES + 1)).status_code == 413
    assert client.post(url, json=[1, "two", None, {"eventType": "Other"}]).status_code == 200


def test_http_triggers_keys_methods_and_health(client):
    assert client.get("/api/health").status_code == 200  # anonymous
    assert client.post("/api/alerts", json={}).status_code == 401
    assert client.post("/api/alerts", json={}, headers={"x-functions-key": "bad"}).status_code == 403
    r = client.post("/api/alerts", json={"schemaId": "other"}, headers={"x-functions-key": KEY})
    assert r.status_code == 400 and r.json()["field"] == "schemaId"
    assert client.get(f"/api/alerts?code={KEY}").status_code == 405
    assert client.get("/api/nothing").status_code == 404


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_event_keys = st.sampled_from(["id", "topic", "subject", "eventType", "eventTime", "dataVersion", "data"])
_events = st.lists(st.dictionaries(_event_keys, _json, max_size=7), max_size=5)
_bodies = st.one_of(
    _json.map(lambda v: json.dumps(v).encode()),
    _events.map(lambda v: json.dumps(v).encode()),
    _events.map(lambda v: json.dumps(v).encode()[: max(0, len(json.dumps(v)) // 2)]),  # truncated
    st.binary(max_size=200),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
def test_no_payload_crashes_the_webhooks(client, body):
    r = client.post(f"{EG}?functionName=eventgrid&code={SYSTEM_KEY}", content=body)
    assert r.status_code in (200, 400), r.text
    r = client.post(f"/api/alerts?code={KEY}", content=body)
    assert r.status_code in (202, 400), r.text


class FakeTrigger:
    def __init__(self, binding, **kw):
        self.binding = binding
        self.__dict__.update(kw)

    def get_binding_name(self):
        return self.binding


class FakeFunction:
    def __init__(self, name, binding, fn, **kw):
        self.name, self.trigger, self.fn = name, FakeTrigger(binding, **kw), fn

    def get_function_name(self):
        return self.name

    def get_trigger(self):
        return self.trigger

    def get_user_function(self):
        return self.fn


def test_queue_poller_retries_then_poisons_and_deletes_on_success(azurite, monkeypatch):
    from azure.storage.queue import QueueClient

    name = f"q-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SERVE_TEST_QUEUE", name)
    seen: list[tuple[bytes, int]] = []

    def work(msg):
        seen.append((msg.get_body(), msg.dequeue_count))
        if msg.get_body() == b"bad":
            raise RuntimeError("nope")

    fn = FakeFunction("w", "queueTrigger", work, queue_name="%SERVE_TEST_QUEUE%", connection="X")
    host = serve.Host([fn], KEY, azurite, max_dequeue_count=3, retry_delay=0, workers=2, poll_max=0.05)
    q = QueueClient.from_connection_string(azurite, name)
    q.create_queue()
    poison = QueueClient.from_connection_string(azurite, name + "-poison")
    poison.create_queue()
    for text in (b"good", b"bad"):
        q.send_message(base64.b64encode(text).decode())
    host.start()
    try:
        wait_until(lambda: list(poison.peek_messages()), "the bad message reaches the poison queue")
    finally:
        host.stop()
    assert [c for b, c in seen if b == b"bad"] == [1, 2, 3]
    assert [c for b, c in seen if b == b"good"] == [1]
    assert [base64.b64decode(m.content) for m in poison.peek_messages()] == [b"bad"]
    assert q.get_queue_properties().approximate_message_count == 0


def test_timers_fire_now_and_on_their_ncrontab_schedule(monkeypatch):
    fired = []
    monkeypatch.setenv("SERVE_TEST_SCHEDULE", "* * * * * *")
    fn = FakeFunction("t", "timerTrigger", lambda timer: fired.append(timer.past_due), schedule="%SERVE_TEST_SCHEDULE%")
    host = serve.Host([fn], KEY, run_timers_now=True)
    host.start()
    try:
        wait_until(lambda: len(fired) >= 2, "the timer fires now and on its next second")
    finally:
        host.stop()
    assert fired[:2] == [False, False]
    assert serve.next_fire("0 30 2 * * *", datetime(2026, 1, 1, 3, 0)) == datetime(2026, 1, 2, 2, 30)
    with pytest.raises(SettingsError, match="6 NCRONTAB"):
        serve.next_fire("daily", datetime(2026, 1, 1))
    with pytest.raises(SettingsError, match="NOT_SET"):
        serve.resolve("%NOT_SET%", {})


def test_settings_file_fills_only_what_is_unset(tmp_path: Path):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "file", "B": "file"}}))
    env = {"A": "env"}
    assert serve.load_settings(path, env) == ["B"]
    assert env == {"A": "env", "B": "file"}
    assert serve.load_settings(tmp_path / "missing.json", env) == []
    assert serve.host_settings()["maxDequeueCount"] == 5


def test_serve_help_teaches():
    out = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=120)
    assert out.exit_code == 0
    for word in ("--port", "--host", "--storage", "--settings", "--key", "--run-timers-now", "local.settings.json"):
        assert word in out.output


def test_the_cryptward_serve_command_starts_and_answers(azurite, tmp_path):
    """The command a user types (the console script, from any folder), not only the host object."""
    import shutil
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    root = Path(__file__).resolve().parents[2]
    exe = shutil.which("cryptward", path=str(Path(sys.executable).parent))
    assert exe, "the cryptward console script is not installed in this venv"

    def launch() -> tuple[subprocess.Popen[str], int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = [exe, "serve", "--port", str(port), "--storage", azurite, "--key", "k3y"]
        args += ["--settings", str(root / "local.settings.json")]
        return subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), port

    def health():
        if proc.poll() is not None:
            return "exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=limit(WAIT))
        except httpx.TransportError:  # not listening yet
            return None

    # A free port can be taken by another process on a shared machine before serve binds it: then try another.
    for _ in range(5):
        proc, port = launch()
        r = wait_until(health, "cryptward serve answers /api/health or exits", within=START, every=0.2)
        output = proc.stdout.read() if r == "exited" and proc.stdout else ""
        if r != "exited" or "address already in use" not in output:
            break
    assert r != "exited", output
    try:
        assert r.status_code == 200 and r.json()["service"] == "cryptward"
        timeout = limit(WAIT)
        assert httpx.post(f"http://127.0.0.1:{port}/api/alerts", json={}, timeout=timeout).status_code in (401, 403)
    finally:
        proc.terminate()
        proc.wait(timeout=limit(30))
