"""The bot as it runs in Azure, for end-to-end tests and benches: `cryptward serve` in this process (function_app.py's
own functions) against Azurite, acting as the sandbox's `bot` managed identity with infra/cryptward-role.json, with
the sandbox's Event Grid subscribed to serve's webhook.

    app = start_bot(sandbox, azurite, env=monkeypatch.setenv, debounce=0.5)
    ...                        # act as the admin
    app.settle()               # nothing queued, in flight or waiting for delivery, and the call log stands still
    app.writes()               # the bot's successful writes: (method, path)
    app.stop()

Waits are for conditions. While the bot works it gets the time it needs: `settle` and `wait_for` fail only when
nothing has moved for `STALL` seconds (no new call in the sandbox's log, no change in what is queued, in flight at
serve or waiting for delivery in the sandbox); pytest's per-test timeout bounds the whole.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.role_coverage import grant_workspace_role
from tests.waits import limit

WORKSPACE = "/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
WORKSPACE_API = "2023-09-01"
KEY = "test-function-key"
# How long the bot may make no progress at all before a wait gives up. Its longest still spell here is a throttled
# call sleeping its Retry-After (seconds) or a failed item waiting its retry delay (1 s): this is many times that.
STALL = 60.0
# serve's wait before a failed message's next try: host.json's visibilityTimeout (10 s), shortened for the tests.
RETRY_DELAY = 1.0


def make_workspace(sandbox: Any) -> str:
    from azure.mgmt.resource.resources import ResourceManagementClient

    rm = sandbox.client(ResourceManagementClient)
    rm.resource_groups.create_or_update("rg-ops", {"location": "westeurope"})
    ws = f"/subscriptions/{sandbox.subscription_id}{WORKSPACE}"
    body = {"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}
    rm.resources.begin_create_or_update_by_id(ws, body, api_version=WORKSPACE_API).result()
    grant_workspace_role(sandbox, ws)  # as the deployment does for its workspace (infra/app/workspace-access.bicep)
    return ws


@dataclass
class BotApp:
    sandbox: Any
    running: Any
    queue_name: str
    connection: str
    mark: int  # where this test's part of the sandbox's call log starts (an index into it)
    _log: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the call log, as far as fetched
    _queue: Any = field(default=None, repr=False)

    def calls(self, since: int | None = None) -> list[dict[str, Any]]:
        """The sandbox's call log from `since` (default: the mark). The log only grows: what was fetched is kept,
        and each look fetches only the calls made since the last one."""
        got = self.sandbox.admin("GET", f"/_sandbox/calls?since={len(self._log)}")
        self._log.extend(got["value"])
        return self._log[self.mark if since is None else since :]

    def writes(self, since: int | None = None) -> list[tuple[str, str]]:
        oid = self.sandbox.principal("bot").object_id
        return [
            (c["method"], c["path"].lower())
            for c in self.calls(since)
            if c["principal"] == oid and c["method"] not in ("GET", "HEAD") and (c["status"] or 500) < 400
        ]

    def pending_messages(self) -> int:
        """Messages on the work queue, visible or not: waiting for their debounce window or retry, and those a worker
        holds while it works (a message is deleted when its work is done)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.queue import QueueClient

        if self._queue is None:
            self._queue = QueueClient.from_connection_string(self.connection, self.queue_name)
        try:
            return int(self._queue.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:  # serve's queue poller has not made it yet: nothing queued
            return 0

    def in_flight(self) -> int:
        """Requests serve is answering now (Event Grid deliveries, alerts, approvals)."""
        return len(self.running.server.server_state.tasks)

    def undelivered(self) -> int:
        """Events the sandbox's Event Grid still has to deliver (or deliver again), over all its subscriptions."""
        return sum(
            int(s.get("queued") or 0) for s in self.sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"]
        )

    def poisoned(self) -> list[str]:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(self.connection, self.queue_name + "-poison") as q:
            try:
                return [str(m.content) for m in q.peek_messages(max_messages=32)]
            except ResourceNotFoundError:  # not made yet by serve's queue poller: nothing poisoned
                return []

    def _state(self) -> tuple[int, int, int, int]:
        """What moves while the bot works: calls made, messages queued, requests in flight, events undelivered."""
        return len(self.calls(0)), self.pending_messages(), self.in_flight(), self.undelivered()

    def settle(self, quiet: float = 0.4, stall: float = STALL) -> None:
        """Wait until the bot has nothing left to do: no message on its queue, no request in flight at serve, no event
        the sandbox has yet to deliver, and no new call in the sandbox's log, all of it for `quiet` seconds in a row
        (a margin: each step of the chain is counted until the next one has begun). Fails when nothing moved for
        `stall` seconds (scaled by CRYPTWARD_TEST_SLOWDOWN) before that."""
        last, since = self._state(), time.monotonic()
        while True:
            time.sleep(0.1)
            now = self._state()
            if now != last:
                last, since = now, time.monotonic()
            elif now[1:] == (0, 0, 0) and time.monotonic() - since >= quiet:
                return
            elif time.monotonic() - since > limit(stall):
                calls, queued, serving, undelivered = now
                raise AssertionError(
                    f"the bot did not settle: nothing moved for {limit(stall):g} s ({queued} queued, {serving} "
                    f"request(s) at serve, {undelivered} event(s) undelivered, {calls} calls in the log)"
                )

    def wait_for(self, check: Callable[[], Any], stall: float = STALL, every: float = 0.1) -> Any:
        """Call `check` until it returns something true, and return that; return its last (false) value when the bot
        made no progress for `stall` seconds (scaled) meanwhile (the caller's assertion then says what is missing)."""
        last, since = self._state(), time.monotonic()
        while True:
            value = check()
            if value:
                return value
            now = self._state()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > limit(stall):
                return value
            time.sleep(every)

    def subscribe(self, name: str = "cryptward", scope: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"name": name, "endpointUrl": self.running.eventgrid_url(), **extra}
        if scope:
            body["scope"] = scope
        made = self.sandbox.admin("POST", "/_sandbox/eventSubscriptions", body)

        def ready() -> bool:
            subs = self.sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"]
            return any(s["id"] == made["id"] and s["properties"]["provisioningState"] == "Succeeded" for s in subs)

        assert self.wait_for(ready), "the Event Grid subscription did not validate"
        return dict(made)

    def stop(self) -> None:
        self.running.stop()
        if self._queue is not None:
            self._queue.close()


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
    retry_delay: float = RETRY_DELAY,
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
    app = BotApp(sandbox, running, env["CRYPTWARD_WORK_QUEUE"], azurite, 0)
    if subscribe:
        app.subscribe()
    app.mark = len(app.calls(0))
    return app
