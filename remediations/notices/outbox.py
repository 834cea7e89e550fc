"""Delivering a run's notices, and keeping those that failed for a later try. A notice never blocks or undoes a fix:
`notify` never raises, it returns what happened.

    deliveries = notify(notices, settings.notices.routes, sender, store)      # after the engine applied a plan
    deliveries = retry_due(store, sender)                               # from a timer, e.g. every 15 minutes
    store.hold(run_id, notice)                                          # a sweep's notice, told in its digest
    deliveries = flush_held(store, routes, sender, quiet=QUIET)         # one digest per owner per finished sweep

A notice that still fails after the sender's own retries is saved per destination (`save_failed`); `due` gives
those whose next try has come (backoff doubling from `FIRST_RETRY` up to `MAX_RETRY`), `done` forgets one once it
was delivered, and after `MAX_ATTEMPTS` tries a notice is given up (logged, kept by `give_up` for inspection).

A sweep's notices are held (`hold`) rather than sent: the sweep fans out one work item per resource, over every
subscription, on any instance. Once no notice of a sweep has been held for `QUIET` (the sweep is done),
`flush_held` groups them per owner (digest.py) and sends one digest per owner, then forgets them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from remediations.notices.compose import Notice, Routes
from remediations.notices.delivery import Delivery
from remediations.notices.digest import Digest, group

log = logging.getLogger("cryptward.notices")

FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY = timedelta(hours=6)
MAX_ATTEMPTS = 10
QUIET = timedelta(minutes=10)  # a sweep is done when none of its notices was held for this long


class Sends(Protocol):
    def send(self, notice: Notice | Digest, ref: str) -> Delivery: ...


@dataclass(frozen=True)
class Failed:
    """A notice that could not be delivered to one destination. `id` is `<notice id>:<destination>`."""

    notice: Notice | Digest
    destination: str
    error: str
    attempts: int
    next_at: datetime

    @property
    def id(self) -> str:
        return f"{self.notice.id}:{self.destination}"


class NoticeStore(Protocol):
    """Where failed notices wait. The function app's is table-backed; `MemoryNoticeStore` is for tests and the CLI."""

    def save_failed(self, failed: Failed) -> None:
        """Insert, or replace the one with the same id."""

    def due(self, now: datetime) -> list[Failed]:
        """Those whose next try is at or before `now`, oldest first."""
        ...

    def done(self, failed_id: str) -> None:
        """Forget it (delivered, or given up)."""

    def hold(self, run_id: str, notice: Notice, now: datetime | None = None) -> None:
        """Keep a sweep's notice for its digest (the same notice twice is kept once)."""

    def held(self) -> list[tuple[str, datetime, Notice]]:
        """Every held notice: (run id, when it was held, the notice)."""
        ...

    def release(self, run_id: str, notice_ids: Iterable[str]) -> None:
        """Forget held notices (their digests were sent, or kept as failed)."""


class MemoryNoticeStore:
    def __init__(self) -> None:
        self.items: dict[str, Failed] = {}
        self.given_up: list[Failed] = []
        self.holding: dict[tuple[str, str], tuple[datetime, Notice]] = {}

    def hold(self, run_id: str, notice: Notice, now: datetime | None = None) -> None:
        self.holding[(run_id, notice.id)] = (now or datetime.now(UTC), notice)

    def held(self) -> list[tuple[str, datetime, Notice]]:
        return [(run, at, notice) for (run, _), (at, notice) in self.holding.items()]

    def release(self, run_id: str, notice_ids: Iterable[str]) -> None:
        for notice_id in notice_ids:
            self.holding.pop((run_id, notice_id), None)

    def save_failed(self, failed: Failed) -> None:
        self.items[failed.id] = failed

    def due(self, now: datetime) -> list[Failed]:
        return sorted((f for f in self.items.values() if f.next_at <= now), key=lambda f: f.next_at)

    def done(self, failed_id: str) -> None:
        self.items.pop(failed_id, None)


def backoff(attempts: int) -> timedelta:
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), MAX_RETRY)


def _safe_send(sender: Sends, notice: Notice | Digest, ref: str) -> Delivery:
    try:
        return sender.send(notice, ref)
    except Exception as e:  # a Sender never raises; another implementation might
        log.exception("cryptward notice %s to %s: the sender raised", notice.id, ref)
        return Delivery(notice.id, ref, False, 0, f"the sender raised {type(e).__name__}")


def notify(
    notices: Iterable[Notice | Digest], routes: Routes, sender: Sends, store: NoticeStore, now: datetime | None = None
) -> list[Delivery]:
    """Send each notice to its owners' destinations; keep each failure in `store`. Never raises."""
    now = now or datetime.now(UTC)
    out: list[Delivery] = []
    for notice in notices:
        refs = routes.destinations(notice.owners)
        if not refs:
            log.warning("cryptward notice %s: no route for its owners and no default route '*'", notice.id)
        for ref in refs:
            delivery = _safe_send(sender, notice, ref)
            out.append(delivery)
            if not delivery.ok:
                _keep(store, Failed(notice, ref, delivery.detail, 1, now + backoff(1)))
    return out


def flush_held(
    store: NoticeStore, routes: Routes, sender: Sends, now: datetime | None = None, quiet: timedelta = QUIET
) -> list[Delivery]:
    """Send one digest per owner for each sweep none of whose notices was held for `quiet`, then forget its held
    notices (a digest that fails is kept as failed, as any notice). Never raises."""
    now = now or datetime.now(UTC)
    try:
        runs: dict[str, list[tuple[datetime, Notice]]] = {}
        for run_id, at, notice in store.held():
            runs.setdefault(run_id, []).append((at, notice))
    except Exception:
        log.exception("cryptward: the held notices could not be read")
        return []
    out: list[Delivery] = []
    for run_id, items in runs.items():
        if now - max(at for at, _ in items) < quiet:
            continue  # the sweep may still be going
        digests = group((n for _, n in items), run_id, now)
        out += notify(digests, routes, sender, store, now)
        try:
            store.release(run_id, [n.id for _, n in items])
        except Exception:
            log.exception("cryptward: the held notices of %s could not be forgotten", run_id)
    return out


def retry_due(store: NoticeStore, sender: Sends, now: datetime | None = None) -> list[Delivery]:
    """Try again every failed notice whose time has come. Never raises."""
    now = now or datetime.now(UTC)
    out: list[Delivery] = []
    for failed in store.due(now):
        delivery = _safe_send(sender, failed.notice, failed.destination)
        out.append(delivery)
        if delivery.ok:
            _forget(store, failed.id)
        elif failed.attempts + 1 >= MAX_ATTEMPTS:
            log.error("cryptward notice %s: given up after %d attempts", failed.id, failed.attempts + 1)
            if isinstance(store, MemoryNoticeStore):
                store.given_up.append(failed)
            _forget(store, failed.id)
        else:
            attempts = failed.attempts + 1
            _keep(store, replace(failed, error=delivery.detail, attempts=attempts, next_at=now + backoff(attempts)))
    return out


def _keep(store: NoticeStore, failed: Failed) -> None:
    try:
        store.save_failed(failed)
    except Exception:
        log.exception("cryptward notice %s: could not be saved for a later try", failed.id)


def _forget(store: NoticeStore, failed_id: str) -> None:
    try:
        store.done(failed_id)
    except Exception:
        log.exception("cryptward notice %s: could not be removed from the store", failed_id)


__all__ = ["QUIET", "Failed", "MemoryNoticeStore", "NoticeStore", "flush_held", "notify", "retry_due"]
