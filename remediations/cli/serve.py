"""`cryptward serve`: host function_app.py's own function objects locally, where Functions Core Tools cannot run.

A thin adapter around the same Python functions the Functions host calls (`app.get_functions()`, cached once in
remediations/cli/functions.py), not a second implementation:

- `POST /runtime/webhooks/EventGrid?functionName=NAME` — the host's Event Grid webhook: the subscription validation
  handshake (`{"validationResponse": code}`), then one `func.EventGridEvent` per event of the delivery, answered 200
  (500 when a function failed, so Event Grid retries). Like the host it needs the Event Grid extension's system key
  (`code=`; CRYPTWARD_EVENTGRID_KEY, else a random one printed at start), checked before anything else is looked at;
  a function key does not open it. A body over 1 MB is refused (413) before it is read whole.
- `/api/<route>` — HTTP triggers: `func.HttpRequest` in, `func.HttpResponse` out. A route whose auth level is not
  anonymous needs the function key (`?code=` or the `x-functions-key` header): 401 without one, 403 with a wrong
  one. Bodies over 1 MB are refused (413) before they are read whole; each function keeps a smaller limit.
- The queue trigger: a poller against the storage account (Azurite) that receives with a lease, calls the function
  with a `func.QueueMessage` (body decoded from base64, `dequeue_count`), deletes the message on success, makes it
  visible again after host.json's `visibilityTimeout` on failure, and moves it to `<queue>-poison` after
  `maxDequeueCount` attempts, as the host does.
- Timer triggers: NCRONTAB (6 fields, seconds first) through croniter; `--run-timers-now` fires each once at start.

starlette, uvicorn and croniter are development tools (requirements-dev.txt), imported only here and only when
serving: the Functions host never installs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from remediations.cli.hostsettings import MissingDependency, load_settings, next_fire, require, resolve
from remediations.cli.pollers import Pollers
from remediations.runtime import Runtime
from remediations.settings import host_settings

log = logging.getLogger("cryptward.serve")

ROOT = Path(__file__).resolve().parents[2]
KEY_SETTING = "CRYPTWARD_ALERT_KEY"
# The Event Grid webhook takes the host's system key for the Event Grid extension (`eventgrid_extension` in Azure,
# Microsoft Learn "Azure Event Grid trigger for Azure Functions": the webhook URL carries `code={systemkey}`), not a
# function key: a holder of the alerts key cannot forge Event Grid deliveries, nor the other way round.
SYSTEM_KEY_SETTING = "CRYPTWARD_EVENTGRID_KEY"
STORAGE_SETTING = "AzureWebJobsStorage"
MAX_EVENTGRID_BYTES = 1024 * 1024  # Event Grid delivers at most 1 MB in one batch (Event Grid quotas and limits)
MAX_HTTP_BYTES = 1024 * 1024  # what the host reads of any HTTP request; each function keeps a smaller limit of its own
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"


@dataclass
class Host(Pollers):
    """The function app's functions, bound to local transports."""

    functions: Sequence[Any]
    key: str = field(repr=False)
    storage: str = field(default="", repr=False)
    system_key: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    max_dequeue_count: int = 5
    retry_delay: float = 10.0
    workers: int = 8
    lease_seconds: int = 300
    poll_max: float = 1.0
    run_timers_now: bool = False
    runtime: Runtime | None = field(default=None, repr=False)  # make_host's; else the process's when started
    _previous: Runtime | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _unhook: Callable[[], None] | None = None

    def by_trigger(self, binding: str) -> list[Any]:
        return [f for f in self.functions if f.get_trigger().get_binding_name() == binding]

    # -- keys ---------------------------------------------------------------------------------------------------

    def authorized(self, headers: Mapping[str, str], query: Mapping[str, str], key: str | None = None) -> int | None:
        """None when the request carries the key (the function key unless another is named); else 401 (no key) or
        403 (a wrong one)."""
        given = query.get("code") or headers.get("x-functions-key")
        if not given:
            return 401
        return None if hmac.compare_digest(given.encode(), (key or self.key).encode()) else 403

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def app(self) -> Any:
        require("starlette")
        from starlette.applications import Starlette
        from starlette.routing import Route

        routes = [
            Route("/runtime/webhooks/{name:str}", self._eventgrid, methods=["POST"]),
            Route(
                "/api/{route:path}", self._http, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
            ),
        ]
        return Starlette(routes=routes)

    async def _eventgrid(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse, Response

        refused = self.authorized(request.headers, request.query_params, self.system_key)
        if refused:  # before anything else: nothing about the app is told to a caller without the key
            return JSONResponse({"error": "the Event Grid system key is required (code=)"}, refused)
        if request.path_params["name"].lower() != "eventgrid":
            return JSONResponse({"error": "unknown webhook extension"}, 404)
        name = request.query_params.get("functionName") or ""
        fn = next((f for f in self.by_trigger("eventGridTrigger") if f.get_function_name() == name), None)
        if fn is None:
            return JSONResponse({"error": f"no Event Grid function {name[:80]!r}"}, 404)
        body = await _bounded_body(request, MAX_EVENTGRID_BYTES)
        if body is None:
            return JSONResponse({"error": f"more than {MAX_EVENTGRID_BYTES} bytes"}, 413)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "the body is not JSON"}, 400)
        events = data if isinstance(data, list) else [data]
        validation = next((e for e in events if isinstance(e, dict) and e.get("eventType") == VALIDATION), None)
        if validation is not None or request.headers.get("aeg-event-type") == "SubscriptionValidation":
            inner = (validation or {}).get("data")
            code = inner.get("validationCode") if isinstance(inner, dict) else None
            if not isinstance(code, str):
                return JSONResponse({"error": "a SubscriptionValidationEvent needs data.validationCode"}, 400)
            return JSONResponse({"validationResponse": code})
        user = fn.get_user_function()
        limit = asyncio.Semaphore(self.workers)

        async def one(event: Any) -> bool:
            if not isinstance(event, dict):
                log.warning("event grid delivery: an element is not an event object; acknowledged")
                return True
            async with limit:
                try:
                    await run_in_threadpool(user, _eventgrid_event(event))
                    return True
                except Exception:
                    log.exception("function %s failed on event %s", name, str(event.get("id"))[:60])
                    return False

        results = await asyncio.gather(*(one(e) for e in events))
        return Response(status_code=200 if all(results) else 500)

    async def _http(self, request: Any) -> Any:
        import azure.functions as func
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse, Response

        route = request.path_params["route"].strip("/").lower()
        fn = next(
            (f for f in self.by_trigger("httpTrigger") if (f.get_trigger().route or "").strip("/").lower() == route),
            None,
        )
        if fn is None:
            return JSONResponse({"error": "no such function"}, 404)
        trigger = fn.get_trigger()
        methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods or []}
        if methods and request.method not in methods:
            return JSONResponse({"error": f"method not allowed; allowed: {', '.join(sorted(methods))}"}, 405)
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "function").lower()
        if level != "anonymous":
            refused = self.authorized(request.headers, request.query_params)
            if refused:
                return JSONResponse({"error": "a function key is required (code= or x-functions-key)"}, refused)
        body = await _bounded_body(request, MAX_HTTP_BYTES)
        if body is None:
            return JSONResponse({"error": f"more than {MAX_HTTP_BYTES} bytes"}, 413)
        req = func.HttpRequest(
            request.method,
            str(request.url),
            headers=dict(request.headers),
            params=dict(request.query_params),
            route_params={},
            body=body,
        )
        try:
            resp = await run_in_threadpool(fn.get_user_function(), req)
        except Exception:
            log.exception("function %s failed", fn.get_function_name())
            return Response(status_code=500)
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "content-type")}
        return Response(resp.get_body(), resp.status_code, headers, media_type=resp.mimetype)

    # -- life -----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the queue pollers and the timers (threads); the HTTP side is `app()`."""
        from remediations.runtime import current

        listeners = (self.runtime or current()).listeners
        listeners.append(self._wake.set)
        self._unhook = lambda: listeners.remove(self._wake.set) if self._wake.set in listeners else None
        for fn in self.by_trigger("queueTrigger"):
            self._spawn(self._queue_loop, fn)
        for fn in self.by_trigger("timerTrigger"):
            next_fire(resolve(fn.get_trigger().schedule), datetime.now())  # a bad schedule fails now, not later
            self._spawn(self._timer_loop, fn)

    def _spawn(self, target: Callable[[Any], None], fn: Any) -> None:
        thread = threading.Thread(target=target, args=(fn,), name=f"cryptward-{fn.get_function_name()}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._unhook:
            self._unhook()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.runtime is not None:
            from remediations.runtime import current, install

            if current() is self.runtime:
                install(self._previous)
            self.runtime.close()


async def _bounded_body(request: Any, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be over `limit` bytes (a Content-Length over it, or the
    stream passing it): a flood is refused without being held in memory."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _eventgrid_event(event: dict[str, Any]) -> Any:
    """A func.EventGridEvent from one event of a delivery, its fields as sent (the function validates them)."""
    import azure.functions as func

    when = event.get("eventTime")
    parsed = None
    if isinstance(when, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(when)
    return func.EventGridEvent(
        id=event.get("id"),  # type: ignore[arg-type]
        data=event.get("data"),  # type: ignore[arg-type]
        topic=event.get("topic"),  # type: ignore[arg-type]
        subject=event.get("subject"),  # type: ignore[arg-type]
        event_type=event.get("eventType"),  # type: ignore[arg-type]
        event_time=parsed,
        data_version=event.get("dataVersion"),  # type: ignore[arg-type]
    )


def make_host(
    *,
    key: str | None = None,
    system_key: str | None = None,
    storage: str | None = None,
    workers: int | None = None,
    retry_delay: float | None = None,
    poll_max: float = 1.0,
    run_timers_now: bool = False,
) -> Host:
    """A Host over function_app.py's functions, with host.json's queue settings unless given, and the process's
    runtime built now from the environment (`storage` replaces AzureWebJobsStorage) and installed until `stop()`."""
    from remediations.cli.functions import functions
    from remediations.runtime import install
    from remediations.settings import Settings

    env = dict(os.environ)
    if storage:
        env[STORAGE_SETTING] = storage
    settings = Settings.from_env(env)
    if retry_delay is not None:  # serve's wait before a failed item's next try is the worker's too (host.json's 10 s)
        settings = dataclasses.replace(
            settings, intake=dataclasses.replace(settings.intake, retry_seconds=float(retry_delay))
        )
    rt = Runtime(settings)
    hs = rt.settings.host
    host = Host(
        functions(),
        key or env.get(KEY_SETTING) or "",
        storage or "",
        max_dequeue_count=hs.max_dequeue_count,
        retry_delay=hs.retry_seconds if retry_delay is None else retry_delay,
        workers=workers or min(hs.batch_size, 8),
        poll_max=poll_max,
        run_timers_now=run_timers_now,
        runtime=rt,
    )
    host.system_key = system_key or env.get(SYSTEM_KEY_SETTING) or host.system_key
    host._previous = install(rt)
    return host


@dataclass
class Running:
    """A serve started in this process on a thread (tests, benches)."""

    host: Host
    server: Any
    thread: threading.Thread
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def eventgrid_url(self, function: str = "eventgrid") -> str:
        return f"{self.base_url}/runtime/webhooks/EventGrid?functionName={function}&code={self.host.system_key}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.host.stop()


def start_in_thread(
    host: Host, port: int = 0, *, background: bool = True, sock: socket.socket | None = None
) -> Running:
    """Serve `host` on 127.0.0.1 from a thread; returns once it listens. `background=False`: HTTP only (no queue
    pollers, no timers). `sock`: an already bound socket to serve on (its port is known before the host is built,
    and no other process can take it in between); without one and without a port, one is bound here."""
    uvicorn = require("uvicorn")
    if sock is None and not port:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
    if sock is not None:
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        host.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    sockets = {"sockets": [sock]} if sock is not None else {}
    thread = threading.Thread(target=server.run, kwargs=sockets, name="cryptward-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("cryptward serve did not start")
        time.sleep(0.01)
    if background:
        host.start()
    return Running(host, server, thread, port)


def run(
    *,
    host: str,
    port: int,
    settings_file: Path,
    storage: str | None,
    key: str | None,
    run_timers_now: bool,
    workers: int | None,
    echo: Callable[[str], None] = print,
) -> None:
    """`cryptward serve` in the foreground until Ctrl-C."""
    loaded = load_settings(settings_file)
    uvicorn = require("uvicorn")
    require("starlette")
    key = key or os.environ.get(KEY_SETTING)
    generated = not key
    key = key or secrets.token_urlsafe(24)
    h = make_host(key=key, storage=storage, workers=workers, run_timers_now=run_timers_now)
    base = f"http://{host}:{port}"
    shown = f"{key} (generated)" if generated else key
    echo(f"cryptward serve: {len(loaded)} setting(s) from {settings_file}; function key {shown}")
    system = "from " + SYSTEM_KEY_SETTING if os.environ.get(SYSTEM_KEY_SETTING) else f"{h.system_key} (generated)"
    echo(f"cryptward serve: Event Grid system key {system}")
    for f in h.functions:
        trigger = f.get_trigger()
        kind = trigger.get_binding_name()
        where = {
            "eventGridTrigger": f"POST {base}/runtime/webhooks/EventGrid?functionName={f.get_function_name()}"
            "&code=SYSTEMKEY",
            "httpTrigger": f"{base}/api/{getattr(trigger, 'route', '')}",
            "queueTrigger": f"queue {getattr(trigger, 'queue_name', '')}",
            "timerTrigger": f"schedule {getattr(trigger, 'schedule', '')}",
        }.get(kind, "")
        echo(f"  {f.get_function_name():<10} {kind:<17} {where}")
    h.start()
    config = uvicorn.Config(h.app(), host=host, port=port, log_level="info", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run()  # returns on Ctrl-C (uvicorn handles SIGINT / SIGTERM)
    finally:
        echo("cryptward serve: stopping (waiting for running functions)")
        h.stop()


__all__ = [
    "Host",
    "MissingDependency",
    "Running",
    "host_settings",
    "load_settings",
    "make_host",
    "next_fire",
    "resolve",
    "run",
]
