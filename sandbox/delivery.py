"""Event Grid's delivery side: publish events to matching event subscriptions and push them to webhooks the way
Event Grid does, asynchronously on the server's event loop (never inside the request that caused them).

- Handshake: on create, POST `[SubscriptionValidationEvent]` with `aeg-event-type: SubscriptionValidation`; only
  200 + `{"validationResponse": code}` makes the subscription Succeeded (CloudEvents: the OPTIONS abuse-protection
  handshake). Anything else: Failed, and the create's async operation fails with code "Url validation".
- Notifications: POST arrays (at most maxEventsPerBatch / preferredBatchSizeInKilobytes) with `aeg-event-type:
  Notification`, `aeg-subscription-name` (upper case), `aeg-delivery-count` (0 on the first attempt),
  `aeg-data-version`, `aeg-metadata-version`.
- Any 2xx acknowledges. 400, 401, 403 and 413 are not retried (dead-lettered at once, deadLetterReason
  "DeliveryFailed": the sandbox's word, unverified); other answers, timeouts (`settings.delivery_timeout_s`, real
  seconds, Event Grid's 30 s) and connection errors are retried on Event Grid's schedule (delivery-and-retry docs):
  10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h, until maxDeliveryAttempts
  ("MaxDeliveryAttemptsExceeded") or eventTimeToLiveInMinutes ("TimeToLiveExceeded") runs out: dead-lettered if the
  subscription has a deadLetterDestination (kept in the state, GET /_sandbox/deadletters), else dropped.
- Injected delivery faults (sandbox/faults.py, `"on": "delivery"`) apply before each attempt.
- Time: a wait of `w` seconds is due after `w / settings.delivery_time_scale` real seconds (default scale 1000:
  10 s -> 10 ms) or as soon as the sandbox clock has moved `w` past the failure, whichever is first; a scale of 0
  waits for the clock only. Event ages (TTL) count the same way.
- At least once: `settings.duplicate_rate` re-delivers acknowledged batches, `settings.reorder` takes waiting events
  in random order; both draw from a `random.Random(settings.delivery_seed)` so runs are reproducible.

Before the server's loop runs (seeding in-process), events and handshakes wait in the queues; `start` (a startup
hook run by sandbox/runner.py) sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx

from sandbox import events
from sandbox.state import new_id

if TYPE_CHECKING:
    from sandbox.server import Sandbox

ES_TYPE = "Microsoft.EventGrid/eventSubscriptions"
_ES_MARK = "/providers/microsoft.eventgrid/eventsubscriptions/"
RETRY_SCHEDULE = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200)  # seconds; the last one repeats
NO_RETRY = frozenset({400, 401, 403, 413})
DEADLETTERS = "eventgrid.deadletters"
_ENGINES: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()


def retry_delay(failed_attempts: int) -> int:
    """Event Grid's wait before the next attempt, after `failed_attempts` (>= 1) failures."""
    return RETRY_SCHEDULE[min(failed_attempts, len(RETRY_SCHEDULE)) - 1]


def scope_of(es_id: str) -> str:
    return es_id[: es_id.lower().rindex(_ES_MARK)]


def outcome_name(status: int) -> str:
    """How Event Grid names an HTTP answer in `lastDeliveryOutcome` and handshake errors (.NET's HttpStatusCode)."""
    try:
        return "".join(w.title() for w in HTTPStatus(status).phrase.replace("-", " ").split())
    except ValueError:
        return str(status)


@dataclass
class Pending:
    """One event on its way to one subscription."""

    event: dict[str, Any]
    published_real: float
    published_clock: float
    publish_time: str
    attempts: int = 0
    last_outcome: str = ""
    last_attempt_time: str = ""
    due_real: float = 0.0
    due_clock: float = 0.0
    duplicate: bool = False


@dataclass
class Queue:
    es_id: str
    ready: list[Pending] = field(default_factory=list)
    waiting: list[Pending] = field(default_factory=list)  # failed, due again later
    sending: int = 0  # events in the batch on its way (not acknowledged yet)
    task: asyncio.Task[None] | None = None


def engine_for(sb: Sandbox) -> Engine:
    return _ENGINES[sb]


def install(sb: Sandbox) -> Engine:
    engine = Engine(sb)
    _ENGINES[sb] = engine
    sb.startup_hooks.append(engine.start)
    return engine


class Engine:
    """The delivery engine of one sandbox."""

    def __init__(self, sb: Sandbox) -> None:
        self._sb = weakref.ref(sb)
        self.state = sb.state
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.client: httpx.AsyncClient | None = None
        self.queues: dict[str, Queue] = {}
        self.log: list[dict[str, Any]] = []  # every POST made: handshakes and notifications
        self._deferred: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._rng = random.Random(0)
        self._seed = 0
        self.state.on_reset(self._on_reset)
        self.state.clock.on_tick(self._on_tick)

    @property
    def sb(self) -> Sandbox:
        sb = self._sb()
        assert sb is not None
        return sb

    # -- threads: everything below runs on the loop, or before it exists --------------------------------------------
    def _soon(self, fn: Callable[[], None]) -> None:
        if self.loop is None or threading.get_ident() == self._thread:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def _spawn(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self.loop is None:
            self._deferred.append(factory)
            return
        task = self.loop.create_task(factory())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Run once the server's loop serves: open the client, send what waited, schedule retries."""
        self.loop, self._thread = asyncio.get_running_loop(), threading.get_ident()
        context = ssl.create_default_context()
        if self.sb.ca_path is not None:
            context.load_verify_locations(cafile=str(self.sb.ca_path))
        self.client = httpx.AsyncClient(verify=context, follow_redirects=False, trust_env=False)
        self._wake = asyncio.Event()
        deferred, self._deferred = self._deferred, []
        for factory in deferred:
            self._spawn(factory)
        for key in list(self.queues):
            self._kick(key)
        self._spawn(self._scheduler)

    def _on_reset(self) -> None:
        def clear() -> None:
            for q in self.queues.values():
                if q.task is not None:
                    q.task.cancel()
            self.queues.clear()
            self.log.clear()
            self._rng, self._seed = random.Random(0), 0

        self._soon(clear)

    def _on_tick(self) -> None:
        if self._wake is not None:
            wake = self._wake
            self._soon(wake.set)

    def _random(self) -> random.Random:
        seed = self.state.settings.delivery_seed
        if seed != self._seed:
            self._rng, self._seed = random.Random(seed), seed
        return self._rng

    # -- subscriptions -----------------------------------------------------------------------------------------------
    def active(self) -> list[dict[str, Any]]:
        return [es for es in self.state.of_type(ES_TYPE) if es["properties"].get("provisioningState") == "Succeeded"]

    def publish(self, es: dict[str, Any], event: dict[str, Any]) -> None:
        """Queue one event for one subscription if its filter lets it through (from any thread)."""
        if not events.matches(es["properties"].get("filter"), event):
            return
        now = self.state.clock
        pending = Pending(event, time.monotonic(), now.timestamp(), now.iso())
        key = es["id"].lower()

        def enqueue() -> None:
            self.queues.setdefault(key, Queue(es["id"])).ready.append(pending)
            self._kick(key)

        self._soon(enqueue)

    def describe(self, es: dict[str, Any]) -> dict[str, Any]:
        """An admin view: the stored subscription plus what is queued for it (events not acknowledged yet: waiting to
        be sent, on their way, or waiting for a retry)."""
        q = self.queues.get(es.get("id", "").lower())
        return {**es, "queued": len(q.ready) + q.sending + len(q.waiting) if q else 0}

    def forget(self, es_id: str) -> None:
        def drop() -> None:
            q = self.queues.pop(es_id.lower(), None)
            if q is not None and q.task is not None:
                q.task.cancel()

        self._soon(drop)

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(self.state.table(DEADLETTERS).get("value", []))

    # -- the validation handshake ------------------------------------------------------------------------------------
    def validate(self, es_id: str, op_id: str) -> None:
        self._spawn(lambda: self._validate(es_id, op_id))

    async def _validate(self, es_id: str, op_id: str) -> None:
        es = self.state.get(es_id)
        if es is None:
            return
        dest = es["properties"]["destination"]["properties"]
        url = dest["endpointUrl"]
        code = new_id()
        failure: str | None = None
        assert self.client is not None
        try:
            if es["properties"]["eventDeliverySchema"] == "CloudEventSchemaV1_0":
                r = await self.client.options(
                    url,
                    headers={"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"},
                    timeout=self.state.settings.delivery_timeout_s,
                )
                allowed = r.headers.get("webhook-allowed-origin", "")
                if r.status_code != 200 or allowed not in ("*", "eventgrid.azure.net"):
                    failure = f"Http OPTIONS request failed with response code {outcome_name(r.status_code)}."
            else:
                event = events.validation_event(
                    topic=es["properties"]["topic"],
                    code=code,
                    # Azure's shape; the sandbox has no manual (validationUrl) handshake, only the synchronous one
                    validation_url=(
                        f"https://rp-westeurope.eventgrid.azure.net:553/eventsubscriptions/{es['name'].lower()}"
                        f"/validate?id={code}&t={self.state.clock.iso()}&apiVersion=2018-05-01-preview&token={new_id()}"
                    ),
                    time=self.state.clock.iso(),
                    event_id=new_id(),
                )
                r = await self.client.post(
                    url,
                    content=json.dumps([event]),
                    headers=self._headers(es, "SubscriptionValidation", 0, "1"),
                    timeout=self.state.settings.delivery_timeout_s,
                )
                failure = _handshake_failure(r, code)
            self._log(es, "SubscriptionValidation", [code], 0, r.status_code)
        except httpx.HTTPError as exc:
            failure = "Http POST request failed with response code Unknown."
            self._log(es, "SubscriptionValidation", [code], 0, None, type(exc).__name__)
        self.finish_validation(es, op_id, failure)

    def finish_validation(self, es: dict[str, Any], op_id: str, failure: str | None) -> None:
        if self.state.get(es["id"]) is not es:
            return  # deleted or replaced meanwhile
        op = self.state.lros.get(op_id)
        es["properties"]["provisioningState"] = "Failed" if failure else "Succeeded"
        if op is None:
            return
        op["pollsLeft"] = 0
        if failure is None:
            op["status"] = "Succeeded"
            return
        stamp = datetime.now(UTC)
        op["status"] = "Failed"
        op["errorCode"] = "Url validation"
        op["errorMessage"] = (
            f"Webhook validation handshake failed for {es['properties']['destination']['properties']['endpointUrl']}. "
            f"{failure} For troublehooting, visit https://aka.ms/esvalidation. Activity id:{new_id()}, timestamp: "
            f"{stamp.month}/{stamp.day}/{stamp.year} {stamp.strftime('%I:%M:%S %p').lstrip('0')} (UTC)."
        )

    # -- notifications ------------------------------------------------------------------------------------------------
    def _kick(self, key: str) -> None:
        q = self.queues.get(key)
        if self.loop is None or q is None or not q.ready or q.task is not None:
            return
        q.task = self.loop.create_task(self._drain(key, q))

    async def _drain(self, key: str, q: Queue) -> None:
        try:
            while q.ready and self.queues.get(key) is q:
                es = self.state.get(q.es_id)
                if es is None:
                    q.ready.clear()
                    break
                batch = self._take(es, q)
                if batch:
                    await self._send(es, q, batch)
        finally:
            q.task = None
        if q.ready and self.queues.get(key) is q:
            self._kick(key)

    def _take(self, es: dict[str, Any], q: Queue) -> list[Pending]:
        """The next batch: expired events are dead-lettered first; `reorder` picks events at random."""
        settings, ttl = self.state.settings, es["properties"]["retryPolicy"]["eventTimeToLiveInMinutes"] * 60
        for p in [p for p in q.ready if p.attempts and self._age(p) >= ttl]:
            q.ready.remove(p)
            self._dead_letter(es, p, "TimeToLiveExceeded")
        dest = es["properties"]["destination"]["properties"]
        limit, budget = dest["maxEventsPerBatch"], dest["preferredBatchSizeInKilobytes"] * 1024
        batch: list[Pending] = []
        used = 0
        while q.ready and len(batch) < limit:
            index = self._random().randrange(len(q.ready)) if settings.reorder and len(q.ready) > 1 else 0
            size = len(json.dumps(q.ready[index].event))
            if batch and used + size > budget:
                break
            batch.append(q.ready.pop(index))
            used += size
        return batch

    async def _send(self, es: dict[str, Any], q: Queue, batch: list[Pending]) -> None:
        assert self.client is not None
        url = es["properties"]["destination"]["properties"]["endpointUrl"]
        cloud = es["properties"]["eventDeliverySchema"] == "CloudEventSchemaV1_0"
        payload = [events.to_cloud_event(p.event) if cloud else p.event for p in batch]
        attempt = min(p.attempts for p in batch)
        headers = self._headers(es, "Notification", attempt, str(batch[0].event.get("dataVersion", "")), cloud)
        status, outcome = await self._post(url, payload, headers)
        self._log(es, "Notification", [p.event["id"] for p in batch], attempt, status, None if status else outcome)
        stamp = self.state.clock.iso()
        if status is not None and 200 <= status < 300:
            rate = self.state.settings.duplicate_rate
            for p in batch:
                if rate > 0 and not p.duplicate and self._random().random() < rate:
                    q.ready.append(Pending(p.event, p.published_real, p.published_clock, p.publish_time, attempt + 1))
                    q.ready[-1].duplicate = True
            return
        policy = es["properties"]["retryPolicy"]
        for p in batch:
            p.attempts += 1
            p.last_outcome, p.last_attempt_time = outcome, stamp
            if status in NO_RETRY:
                self._dead_letter(es, p, "DeliveryFailed")
            elif p.attempts >= policy["maxDeliveryAttempts"]:
                self._dead_letter(es, p, "MaxDeliveryAttemptsExceeded")
            else:
                wait: float = retry_delay(p.attempts)
                left = policy["eventTimeToLiveInMinutes"] * 60 - self._age(p)
                wait = max(0.0, min(wait, left))  # at the TTL the event is dead-lettered instead
                scale = self.state.settings.delivery_time_scale
                p.due_real = time.monotonic() + wait / scale if scale > 0 else float("inf")
                p.due_clock = self.state.clock.timestamp() + wait
                q.waiting.append(p)
        if self._wake is not None:
            self._wake.set()

    async def _post(self, url: str, payload: list[Any], headers: dict[str, str]) -> tuple[int | None, str]:
        """One attempt: (status or None, outcome). Injected delivery faults (sandbox/faults.py) apply first."""
        assert self.client is not None
        injector = getattr(self.sb, "faults", None)
        fault = injector.for_delivery(url) if injector is not None else None
        if fault is not None:
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay_ms / 1000)
                return None, "TimedOut"
            if fault.kind == "500":
                return 500, outcome_name(500)
            return None, "Unknown"  # drop: the attempt never reaches the endpoint
        try:
            r = await self.client.post(
                url, content=json.dumps(payload), headers=headers, timeout=self.state.settings.delivery_timeout_s
            )
        except httpx.TimeoutException:
            return None, "TimedOut"
        except httpx.HTTPError:
            return None, "Unknown"
        return r.status_code, outcome_name(r.status_code)

    def _age(self, p: Pending) -> float:
        """Seconds of Event Grid time since the event was published: scaled real time or sandbox clock time."""
        scale = self.state.settings.delivery_time_scale
        real = (time.monotonic() - p.published_real) * scale if scale > 0 else 0.0
        return max(real, self.state.clock.timestamp() - p.published_clock)

    async def _scheduler(self) -> None:
        """Move failed events back to their queue when due; sleep until the next one or until woken."""
        assert self._wake is not None
        try:
            while True:
                now_real, now_clock = time.monotonic(), self.state.clock.timestamp()
                next_due = float("inf")
                for key, q in list(self.queues.items()):
                    due = [p for p in q.waiting if p.due_real <= now_real or p.due_clock <= now_clock]
                    if due:
                        q.waiting = [p for p in q.waiting if p not in due]
                        q.ready.extend(due)
                        self._kick(key)
                    next_due = min([next_due, *(p.due_real for p in q.waiting)])
                timeout = None if next_due == float("inf") else max(0.0, next_due - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
        finally:
            if self.client is not None:
                await self.client.aclose()

    def _dead_letter(self, es: dict[str, Any], p: Pending, reason: str) -> None:
        dead = es["properties"].get("deadLetterDestination")
        record = events.dead_letter_record(
            p.event,
            reason=reason,
            attempts=p.attempts,
            last_outcome=p.last_outcome,
            publish_time=p.publish_time,
            last_attempt_time=p.last_attempt_time,
        )
        self._log(es, "DeadLetter" if dead else "Dropped", [p.event["id"]], p.attempts, None, reason)
        if dead is None:
            return
        self.state.table(DEADLETTERS).setdefault("value", []).append(
            {
                "eventSubscriptionId": es["id"],
                "storageAccountId": dead["properties"]["resourceId"],
                "blobContainerName": dead["properties"]["blobContainerName"],
                "event": record,
            }
        )

    def _headers(
        self, es: dict[str, Any], kind: str, delivery_count: int, data_version: str, cloud: bool = False
    ) -> dict[str, str]:
        return {
            "Content-Type": "application/cloudevents-batch+json; charset=utf-8" if cloud else "application/json",
            "aeg-event-type": kind,
            "aeg-subscription-name": es["name"].upper(),
            "aeg-delivery-count": str(delivery_count),
            "aeg-data-version": data_version,
            "aeg-metadata-version": "1",
        }

    def _log(
        self,
        es: dict[str, Any],
        kind: str,
        ids: list[str],
        delivery_count: int,
        status: int | None,
        error: str | None = None,
    ) -> None:
        self.log.append(
            {
                "time": self.state.clock.iso(),
                "monotonic": time.monotonic(),
                "eventSubscriptionId": es["id"],
                "kind": kind,
                "eventIds": ids,
                "deliveryCount": delivery_count,
                "status": status,
                "error": error,
            }
        )


def _handshake_failure(r: httpx.Response, code: str) -> str | None:
    if r.status_code != 200:
        return f"Http POST request failed with response code {outcome_name(r.status_code)}."
    try:
        body = r.json()
    except ValueError:
        body = None
    got = body.get("validationResponse") if isinstance(body, Mapping) else None
    if str(got or "").lower() != code.lower():
        return "Http POST request retuned 2XX response with invalid content."
    return None
