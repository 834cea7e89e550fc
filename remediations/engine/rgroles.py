"""Role assignments of many subscriptions through Resource Graph's `authorizationresources`, in few queries.

    per_sub = rgroles.through_graph(azure, subscriptions, group, step)
    per_sub["<subscription id>"]  ->  ([assignments at, above and below it], {scopes above it its id does not spell})

What ARM's list of a subscription's role assignments answers (at, above and below it: the management groups over it
and the root `/` included), for every subscription of a batch in one paged query, plus one for the subscriptions'
management groups:

- `authorizationresources | where type =~ 'microsoft.authorization/roleassignments'` with
  `options.authorizationScopeFilter = AtScopeAboveAndBelow` (resourcegraph.json 2022-10-01 and later; the default,
  AtScopeAndBelow, leaves out the groups' and the root's: Learn, "Troubleshoot Azure RBAC limits", sets the
  authorization scope to "At, above and below" for that);
- `resourcecontainers` subscriptions' `properties.managementGroupAncestorsChain` (Learn's management-group sample
  queries): which of the groups' assignments hold over which subscription.

Exact enough to find, never to act: Resource Graph lags ARM's writes and answers only the assignments the bot may
read (an assignment at a group above the bot's role is missing there, where ARM's subscription list has it). So the
reader decides nothing on these rows that could make it write: a disk encryption set that seems to lack its key role,
or whose roles would let its vault switch to RBAC, has its assignments read again through ARM at its key's scope
(`$filter=atScope()`) before the planner sees it (engine/reader.py `_key_access`). What these rows can only cause is
a finding reported a sweep late, never a grant or a switch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remediations.engine import inventory

__all__ = ["API_VERSION", "through_graph"]

API_VERSION = "2022-10-01"  # the first stable api-version with authorizationScopeFilter
ASSIGNMENTS = (
    "authorizationresources | where type =~ 'microsoft.authorization/roleassignments' "
    "| project id, name, type, properties | order by id asc"
)
CHAINS = (
    "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' "
    "| project id, subscriptionId, properties | order by id asc"
)
_GROUPS = "/providers/microsoft.management/managementgroups/"


def through_graph(
    azure: Any,
    subscriptions: Sequence[str],
    group: str | None,
    progress: Callable[[str], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, tuple[list[dict[str, Any]], set[str]]]:
    """{subscription: (its role assignments as ARM bodies, the scopes above it its id does not spell)}, narrowed to
    `group` (a resource group's name) as ARM's list at that group is. Raises inventory.GraphUnavailable."""
    progress(f"Resource Graph: role assignments in {len(subscriptions)} subscription(s)")
    rows: list[dict[str, Any]] = []
    chains: dict[str, set[str]] = {}
    lock = threading.Lock()

    def keep(page: Mapping[str, Any]) -> None:
        with lock:
            rows.extend(page.get("data") or [])

    def chain(page: Mapping[str, Any]) -> None:
        for row in page.get("data") or []:
            groups = (row.get("properties") or {}).get("managementGroupAncestorsChain") or []
            above = {f"{_GROUPS}{str(g.get('name', '')).lower()}" for g in groups if g.get("name")}
            with lock:
                chains[str(row.get("subscriptionId", "")).lower()] = above | {""}

    options = {"authorizationScopeFilter": "AtScopeAboveAndBelow"}
    inventory.query_pages(
        azure, subscriptions, ASSIGNMENTS, keep, sleep=sleep, api_version=API_VERSION, options=options
    )
    inventory.query_pages(azure, subscriptions, CHAINS, chain, sleep=sleep)
    out: dict[str, tuple[list[dict[str, Any]], set[str]]] = {}
    bodies = [_body(row) for row in rows]
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        by_scope.setdefault(_scope(body), []).append(body)
    for sub in subscriptions:
        prefix = f"/subscriptions/{sub.lower()}"
        narrow = f"{prefix}/resourcegroups/{group.lower()}" if group else prefix
        above = chains.get(sub.lower(), {""})
        mine = [
            b
            for scope, items in by_scope.items()
            if scope in above or scope in (prefix, narrow) or scope.startswith(narrow + "/")
            for b in items
        ]
        out[sub] = (mine, {s for s in above if s in by_scope})
    return out


def _scope(body: Mapping[str, Any]) -> str:
    """The scope an assignment is held at, lower-cased, the root as "" (as engine/reader.py indexes them)."""
    scope = str((body.get("properties") or {}).get("scope") or "").lower().rstrip("/")
    if not scope:
        scope = str(body.get("id", "")).lower().rsplit("/providers/microsoft.authorization/roleassignments/", 1)[0]
    return scope


def _body(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as ARM's list answers it: the type as ARM spells it (Resource Graph lower-cases it)."""
    return {
        "id": row.get("id"),
        "name": row.get("name"),
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": row.get("properties") or {},
    }
