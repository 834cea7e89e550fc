"""The composition root: one `Runtime` per process builds every dependency once, from one `Settings`, and the doors
hand it to the package.

    rt = current()                          # the process's runtime: built on first use from the environment
    rt.azure, rt.ledger, rt.queue, rt.notices, rt.sender, rt.policies, rt.signin, rt.scopes  # built on first use
    with use(Runtime(Settings.from_env(env))) as rt: ...   # tests and benches: install another runtime, then restore

Nothing is built at import (cold start): the settings are read on the first `current()`, the SDK clients when first
asked for. The triggers' entry points take an optional runtime and default to `current()`. A runtime does not follow
the environment: a test that wants other settings builds another runtime and installs it (`use`, `install`), and
`reset()` forgets the process's runtime so that the next `current()` reads the environment again.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from remediations.settings import Settings

log = logging.getLogger("cryptward.runtime")

if TYPE_CHECKING:
    from remediations.azure import Azure
    from remediations.notices.delivery import Sender
    from remediations.policy.loader import Policy
    from remediations.scopes import Scopes
    from remediations.store.ledger import Ledger
    from remediations.store.outbox import TableNoticeStore
    from remediations.store.workqueue import WorkQueue
    from remediations.triggers.signin import SignIn
    from remediations.work import WorkItem


class Runtime:
    """What the triggers share in one process: the settings, the clients and stores built from them, the intake's
    recent claims, and hooks (`listeners` after every enqueue, `on_fix` before each resource's evaluation). A
    dependency given to the constructor is used as it is (tests, benches); the others are built on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        azure: Azure | None = None,
        ledger: Ledger | None = None,
        queue: WorkQueue | None = None,
        notices: TableNoticeStore | None = None,
        sender: Sender | None = None,
        policies: Sequence[Policy] | None = None,
    ) -> None:
        self.settings = settings
        self._azure, self._ledger, self._queue = azure, ledger, queue
        self._notices, self._sender = notices, sender
        self._policies = tuple(policies) if policies is not None else None
        self.refused_policies: tuple[str, ...] = ()  # the definitions that did not load, once policies are loaded
        self._signin: SignIn | None = None
        self._scopes: Scopes | None = None
        self._given = [d for d in (azure, ledger, queue, notices, sender) if d is not None]  # their owners close them
        self.recent: dict[str, float] = {}
        self.lock = threading.Lock()
        self._build = threading.Lock()
        self.listeners: list[Callable[[], None]] = []
        self.on_fix: list[Callable[[str], None]] = []

    def __repr__(self) -> str:
        return f"Runtime({self.settings.storage.values.get('CRYPTWARD_WORK_QUEUE') or 'default queue'})"

    @property
    def azure(self) -> Azure:
        """ARM and Key Vault access (its SDK clients keep their connections)."""
        with self._build:
            if self._azure is None:
                from functools import partial

                from remediations.azure import Azure, CloudProfile, default_credential

                a = self.settings.azure
                factory = partial(default_credential, a.client_id)
                self._azure = Azure(a.profile or CloudProfile(), credential_factory=factory, **a.options)
            return self._azure

    @property
    def policies(self) -> tuple[Policy, ...]:
        with self._build:
            if self._policies is None:
                from remediations.policy.loader import load_policies

                loaded = load_policies(self.settings.policies)
                for refused in loaded.refused:
                    log.warning("policy definition not loaded (the others run): %s", refused)
                self.refused_policies = tuple(str(r) for r in loaded.refused)
                self._policies = tuple(loaded)
            return self._policies

    @property
    def ledger(self) -> Ledger:
        with self._build:
            if self._ledger is None:
                from remediations.store.ledger import Ledger

                self._ledger = Ledger.from_env(self.settings.storage.values)
            return self._ledger

    @property
    def queue(self) -> WorkQueue:
        with self._build:
            if self._queue is None:
                from remediations.store.workqueue import WorkQueue

                self._queue = WorkQueue.from_env(self.settings.storage.values)
            return self._queue

    @property
    def notices(self) -> TableNoticeStore:
        """The outbox: notices that failed, kept for the notices timer."""
        with self._build:
            if self._notices is None:
                from remediations.store.outbox import TableNoticeStore

                self._notices = TableNoticeStore.from_env(self.settings.storage.values)
            return self._notices

    @property
    def sender(self) -> Sender:
        with self._build:
            if self._sender is None:
                from remediations.notices.delivery import Destinations, Sender

                self._sender = Sender(Destinations(dict(self.settings.notices.destinations)))
            return self._sender

    @property
    def scopes(self) -> Scopes:
        """The scopes watched: the configured ones with management groups expanded (re-expanded by each sweep)."""
        with self._build:
            if self._scopes is None:
                from remediations.scopes import Scopes

                intake = self.settings.intake
                self._scopes = Scopes(intake.scopes, intake.not_scopes, lambda: self.azure)
            return self._scopes

    @property
    def signin(self) -> SignIn:
        """The approval page's sign-in (MSAL client, the authority's discovery document and keys, cached)."""
        with self._build:
            if self._signin is None:
                from remediations.triggers.signin import SignIn

                redirect = f"{self.settings.notices.public_url}/api/approvals"
                self._signin = SignIn(self.settings.approvals, redirect)
            return self._signin

    def enqueue(self, item: WorkItem, delay_seconds: float = 0) -> str:
        sent = self.queue.enqueue(item, delay_seconds=math.ceil(delay_seconds))
        self._woke()
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
        self._woke()
        return sent

    def _woke(self) -> None:
        for wake in list(self.listeners):
            wake()

    def close(self) -> None:
        for made in (self._ledger, self._queue, self._notices, self._sender, self._azure):
            if made is not None and not any(made is given for given in self._given):
                made.close()


_CURRENT: Runtime | None = None
_LOCK = threading.Lock()


def current() -> Runtime:
    """The process's runtime: the installed one, else one built now from the environment (then kept)."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is None:
            _CURRENT = Runtime(Settings.from_env())
            for problem in _CURRENT.settings.notices.problems():  # at start, where an operator looks first
                log.error("cryptward settings: %s; notices to it are kept and retried, not delivered", problem)
        return _CURRENT


def install(rt: Runtime | None) -> Runtime | None:
    """Make `rt` the process's runtime (None: build one from the environment on next use); returns the previous."""
    global _CURRENT
    with _LOCK:
        previous, _CURRENT = _CURRENT, rt
        return previous


@contextmanager
def use(rt: Runtime) -> Iterator[Runtime]:
    """`rt` is the process's runtime inside the block; the previous one is back after it (neither is closed)."""
    previous = install(rt)
    try:
        yield rt
    finally:
        install(previous)


def reset() -> None:
    """Close and forget the process's runtime: the next `current()` reads the environment again."""
    old = install(None)
    if old is not None:
        old.close()


__all__ = ["Runtime", "current", "install", "reset", "use"]
