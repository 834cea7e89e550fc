"""Reads and writes paced to ARM's budget, and the bounded thread pool that issues independent reads together.

ARM gives every subscription (and the tenant) a token bucket per principal and operation type: reads 250 tokens,
refilled 25 a second (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
"Regional throttling and token bucket algorithm"); each answer says what remains in
`x-ms-ratelimit-remaining-subscription-reads` (`-tenant-reads` without a subscription). `ReadBudget` keeps a copy of
that bucket per scope on this side: a read takes a token before it is sent, waiting for the refill when there is
none, and each answer's header lowers the copy to what ARM says remains, less the reads still on their way (they
have taken a token here but not yet there). So a sweep spends the burst, then runs at the refill rate instead of into a
storm of 429s; the subscriptions of one sweep have separate buckets. Writes (PUT, PATCH, POST) have their own bucket,
200 tokens refilled 10 a second, and header `x-ms-ratelimit-remaining-subscription-writes` (same page): a second
`ReadBudget(WRITE_BUCKET, WRITE_REFILL)` paces them the same way (the applier writes several changes at once).

    budget = ReadBudget()
    budget.take("subscription:<id>")            # blocks until a token is there
    budget.done("subscription:<id>", "231")     # its answer's remaining-reads header
    results = gather(fetch, items, workers=8)   # fetch(item) for each, in order; an AzureAccessError is a result
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from remediations.errors import AzureAccessError

T = TypeVar("T")
U = TypeVar("U")

# Microsoft Learn, "Understand how Azure Resource Manager throttles requests": subscription and tenant reads.
READ_BUCKET = 250
READ_REFILL = 25.0
REMAINING_READS = ("x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-remaining-tenant-reads")
# The same page: subscription and tenant writes (PUT, PATCH and POST; deletes have a bucket of their own, never used).
WRITE_BUCKET = 200
WRITE_REFILL = 10.0
REMAINING_WRITES = ("x-ms-ratelimit-remaining-subscription-writes", "x-ms-ratelimit-remaining-tenant-writes")
DEFAULT_WORKERS = 8
DEFAULT_WRITE_WORKERS = 8


@dataclass
class _Copy:
    tokens: float
    stamp: float
    capacity: float
    inflight: int = 0  # reads sent (a token taken) whose answer has not come back


@dataclass
class ReadBudget:
    """This side's copy of ARM's read buckets (or, sized `WRITE_BUCKET`/`WRITE_REFILL`, its write buckets), by scope
    (`subscription:<id>` or `tenant`). Thread-safe.

    A read takes a token (`take`) and gives back what ARM said remains (`done`): the copy is lowered to that figure
    less the reads still in flight, which ARM had not counted yet when it answered (never raised by it: answers
    overtake each other, and an older, higher figure would over-count). A figure at or above the copy's size means
    a bigger bucket (another cloud's limits, a raised quota): the copy grows to it."""

    capacity: float = READ_BUCKET
    refill: float = READ_REFILL
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    waited: float = 0.0  # seconds spent waiting for tokens, all threads together
    _buckets: dict[str, _Copy] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _level(self, scope: str, now: float) -> _Copy:
        copy = self._buckets.get(scope)
        if copy is None:
            copy = self._buckets[scope] = _Copy(self.capacity, now, self.capacity)
        elif now > copy.stamp:
            copy.tokens = min(copy.capacity, copy.tokens + (now - copy.stamp) * self.refill)
            copy.stamp = now
        return copy

    def take(self, scope: str) -> None:
        """Take one token for a read in `scope`, waiting for the refill when the bucket is empty."""
        while True:
            with self._lock:
                copy = self._level(scope, self.clock())
                if copy.tokens >= 1 - 1e-9:  # the refill's float sums fall short of 1 by rounding
                    copy.tokens -= 1
                    copy.inflight += 1
                    return
                wait = max((1 - copy.tokens) / self.refill, 1e-3)
                self.waited += wait
            self.sleep(wait)

    def done(self, scope: str, remaining: str | None) -> None:
        """A read in `scope` was answered, with what ARM says remains (a header value, or None when absent)."""
        try:
            left = float(remaining) if remaining is not None else None
        except ValueError:
            left = None
        with self._lock:
            copy = self._level(scope, self.clock())
            copy.inflight = max(0, copy.inflight - 1)
            if left is not None and left >= copy.capacity:  # a bigger bucket than the copy's
                copy.capacity = left + 1
                copy.tokens = left - copy.inflight
            elif left is not None:  # answers overtake each other: a figure only ever lowers the copy
                copy.tokens = max(0.0, min(copy.tokens, left - copy.inflight))


def scope_of(path: str) -> str:
    """The bucket an ARM request path reads from: `subscription:<id>` or `tenant`."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return f"subscription:{parts[1].lower()}"
    return "tenant"


# Reads submitted ahead per worker: enough to keep every worker busy, few enough that a list of 20,000 vaults does
# not hold 20,000 futures at once (`ThreadPoolExecutor.map` submits every item first: 37 MB at 20,000 vaults).
WINDOW = 4


def gather(fetch: Callable[[T], U], items: Iterable[T], workers: int = DEFAULT_WORKERS) -> list[U | AzureAccessError]:
    """`fetch(item)` for each item on up to `workers` threads, in the items' order; an `AzureAccessError` raised by
    one is its result (the others go on). Other exceptions propagate. At most `workers * WINDOW` are submitted
    ahead of the first result not yet taken."""
    todo = list(items)

    def one(item: T) -> U | AzureAccessError:
        try:
            return fetch(item)
        except AzureAccessError as e:
            return e

    if len(todo) <= 1 or workers <= 1:
        return [one(i) for i in todo]
    out: list[U | AzureAccessError] = []
    pending: deque[Future[U | AzureAccessError]] = deque()
    with ThreadPoolExecutor(max_workers=min(workers, len(todo)), thread_name_prefix="cryptward-read") as pool:
        for item in todo:
            if len(pending) >= workers * WINDOW:
                out.append(pending.popleft().result())
            pending.append(pool.submit(one, item))
        while pending:
            out.append(pending.popleft().result())
    return out


__all__ = [
    "DEFAULT_WORKERS",
    "DEFAULT_WRITE_WORKERS",
    "READ_BUCKET",
    "READ_REFILL",
    "REMAINING_READS",
    "REMAINING_WRITES",
    "WRITE_BUCKET",
    "WRITE_REFILL",
    "ReadBudget",
    "gather",
    "scope_of",
]
