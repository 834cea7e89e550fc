"""List the policy types across many subscriptions through Azure Resource Graph, in few queries.

    listed = inventory.through_graph(azure, subscriptions, {"vaults": "Microsoft.KeyVault/vaults", ...}, step)
    listed["<subscription id>"]["vaults"]  ->  {lower-cased id: body}

One query for every wanted type, over groups of at most `BATCH` subscriptions ("group size recommendations are
below 300" — Learn, "Guidance for throttled requests in Azure Resource Graph", https://learn.microsoft.com/azure/
governance/resource-graph/concepts/guidance-for-throttled-requests), each paged by `$skipToken` with the largest
page Resource Graph serves (`$top` 1000, resourcegraph.json 2021-03-01 QueryRequestOptions). The quota (15 queries
per 5 s per user on that page) is honoured from the answers' headers: when `x-ms-user-quota-remaining` reaches 0 the
next query waits `x-ms-user-quota-resets-after`; a 429 waits one window, up to `WAIT_BUDGET` seconds in all.

Resource Graph holds each resource's ARM body (id, name, type, location, tags, sku, identity, zones, managedBy,
properties), not what sits beside it: diagnostic settings, a key's data-plane attributes, a VM's instance view,
locks and role assignments are read per resource or per subscription through ARM as without it. It lags ARM's
writes (Learn, "Overview of Azure Resource Graph": changes show "within seconds"), so it only finds what to look
at: every fix re-reads its resource through ARM before writing and verifies through ARM after (engine/applier.py).

When Resource Graph refuses (403), throttles beyond the budget (429), fails (5xx) or cannot be reached,
`GraphUnavailable` says why and the reader lists through ARM per subscription as before, and says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from queue import Full, Queue
from typing import Any

from remediations.errors import AzureAccessError
from remediations.pacing import gather

__all__ = ["BATCH", "PARALLEL", "GraphUnavailable", "Row", "pages", "query_pages", "through_graph", "uses_graph"]

BATCH = 200  # subscriptions a query: below Microsoft's 300
PAGE = 1000  # rows a page: Resource Graph's largest $top
WAIT_BUDGET = 30.0  # seconds the inventory may wait on the quota before it falls back to ARM
WINDOW = 5.0  # Resource Graph's quota window (seconds), when an answer does not say
PARALLEL = 4  # queries in flight at once, within the quota
COLUMNS = ("id", "name", "type", "kind", "location", "tags", "sku", "plan", "identity", "zones", "managedBy")


class GraphUnavailable(Exception):
    """Resource Graph cannot be used for this sweep: why (an Azure error code and message)."""


def uses_graph(mode: str, threshold: int, subscriptions: Sequence[str]) -> bool:
    """Whether a sweep over `subscriptions` lists through Resource Graph: always, never, or (auto) above the
    threshold, where one query per thousand resources beats a list call per type and subscription."""
    return mode == "resourcegraph" or (mode == "auto" and len(subscriptions) > threshold)


def query_text(types: Mapping[str, str], group: str | None) -> str:
    wanted = ", ".join(f"'{t.lower()}'" for t in types.values())
    where = f"type in~ ({wanted})"
    if group:
        where += f" and resourceGroup =~ '{group.lower()}'"
    # Ordered by a unique column, so that pages asked by $skip neither repeat nor miss a row of a static estate
    # (Learn, "Guidance for pagination", https://learn.microsoft.com/azure/governance/resource-graph/concepts/
    # paging-results: "Always include a unique column such as id in your sort order").
    return f"resources | where {where} | project {', '.join(COLUMNS)}, properties | order by id asc"


def through_graph(
    azure: Any,
    subscriptions: Sequence[str],
    types: Mapping[str, str],
    progress: Callable[[str], None],
    *,
    group: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{subscription (as given): {what: {lower-cased id: body}}} for every `what -> ARM type` in `types`. Raises
    GraphUnavailable (nothing is returned half-listed)."""
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {s: {what: {} for what in types} for s in subscriptions}
    for page in pages(azure, subscriptions, types, progress, group=group, sleep=sleep):
        for sub, what, rid, body in page:
            out[sub][what][rid] = body
    return out


Row = tuple[str, str, str, dict[str, Any]]  # (subscription as given, what, lower-cased id, body)
_DONE = object()


class _Closed(Exception):
    """The consumer of `pages` stopped reading: the queries still running give up."""


def pages(
    azure: Any,
    subscriptions: Sequence[str],
    types: Mapping[str, str],
    progress: Callable[[str], None],
    *,
    group: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[Row]]:
    """Each page of the inventory as it comes, its rows as `Row`s: what a streamed evaluation reads and then drops
    (engine/stream.py), so memory holds a few pages (at most `PARALLEL` waiting), not the estate. The pages are
    asked by `query_pages` on a thread of their own; a row a shifted `$skip` answers twice is given once. Raises
    GraphUnavailable, possibly after pages."""
    canonical = {t.lower(): (what, t) for what, t in types.items()}
    by_sub = {s.lower(): s for s in subscriptions}
    progress(f"Resource Graph: {', '.join(types)} in {len(subscriptions)} subscription(s)")
    queue: Queue[Any] = Queue(maxsize=PARALLEL)
    closed = threading.Event()
    seen: set[str] = set()
    seen_lock = threading.Lock()

    def hand(item: Any) -> None:
        while not closed.is_set():
            try:
                queue.put(item, timeout=0.5)
                return
            except Full:
                continue
        raise _Closed

    def absorb(page: Mapping[str, Any]) -> None:
        rows: list[Row] = []
        for row in page.get("data") or []:
            kind = str(row.get("type", "")).lower()
            if kind not in canonical:
                continue
            what, arm_type = canonical[kind]
            sub = by_sub.get(str(row["id"]).split("/")[2].lower())
            rid = str(row["id"]).lower()
            with seen_lock:
                if sub is None or rid in seen:
                    continue
                seen.add(rid)
            rows.append((sub, what, rid, _body(row, arm_type)))
        hand(rows)

    def produce() -> None:
        item: Any = _DONE
        try:
            query_pages(azure, subscriptions, query_text(types, group), absorb, sleep=sleep)
        except _Closed:
            return
        except BaseException as e:  # handed to the reader of the pages
            item = e
        try:
            hand(item)
        except _Closed:
            return

    threading.Thread(target=produce, name="cryptward-graph", daemon=True).start()
    try:
        while True:
            item = queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item  # the consumer is done with it: not held while the next page is read
    finally:
        closed.set()


def query_pages(
    azure: Any,
    subscriptions: Sequence[str],
    text: str,
    absorb: Callable[[Mapping[str, Any]], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
    api_version: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Every page of `text` (ordered by a unique column) over `subscriptions`, `BATCH` at a time, handed to
    `absorb` as it comes (from up to `PARALLEL` threads at once); the number of queries sent. The first page of
    every batch goes first; its `totalRecords` says how many follow, and those are asked by `$skip` in parallel
    within the quota, rather than one `$skipToken` after the other."""
    pace = _Pace(sleep)
    batches = [list(subscriptions[i : i + BATCH]) for i in range(0, len(subscriptions), BATCH)]

    def ask(job: tuple[list[str], int]) -> Mapping[str, Any]:
        page = pace.query(azure, job[0], text, job[1], api_version, options)
        absorb(page)
        # only what the paging needs is kept (not the rows: the pages are not held till the last is read)
        return {k: page.get(k) for k in ("$skipToken", "totalRecords")} | {"count": len(page.get("data") or [])}

    firsts = _all(ask, [(batch, 0) for batch in batches])
    rest = [
        (batch, skip)
        for batch, first in zip(batches, firsts, strict=True)
        if first.get("$skipToken")
        for skip in range(int(first.get("count") or 0) or PAGE, int(first.get("totalRecords") or 0), PAGE)
    ]
    _all(ask, rest)
    return len(batches) + len(rest)


def _all(ask: Callable[[Any], Mapping[str, Any]], jobs: list[Any]) -> list[Mapping[str, Any]]:
    results = gather(ask, jobs, PARALLEL)
    failed = next((r for r in results if isinstance(r, AzureAccessError)), None)
    if failed is not None:  # not expected: _Pace turns them into GraphUnavailable
        raise GraphUnavailable(f"{failed.status} {failed.code}: {failed.message}".strip())
    return [r for r in results if not isinstance(r, AzureAccessError)]


def _body(row: Mapping[str, Any], arm_type: str) -> dict[str, Any]:
    """The ARM body a row carries: the type as ARM spells it (Resource Graph lower-cases it), empty columns out."""
    body = {k: v for k, v in row.items() if v not in (None, "") and k in (*COLUMNS, "properties")}
    body["type"] = arm_type
    return body


class _Pace:
    """Resource Graph's per-user quota, from the answers' headers, shared by the threads asking. While the quota
    left is unknown (the first query, or a window just reset) one query goes alone; then as many as it allows."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self.sleep = sleep
        self.lock = threading.Condition()
        self.waited = 0.0
        self.remaining: int | None = None  # as the newest answer said, less the queries sent since
        self.resets = 0.0  # seconds until the window resets, as the newest answer said
        self.in_flight = 0
        self.reset_due: float | None = None  # monotonic time at which a wait in progress ends

    def _wait(self, seconds: float, why: AzureAccessError | None = None) -> None:
        """Called holding the lock: wait (once for every thread) until the window resets, within WAIT_BUDGET."""
        if self.reset_due is None:
            if self.waited + seconds > WAIT_BUDGET:
                detail = f"{why.code}: {why.message}" if why else "quota exhausted"
                raise GraphUnavailable(f"throttled beyond {WAIT_BUDGET:.0f} s of waiting ({detail})")
            self.waited += seconds
            self.reset_due = time.monotonic() + seconds
            self.lock.release()
            try:
                self.sleep(seconds)
            finally:
                self.lock.acquire()
            self.reset_due, self.remaining, self.resets = None, None, 0.0
            self.lock.notify_all()
        else:
            while self.reset_due is not None:
                self.lock.wait()

    def _slot(self) -> None:
        with self.lock:
            while True:
                if self.reset_due is not None or (self.remaining == 0 and self.resets > 0 and not self.in_flight):
                    self._wait(self.resets)
                    continue
                allowed = 1 if self.remaining is None else self.remaining
                if self.in_flight < allowed:
                    self.in_flight += 1
                    if self.remaining is not None:
                        self.remaining -= 1
                    return
                self.lock.wait()

    def query(
        self,
        azure: Any,
        batch: list[str],
        text: str,
        skip: int,
        api_version: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        extra = {k: v for k, v in (("api_version", api_version), ("options", options)) if v}
        while True:
            self._slot()
            try:
                page, headers = azure.graph_query(batch, text, PAGE, skip=skip, **extra)
            except AzureAccessError as e:
                with self.lock:
                    self.in_flight -= 1
                    self.lock.notify_all()
                    if e.status == 429:
                        self.remaining = 0
                        self._wait(self.resets or WINDOW, e)
                        continue
                if e.status == 400:  # the query itself: a defect here, not Resource Graph being away
                    raise GraphUnavailable(f"{e.code}: {e.message}") from e
                raise GraphUnavailable(f"{e.status} {e.code}: {e.message}".strip()) from e
            with self.lock:
                self.in_flight -= 1
                said = _int(headers.get("x-ms-user-quota-remaining"))
                if said is not None:  # the server's count, less what is still in flight
                    self.remaining = max(0, said - self.in_flight)
                    self.resets = _seconds(headers.get("x-ms-user-quota-resets-after"))
                self.lock.notify_all()
            return page


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _seconds(value: str | None) -> float:
    """`hh:mm:ss` (Resource Graph's x-ms-user-quota-resets-after) in seconds; 0 when absent or not that."""
    try:
        h, m, s = (value or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return 0.0
