"""Scopes the bot watches, and what they expand to: subscriptions, resource groups and management groups, less the
not-scopes.

    scope = parse("/providers/Microsoft.Management/managementGroups/corp")  # Scope((), management_group="corp")
    expanded = expand(azure, [scope], [parse("/subscriptions/<id>")])       # its descendant subscriptions, less <id>
    scopes = Scopes(configured, not_scopes, lambda: azure)                  # the runtime's: re-expanded each sweep
    scopes.refresh(); scopes.scope_of(resource_id)                          # the expanded scope holding it, or None

A management group is expanded to the subscriptions below it at any depth through the Management Groups API
(`GET /providers/Microsoft.Management/managementGroups/{groupId}/descendants`, Azure/azure-rest-api-specs
specification/managementgroups/resource-manager/Microsoft.Management/stable/2021-04-01/management.json,
ManagementGroups_GetDescendants; a subscription's DescendantInfo has `type` `/subscriptions` and its id as `name`).
Azure Policy's assignments do the same with `notScopes` (Microsoft Learn, "Azure Policy assignment structure",
https://learn.microsoft.com/azure/governance/policy/concepts/assignment-structure#excluded-scopes): a not-scope is a
management group, a subscription or a resource group, and nothing under it is in scope.

Safety: what cannot be expanded is not in scope. Before its first expansion a management group holds no subscription
(an event from it is ignored); when a later expansion fails the last one stays (a warning says so), and `scope_of`
asks again for an id it does not hold at most once a minute, so a subscription moved into a group is seen by the
next sweep or the first event after a minute, and one moved out is dropped by the next expansion.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from remediations.engine.reader import Scope
from remediations.errors import AzureAccessError, SettingsError

if TYPE_CHECKING:
    from remediations.azure import Azure

log = logging.getLogger("cryptward.scopes")

MANAGEMENT_GROUPS_API = "2021-04-01"
GROUP_PREFIX = "/providers/Microsoft.Management/managementGroups/"
# Microsoft Learn, "Naming rules and restrictions for Azure resources", Microsoft.Management/managementGroups:
# 1-90 characters, alphanumerics, hyphens, underscores, periods and parentheses, not ending in a period.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]$")
RETRY_SECONDS = 60.0


def parse(text: str, setting: str = "CRYPTWARD_SCOPES") -> Scope:
    """`<subscription id>`, `/subscriptions/<id>`, `/subscriptions/<id>/resourceGroups/<name>` or
    `/providers/Microsoft.Management/managementGroups/<id>`; SettingsError naming `setting` otherwise."""
    parts = [p for p in text.strip().split("/") if p]
    if len(parts) == 1 and not text.strip().startswith("/"):
        return Scope((parts[0],))
    if len(parts) == 2 and parts[0].lower() == "subscriptions":
        return Scope((parts[1],))
    if len(parts) == 4 and parts[0].lower() == "subscriptions" and parts[2].lower() == "resourcegroups":
        return Scope((parts[1],), parts[3])
    if (
        len(parts) == 4
        and [p.lower() for p in parts[:3]] == ["providers", "microsoft.management", "managementgroups"]
        and _GROUP_NAME.match(parts[3])
    ):
        return Scope((), management_group=parts[3])
    raise SettingsError(
        f"{setting}: {text.strip()!r} is not a scope; expected subscription ids, /subscriptions/<id>"
        "[/resourceGroups/<name>] or /providers/Microsoft.Management/managementGroups/<id>, separated by commas"
    )


def parse_all(raw: str | None, setting: str) -> tuple[Scope, ...]:
    """A comma- (or semicolon-) separated list of scopes."""
    return tuple(parse(s, setting) for s in (raw or "").replace(";", ",").split(",") if s.strip())


def descendants(azure: Azure, group: str) -> tuple[str, ...]:
    """The subscriptions below a management group, at any depth (lower-cased, sorted)."""
    path = f"{GROUP_PREFIX}{group}/descendants"
    subs = {
        str(item.get("name", "")).lower()
        for item in azure.list(path, MANAGEMENT_GROUPS_API)
        if str(item.get("type", "")).lower() == "/subscriptions" and item.get("name")
    }
    return tuple(sorted(subs))


def expand(azure: Azure | None, scopes: Iterable[Scope], not_scopes: Iterable[Scope] = ()) -> tuple[Scope, ...]:
    """The scopes with each management group replaced by its descendant subscriptions, every scope carrying the
    not-scopes as `excluded` prefixes, and the subscriptions a not-scope excludes whole left out. Azure is asked only
    when a management group is among them (once per group); an `AzureAccessError` propagates."""
    known: dict[str, tuple[str, ...]] = {}

    def subscriptions(scope: Scope) -> tuple[str, ...]:
        if scope.management_group is None:
            return scope.subscriptions
        name = scope.management_group.lower()
        if name not in known:
            if azure is None:
                raise AzureAccessError(0, "NoAzure", "a management group scope needs access to Azure to expand")
            known[name] = descendants(azure, scope.management_group)
        return known[name]

    excluded: list[str] = []
    for ns in not_scopes:
        excluded.extend(Scope(subscriptions(ns), ns.resource_group).prefixes())
    whole = set(excluded)
    out = []
    for scope in scopes:
        subs = tuple(s for s in subscriptions(scope) if f"/subscriptions/{s.lower()}" not in whole)
        out.append(Scope(subs, scope.resource_group, scope.management_group, tuple(excluded)))
    return tuple(out)


class Scopes:
    """The runtime's scopes: the configured ones expanded (`refresh`, which each sweep calls), and the expanded scope
    holding a resource (`scope_of`). Without a management group nothing is asked of Azure. Thread-safe."""

    def __init__(
        self,
        configured: Sequence[Scope],
        not_scopes: Sequence[Scope] = (),
        azure: Callable[[], Azure] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.configured, self.not_scopes = tuple(configured), tuple(not_scopes)
        self.dynamic = any(s.management_group for s in (*self.configured, *self.not_scopes))
        self._azure = azure
        self._clock, self._retry = clock, retry_seconds
        self._lock = threading.Lock()
        self._expanded: tuple[Scope, ...] | None = None if self.dynamic else expand(None, configured, not_scopes)
        self._asked = -float("inf")

    def refresh(self) -> tuple[Scope, ...]:
        """Expand the management groups again. When Azure refuses, the last expansion stays and this logs a warning;
        with none before, the `AzureAccessError` propagates (a sweep cannot run on what it cannot read)."""
        if not self.dynamic:
            return self.current()
        with self._lock:
            self._asked = self._clock()
            try:
                azure = self._azure() if self._azure is not None else None
                self._expanded = expand(azure, self.configured, self.not_scopes)
            except AzureAccessError as e:
                if self._expanded is None:
                    raise
                log.warning("management groups not expanded again (%s); the last expansion stays", e)
            return self._expanded

    def current(self) -> tuple[Scope, ...]:
        """The last expansion (expanding first when there is none yet)."""
        expanded = self._expanded
        return expanded if expanded is not None else self.refresh()

    def subscriptions(self) -> tuple[str, ...]:
        """Every subscription in scope, once each, in the order of the scopes."""
        return tuple(dict.fromkeys(s.lower() for scope in self.current() for s in scope.subscriptions))

    def scope_of(self, resource_id: str) -> Scope | None:
        """The expanded scope holding `resource_id`, or None. An id no scope holds makes a dynamic set ask Azure
        again, at most once each `retry_seconds` (a subscription may have joined a group since). What cannot be
        expanded holds nothing."""
        try:
            found = _holding(self.current(), resource_id)
            if found is None and self.dynamic and self._clock() - self._asked >= self._retry:
                found = _holding(self.refresh(), resource_id)
        except AzureAccessError as e:
            log.warning("management groups cannot be expanded (%s): %s is not in scope", e, resource_id)
            return None
        return found


def _holding(scopes: Iterable[Scope], resource_id: str) -> Scope | None:
    return next((s for s in scopes if s.contains(resource_id)), None)


__all__ = ["GROUP_PREFIX", "MANAGEMENT_GROUPS_API", "Scopes", "descendants", "expand", "parse", "parse_all"]
