"""Between the triggers and the worker: validate, drop the bot's own changes, deduplicate, queue.

    accept(item)                  # a parsed WorkItem -> "queued" | "duplicate" | "own-change" | "out-of-scope" | ...
    on_event(event_dict)          # one Event Grid event (what the trigger gets); never raises for a bad event
    on_alert(body) -> (status, reply)   # an action group webhook (common alert schema): 202, or 400 with the reason
    sweep() / rotation_sweep()    # the timers: one work item per resource (per vault), streamed page by page, packed

Dedupe and debounce: the first change of a resource claims it in the ledger for CRYPTWARD_DEBOUNCE_SECONDS and is
queued invisible for that long, so the worker reads the settled resource once; the changes that follow inside the
window are covered by that read and dropped. A process also remembers its own recent claims, so a storm of events
for one resource costs one ledger claim, not one per event. Loops: a change made by the bot's own identity
(CRYPTWARD_BOT_CLIENT_ID / CRYPTWARD_BOT_OBJECT_ID, else AZURE_CLIENT_ID) causes no work, except a VM deallocation,
which releases the changes waiting for it whoever deallocated. Work outside CRYPTWARD_SCOPES is dropped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediations.errors import EventRejected, SettingsError
from remediations.triggers.events import is_own_identity, parse_alert, parse_event
from remediations.work import WorkItem

if TYPE_CHECKING:
    from remediations.engine.reader import Scope
    from remediations.notices.delivery import Sender
    from remediations.store.ledger import Ledger
    from remediations.store.outbox import TableNoticeStore
    from remediations.store.workqueue import WorkQueue

log = logging.getLogger("cryptward.intake")

QUEUED, DUPLICATE, OWN, OUT_OF_SCOPE, IGNORED, REJECTED = (
    "queued",
    "duplicate",
    "own-change",
    "out-of-scope",
    "ignored",
    "rejected",
)
HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
SWEEP_TYPES = (
    "Microsoft.KeyVault/vaults",
    "Microsoft.Compute/diskEncryptionSets",
    "Microsoft.Compute/disks",
    "Microsoft.Compute/virtualMachines",
)
_ENV_KEYS = (
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "CRYPTWARD_WORK_QUEUE",
    "CRYPTWARD_TABLE_PREFIX",
    "CRYPTWARD_DEBOUNCE_SECONDS",
    "CRYPTWARD_FIGHT_THRESHOLD",
    "CRYPTWARD_FIGHT_WINDOW_SECONDS",
    "CRYPTWARD_WORK_LOCK_SECONDS",
    "CRYPTWARD_BOT_CLIENT_ID",
    "CRYPTWARD_BOT_OBJECT_ID",
    "AZURE_CLIENT_ID",
    "CRYPTWARD_SCOPES",
    "AZURE_SUBSCRIPTION_ID",
)


def host_settings(path: Path = HOST_JSON) -> dict[str, Any]:
    """host.json's queue settings: maxDequeueCount, visibilityTimeout (s), batchSize; defaults as the host's."""
    try:
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
    except (OSError, ValueError, AttributeError):
        queues = {}
    hms = str(queues.get("visibilityTimeout") or "00:00:00").split(":")
    try:
        retry = int(hms[0]) * 3600 + int(hms[1]) * 60 + float(hms[2])
    except (ValueError, IndexError):
        retry = 0.0
    return {
        "maxDequeueCount": int(queues.get("maxDequeueCount") or 5),
        "visibilityTimeout": retry,
        "batchSize": int(queues.get("batchSize") or 16),
    }


def max_dequeue_count(path: Path = HOST_JSON) -> int:
    """host.json's `extensions.queues.maxDequeueCount` (the Functions default, 5, when absent)."""
    return int(host_settings(path)["maxDequeueCount"])


@dataclass(frozen=True)
class IntakeSettings:
    """The app settings this module and the worker read (names as in local.settings.json)."""

    debounce_seconds: float = 30.0
    fight_threshold: int = 3
    fight_window_seconds: float = 3600.0
    work_lock_seconds: float = 300.0
    bot_ids: frozenset[str] = frozenset()
    scopes: tuple[Scope, ...] = ()
    max_dequeue_count: int = 5
    retry_seconds: float = 0.0  # host.json's visibilityTimeout: how long a failed item waits before its next try

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IntakeSettings:
        from remediations.engine.reader import Scope

        env = os.environ if env is None else env

        def number(name: str, default: float, *, minimum: float = 0) -> float:
            raw = (env.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise SettingsError(f"{name} must be a number, not {raw!r}") from None
            if not math.isfinite(value) or value < minimum:
                raise SettingsError(f"{name} must be a number of at least {minimum:g}, not {raw!r}")
            return value

        bot = [env.get("CRYPTWARD_BOT_CLIENT_ID"), env.get("CRYPTWARD_BOT_OBJECT_ID")]
        if not any((b or "").strip() for b in bot):
            bot = [env.get("AZURE_CLIENT_ID")]
        host = host_settings()
        raw_scopes = (env.get("CRYPTWARD_SCOPES") or "").strip() or (env.get("AZURE_SUBSCRIPTION_ID") or "").strip()
        return cls(
            debounce_seconds=number("CRYPTWARD_DEBOUNCE_SECONDS", 30.0),
            fight_threshold=int(number("CRYPTWARD_FIGHT_THRESHOLD", 3, minimum=1)),
            fight_window_seconds=number("CRYPTWARD_FIGHT_WINDOW_SECONDS", 3600.0),
            work_lock_seconds=number("CRYPTWARD_WORK_LOCK_SECONDS", 300.0, minimum=1),
            bot_ids=frozenset(b.strip().lower() for b in bot if b and b.strip()),
            scopes=tuple(_scope(s, Scope) for s in raw_scopes.replace(";", ",").split(",") if s.strip()),
            max_dequeue_count=int(host["maxDequeueCount"]),
            retry_seconds=float(host["visibilityTimeout"]),
        )

    def scope_of(self, resource_id: str) -> Scope | None:
        """The configured scope holding `resource_id`, or None."""
        return next((s for s in self.scopes if s.contains(resource_id)), None)


def _scope(text: str, make: Callable[..., Scope]) -> Scope:
    """`<subscription id>`, `/subscriptions/<id>` or `/subscriptions/<id>/resourceGroups/<name>`."""
    parts = [p for p in text.strip().split("/") if p]
    if len(parts) == 1:
        return make((parts[0],))
    if len(parts) == 2 and parts[0].lower() == "subscriptions":
        return make((parts[1],))
    if len(parts) == 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups":
        return make((parts[1],), parts[3])
    raise SettingsError(
        f"CRYPTWARD_SCOPES: {text.strip()!r} is not a scope; expected subscription ids or "
        "/subscriptions/<id>[/resourceGroups/<name>], separated by commas"
    )


@dataclass
class Runtime:
    """What the triggers share in one process: settings, the ledger, the queue, recent claims."""

    settings: IntakeSettings
    env: Mapping[str, str] = field(repr=False)
    _ledger: Ledger | None = None
    _queue: WorkQueue | None = None
    _notices: TableNoticeStore | None = None
    _sender: Sender | None = None
    recent: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        with self.lock:
            if self._ledger is None:
                from remediations.store.ledger import Ledger

                self._ledger = Ledger.from_env(self.env)
            return self._ledger

    @property
    def notices(self) -> TableNoticeStore:
        """The outbox: notices that failed, kept for the notices timer."""
        with self.lock:
            if self._notices is None:
                from remediations.store.outbox import TableNoticeStore

                self._notices = TableNoticeStore.from_env(self.env)
            return self._notices

    @property
    def sender(self) -> Sender:
        with self.lock:
            if self._sender is None:
                from remediations.notices.delivery import Destinations, Sender

                self._sender = Sender(Destinations(dict(self.env)))
            return self._sender

    @property
    def queue(self) -> WorkQueue:
        with self.lock:
            if self._queue is None:
                from remediations.store.workqueue import WorkQueue

                self._queue = WorkQueue.from_env(self.env)
            return self._queue

    def enqueue(self, item: WorkItem, delay_seconds: float = 0) -> str:
        sent = self.queue.enqueue(item, delay_seconds=math.ceil(delay_seconds))
        for wake in list(self.listeners):
            wake()
        return sent

    def enqueue_pack(self, items: Sequence[WorkItem], delay_seconds: float = 0) -> str:
        """Several work items in one message (the sweeps); a pack too big for a message is split, never cut."""
        from remediations.errors import QueueRefused

        try:
            sent = self.queue.enqueue_pack(items, delay_seconds=math.ceil(delay_seconds))
        except QueueRefused:
            if len(items) == 1:
                raise
            half = len(items) // 2
            sent = self.enqueue_pack(items[:half], delay_seconds)
            self.enqueue_pack(items[half:], delay_seconds)
            return sent
        for wake in list(self.listeners):
            wake()
        return sent

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
        if self._queue is not None:
            self._queue.close()
        if self._notices is not None:
            self._notices.close()
        if self._sender is not None:
            self._sender.close()


_RUNTIME: dict[tuple[str, ...], Runtime] = {}
_RUNTIME_LOCK = threading.Lock()
_LISTENERS: list[Callable[[], None]] = []


def runtime() -> Runtime:
    """The process's Runtime for the current settings (a new one when the settings change, e.g. between tests)."""
    key = tuple(os.environ.get(k, "") for k in _ENV_KEYS)
    with _RUNTIME_LOCK:
        rt = _RUNTIME.get(key)
        if rt is None:
            for old in _RUNTIME.values():
                old.close()
            _RUNTIME.clear()
            rt = _RUNTIME[key] = Runtime(IntakeSettings.from_env(), dict(os.environ))
            rt.listeners = _LISTENERS
        return rt


def on_enqueue(wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` after every enqueue in this process (`cryptward serve` wakes its queue poller); returns a function
    that removes it."""
    _LISTENERS.append(wake)
    return lambda: _LISTENERS.remove(wake) if wake in _LISTENERS else None


# --- the doors' entry points -----------------------------------------------------------------------------------------


def accept(item: WorkItem, rt: Runtime | None = None) -> str:
    """Queue work for one parsed change, unless it is ignored, out of scope, the bot's own, or a duplicate."""
    rt = rt or runtime()
    settings = rt.settings
    if item.reason is not None:
        log.debug("ignored %s: %s", item.event_type or item.source, item.reason)
        return IGNORED
    if settings.scope_of(item.resource_id) is None:
        log.debug("out of scope: %s", item.resource_id)
        return OUT_OF_SCOPE
    if is_own_identity(item, settings.bot_ids) and not item.deallocated:
        log.debug("own change, no work: %s %s", item.operation, item.resource_id)
        return OWN
    key = ("deallocate:" if item.deallocated else "") + item.key
    window = settings.debounce_seconds
    now = datetime.now(UTC)
    at = now.timestamp()
    if window > 0:
        with rt.lock:
            if at - rt.recent.get(key, -math.inf) < window:
                return DUPLICATE
        if not rt.ledger.claim(key, window, now):
            _remember(rt, key, at)
            return DUPLICATE
        _remember(rt, key, at)
    try:
        # A deallocation is settled when its event arrives: no wait. Other changes wait out the window.
        rt.enqueue(item, 0 if item.deallocated else window)
    except Exception:
        with rt.lock:
            rt.recent.pop(key, None)
        if window > 0:
            rt.ledger.release(key, now)
        raise
    return QUEUED


def _remember(rt: Runtime, key: str, at: float) -> None:
    with rt.lock:
        if len(rt.recent) > 50_000:  # bounded: forget what is older than the window
            cutoff = at - rt.settings.debounce_seconds
            for k in [k for k, t in rt.recent.items() if t < cutoff]:
                del rt.recent[k]
        rt.recent[key] = at


def on_event(event: Any) -> str:
    """One Event Grid event (a dict in Event Grid schema). A malformed event is logged and acknowledged (retrying
    cannot mend it); a storage failure raises, so Event Grid retries the delivery."""
    try:
        parsed = parse_event(event)
    except EventRejected as e:
        log.warning("event rejected: %s", e)
        return REJECTED
    if not isinstance(parsed, WorkItem):  # the handshake is the host's business
        return IGNORED
    return accept(parsed)


def on_alert(body: bytes | str) -> tuple[int, dict[str, Any]]:
    """An activity-log alert (common alert schema): (202, counts) or (400, the reason)."""
    try:
        batch = parse_alert(body)
    except EventRejected as e:
        return 400, {"error": "BadRequest", "field": e.field, "reason": e.reason}
    rt = runtime()
    counts: dict[str, int] = {}
    for item in (*batch.items, *batch.ignored):
        outcome = accept(item, rt)
        counts[outcome] = counts.get(outcome, 0) + 1
    rejected = [{"field": r.field, "reason": r.reason} for r in batch.rejected]
    return 202, {"outcomes": counts, "rejected": rejected}


# --- the timers ------------------------------------------------------------------------------------------------------


def _api(resource_type: str) -> str:
    from remediations.policy import aliases

    return str(aliases.API_VERSIONS[resource_type])


def resources(azure: Any, scope: Scope, types: Iterable[str] = SWEEP_TYPES) -> Iterator[dict[str, Any]]:
    """Every resource of `types` in `scope`, page by page (a generator: nothing is held but the current page)."""
    for sub in scope.subscriptions:
        base = f"/subscriptions/{sub}" + (f"/resourceGroups/{scope.resource_group}" if scope.resource_group else "")
        for rtype in types:
            yield from azure.list(f"{base}/providers/{rtype}", _api(rtype))


def stream_enqueue(
    rt: Runtime, items: Iterable[WorkItem], *, parallel: int = 8, delay: float = 0, pack: int | None = None
) -> int:
    """Queue every item, packed `pack` to a message (workqueue.PACK_ITEMS unless given), `parallel` sends in flight
    at most: memory stays flat however many items come. Returns how many items were queued."""
    from remediations.store.workqueue import PACK_ITEMS

    size = max(1, pack or PACK_ITEMS)
    count = 0
    with ThreadPoolExecutor(parallel, thread_name_prefix="cryptward-enqueue") as pool:
        inflight: set[Future[str]] = set()

        def send(chunk: list[WorkItem]) -> None:
            nonlocal inflight
            if len(inflight) >= parallel * 4:
                done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
            inflight.add(pool.submit(rt.enqueue_pack, chunk, delay))

        chunk: list[WorkItem] = []
        for item in items:
            chunk.append(item)
            count += 1
            if len(chunk) >= size:
                send(chunk)
                chunk = []
        if chunk:
            send(chunk)
        for f in inflight:
            f.result()
    return count


def sweep(azure: Any = None, rt: Runtime | None = None, *, pack: int | None = None) -> int:
    """The sweep timer: one work item per resource in scope, so a lost event is caught, `pack` to a message
    (workqueue.PACK_ITEMS unless given). Returns how many items."""
    from remediations.azure import Azure

    rt = rt or runtime()
    azure = azure or Azure.from_env()
    started = time.perf_counter()

    def items() -> Iterator[WorkItem]:
        for scope in rt.settings.scopes:
            for body in resources(azure, scope):
                yield WorkItem("sweep", str(body["id"]), resource_type=str(body.get("type", "")).lower())

    count = stream_enqueue(rt, items(), pack=pack)
    log.info("sweep queued %d resource(s) in %.1f s", count, time.perf_counter() - started)
    return count


def rotation_sweep(azure: Any = None, rt: Runtime | None = None) -> int:
    """The rotation timer: one rotation work item per key vault in scope."""
    from remediations.azure import Azure

    rt = rt or runtime()
    azure = azure or Azure.from_env()

    def items() -> Iterator[WorkItem]:
        for scope in rt.settings.scopes:
            for body in resources(azure, scope, ("Microsoft.KeyVault/vaults",)):
                yield WorkItem("rotation", str(body["id"]), resource_type="microsoft.keyvault/vaults")

    count = stream_enqueue(rt, items())
    log.info("rotation queued %d vault(s)", count)
    return count


__all__ = [
    "DUPLICATE",
    "IGNORED",
    "OUT_OF_SCOPE",
    "OWN",
    "QUEUED",
    "REJECTED",
    "IntakeSettings",
    "Runtime",
    "accept",
    "max_dequeue_count",
    "on_alert",
    "on_enqueue",
    "on_event",
    "resources",
    "rotation_sweep",
    "runtime",
    "stream_enqueue",
    "sweep",
]
