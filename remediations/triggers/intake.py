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

import logging
import math
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from remediations.errors import EventRejected
from remediations.runtime import Runtime, current
from remediations.settings import IntakeSettings
from remediations.triggers.events import is_own_identity, parse_alert, parse_event
from remediations.work import WorkItem

if TYPE_CHECKING:
    from remediations.engine.reader import Scope

log = logging.getLogger("cryptward.intake")

# A common-alert-schema notification of an activity-log alert is a few KB (Microsoft Learn, "Common alert schema",
# sample payloads); anything much bigger is not one.
MAX_ALERT_BYTES = 64 * 1024

QUEUED, DUPLICATE, OWN, OUT_OF_SCOPE, IGNORED, REJECTED = (
    "queued",
    "duplicate",
    "own-change",
    "out-of-scope",
    "ignored",
    "rejected",
)
SWEEP_TYPES = (
    "Microsoft.KeyVault/vaults",
    "Microsoft.Compute/diskEncryptionSets",
    "Microsoft.Compute/disks",
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Compute/virtualMachineScaleSets",
    "Microsoft.Compute/snapshots",
    "Microsoft.Compute/images",
)
# --- the doors' entry points -----------------------------------------------------------------------------------------


def accept(item: WorkItem, rt: Runtime | None = None) -> str:
    """Queue work for one parsed change, unless it is ignored, out of scope, the bot's own, or a duplicate."""
    rt = rt or current()
    settings = rt.settings.intake
    if item.reason is not None:
        log.debug("ignored %s: %s", item.event_type or item.source, item.reason)
        return IGNORED
    if rt.scopes.scope_of(item.resource_id) is None:
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
            cutoff = at - rt.settings.intake.debounce_seconds
            for k in [k for k, t in rt.recent.items() if t < cutoff]:
                del rt.recent[k]
        rt.recent[key] = at


def on_event(event: Any, rt: Runtime | None = None) -> str:
    """One Event Grid event (a dict in Event Grid schema). A malformed event is logged and acknowledged (retrying
    cannot mend it); a storage failure raises, so Event Grid retries the delivery."""
    try:
        parsed = parse_event(event)
    except EventRejected as e:
        log.warning("event rejected: %s", e)
        return REJECTED
    if not isinstance(parsed, WorkItem):  # the handshake is the host's business
        return IGNORED
    return accept(parsed, rt)


def on_alert(body: bytes | str, rt: Runtime | None = None) -> tuple[int, dict[str, Any]]:
    """An activity-log alert (common alert schema): (202, counts), (400, the reason), or (413) for a body over
    MAX_ALERT_BYTES, refused before it is parsed."""
    size = len(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
    if size > MAX_ALERT_BYTES:
        return 413, {"error": "PayloadTooLarge", "reason": f"{size} bytes; at most {MAX_ALERT_BYTES} are accepted"}
    try:
        batch = parse_alert(body)
    except EventRejected as e:
        return 400, {"error": "BadRequest", "field": e.field, "reason": e.reason}
    rt = rt or current()
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
    (workqueue.PACK_ITEMS unless given). Management groups are expanded again first, so a subscription that joined
    or left one is swept or dropped without a redeploy. Returns how many items."""
    rt = rt or current()
    azure = azure or rt.azure
    started = time.perf_counter()
    expanded = rt.scopes.refresh()
    run = sweep_run_id()

    def items() -> Iterator[WorkItem]:
        for scope in expanded:
            for body in resources(azure, scope):
                if scope.contains(str(body["id"])):  # the not-scopes
                    kind = str(body.get("type", "")).lower()
                    yield WorkItem("sweep", str(body["id"]), resource_type=kind, correlation_id=run)

    count = stream_enqueue(rt, items(), pack=pack)
    log.info("sweep queued %d resource(s) in %.1f s", count, time.perf_counter() - started)
    return count


def sweep_run_id(now: datetime | None = None) -> str:
    """The id a sweep's work items carry (their correlation id): the owners' notices of one sweep are gathered by
    it into one digest per owner (notices/outbox.py flush_held)."""
    return f"sweep-{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def rotation_sweep(azure: Any = None, rt: Runtime | None = None) -> int:
    """The rotation timer: one rotation work item per key vault in scope."""
    rt = rt or current()
    azure = azure or rt.azure
    expanded = rt.scopes.refresh()

    def items() -> Iterator[WorkItem]:
        for scope in expanded:
            for body in resources(azure, scope, ("Microsoft.KeyVault/vaults",)):
                if scope.contains(str(body["id"])):
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
    "accept",
    "on_alert",
    "on_event",
    "resources",
    "rotation_sweep",
    "stream_enqueue",
    "sweep",
    "sweep_run_id",
]
