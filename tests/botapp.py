"""The bot as it runs in Azure, for end-to-end tests and benches: `cryptward serve` in this process (function_app.py's
own functions) against Azurite, acting as the sandbox's `bot` managed identity with infra/cryptward-role.json, with
the sandbox's Event Grid subscribed to serve's webhook.

    app = start_bot(sandbox, azurite, env=monkeypatch.setenv, debounce=0.5)
    ...                        # act as the admin
    app.settle()               # the queue is empty, nothing is running, the sandbox's call log stands still
    app.writes()               # the bot's successful writes: (method, path)
    app.stop()
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WORKSPACE = "/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
WORKSPACE_API = "2023-09-01"
KEY = "test-function-key"


def make_workspace(sandbox: Any) -> str:
    from azure.mgmt.resource.resources import ResourceManagementClient

    rm = sandbox.client(ResourceManagementClient)
    rm.resource_groups.create_or_update("rg-ops", {"location": "westeurope"})
    ws = f"/subscriptions/{sandbox.subscription_id}{WORKSPACE}"
    body = {"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}
    rm.resources.begin_create_or_update_by_id(ws, body, api_version=WORKSPACE_API).result()
    return ws


@dataclass
class BotApp:
    sandbox: Any
    running: Any
    queue_name: str
    connection: str
    mark: int

    def writes(self, since: int | None = None) -> list[tuple[str, str]]:
        oid = self.sandbox.principal("bot").object_id
        calls = self.sandbox.calls(self.mark if since is None else since)
        return [
            (c["method"], c["path"].lower())
            for c in calls
            if c["principal"] == oid and c["method"] not in ("GET", "HEAD") and (c["status"] or 500) < 400
        ]

    def pending_messages(self) -> int:
        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(self.connection, self.queue_name) as q:
            return int(q.get_queue_properties().approximate_message_count or 0)

    def poisoned(self) -> list[str]:
        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(self.connection, self.queue_name + "-poison") as q:
            return [str(m.content) for m in q.peek_messages(max_messages=32)]

    def settle(self, timeout: float = 20.0, quiet: float = 0.4) -> None:
        """Wait until the queue is empty and the sandbox's call log has stood still for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        last, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.sandbox.calls(self.mark))
            if count != last or self.pending_messages():
                last, still_since = count, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return
            time.sleep(0.05)
        raise AssertionError(f"the bot did not settle within {timeout} s ({self.pending_messages()} queued)")

    def wait_for(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.02)

    def subscribe(self, name: str = "cryptward", scope: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "endpointUrl": self.running.eventgrid_url(), **extra}
        if scope:
            body["scope"] = scope
        made = self.sandbox.admin("POST", "/_sandbox/eventSubscriptions", body)

        def ready() -> bool:
            subs = self.sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"]
            return any(s["id"] == made["id"] and s["properties"]["provisioningState"] == "Succeeded" for s in subs)

        assert self.wait_for(ready, 5), "the Event Grid subscription did not validate"
        return dict(made)

    def stop(self) -> None:
        self.running.stop()


def bot_env(sandbox: Any, azurite: str, *, debounce: float = 0.5, **extra: str) -> dict[str, str]:
    """The bot's app settings: the sandbox's client settings (ARM endpoint, CA, subscription) and the bot's own."""
    tag = uuid.uuid4().hex[:8]
    return {
        **sandbox.env(),
        "AzureWebJobsStorage": azurite,
        "CRYPTWARD_TABLE_PREFIX": f"t{tag}",
        "CRYPTWARD_WORK_QUEUE": f"cw-{tag}",
        "AZURE_CLIENT_ID": sandbox.principal("bot").client_id,
        "CRYPTWARD_DEBOUNCE_SECONDS": str(debounce),
        "CRYPTWARD_SCOPES": "",
        "CRYPTWARD_POLLING_INTERVAL": "0",
        "CRYPTWARD_ROUTES": "",
        "CRYPTWARD_ALERT_KEY": KEY,
        "SWEEP_SCHEDULE": "0 0 0 1 1 *",
        "ROTATION_SCHEDULE": "0 0 0 1 1 *",
        "NOTICES_SCHEDULE": "0 0 0 1 1 *",
        **extra,
    }


def start_bot(
    sandbox: Any,
    azurite: str,
    setenv: Callable[[str, str], None],
    *,
    debounce: float = 0.5,
    subscribe: bool = True,
    workers: int = 8,
    retry_delay: float = 1,
    **extra: str,
) -> BotApp:
    import socket

    from remediations.cli.serve import make_host, start_in_thread

    with socket.socket() as s:  # serve's port is known before its runtime is built: approval links point at it
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    extra.setdefault("CRYPTWARD_PUBLIC_URL", f"http://127.0.0.1:{port}")
    env = bot_env(sandbox, azurite, debounce=debounce, **extra)
    for k, v in env.items():
        setenv(k, v)
    host = make_host(key=KEY, workers=workers, retry_delay=retry_delay, poll_max=0.1)  # reads the settings once
    running = start_in_thread(host, port)
    app = BotApp(sandbox, running, env["CRYPTWARD_WORK_QUEUE"], azurite, len(sandbox.calls()))
    if subscribe:
        app.subscribe()
    app.mark = len(sandbox.calls())
    return app
