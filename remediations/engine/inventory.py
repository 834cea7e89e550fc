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

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from remediations.errors import AzureAccessError

__all__ = ["BATCH", "GraphUnavailable", "Row", "pages", "through_graph", "uses_graph"]

BATCH = 200  # subscriptions a query: below Microsoft's 300
PAGE = 1000  # rows a page: Resource Graph's largest $top
WAIT_BUDGET = 30.0  # seconds the inventory may wait on the quota before it falls back to ARM
WINDOW = 5.0  # Resource Graph's quota window (seconds), when an answer does not say
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
    (engine/stream.py), so memory holds one page, not the estate. Raises GraphUnavailable, possibly after pages."""
    canonical = {t.lower(): (what, t) for what, t in types.items()}
    by_sub = {s.lower(): s for s in subscriptions}
    text = query_text(types, group)
    pace = _Pace(sleep)
    for start in range(0, len(subscriptions), BATCH):
        batch = list(subscriptions[start : start + BATCH])
        progress(f"Resource Graph: {', '.join(types)} in {len(batch)} subscription(s)")
        token: str | None = None
        while True:
            page = pace.query(azure, batch, text, token)
            rows: list[Row] = []
            for row in page.get("data") or []:
                kind = str(row.get("type", "")).lower()
                if kind not in canonical:
                    continue
                what, arm_type = canonical[kind]
                sub = by_sub.get(str(row["id"]).split("/")[2].lower())
                if sub is None:
                    continue
                rows.append((sub, what, str(row["id"]).lower(), _body(row, arm_type)))
            token = page.get("$skipToken")
            del page
            yield rows
            del rows  # the consumer is done with it: not held while the next page is read
            if not token:
                break


def _body(row: Mapping[str, Any], arm_type: str) -> dict[str, Any]:
    """The ARM body a row carries: the type as ARM spells it (Resource Graph lower-cases it), empty columns out."""
    body = {k: v for k, v in row.items() if v not in (None, "") and k in (*COLUMNS, "properties")}
    body["type"] = arm_type
    return body


class _Pace:
    """Resource Graph's per-user quota, from the answers' headers."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self.sleep = sleep
        self.waited = 0.0
        self.remaining: int | None = None
        self.resets = 0.0

    def wait(self, seconds: float, why: AzureAccessError | None = None) -> None:
        if self.waited + seconds > WAIT_BUDGET:
            detail = f"{why.code}: {why.message}" if why else "quota exhausted"
            raise GraphUnavailable(f"throttled beyond {WAIT_BUDGET:.0f} s of waiting ({detail})")
        self.waited += seconds
        self.sleep(seconds)

    def query(self, azure: Any, batch: list[str], text: str, token: str | None) -> dict[str, Any]:
        while True:
            if self.remaining == 0 and self.resets > 0:
                self.wait(self.resets)
            try:
                page, headers = azure.graph_query(batch, text, PAGE, token)
            except AzureAccessError as e:
                if e.status == 429:
                    self.remaining = None
                    self.wait(self.resets or WINDOW, e)
                    continue
                if e.status == 400:  # the query itself: a defect here, not Resource Graph being away
                    raise GraphUnavailable(f"{e.code}: {e.message}") from e
                raise GraphUnavailable(f"{e.status} {e.code}: {e.message}".strip()) from e
            self.remaining = _int(headers.get("x-ms-user-quota-remaining"))
            self.resets = _seconds(headers.get("x-ms-user-quota-resets-after"))
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
