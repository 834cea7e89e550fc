"""Which changes of a plan may be written at once: independent changes on a bounded pool, the rest in plan order.

    results = dispatch(changes, decide, write, workers=8)   # {change id: result}, one per change

A change starts only when (1) every change it depends on that comes before it in the plan has finished (`decide`
then sees its result; one later in the plan, or not in it, is not done, as when writing one by one), and (2) no
change on one of its targets (the resource, the written path, the path read back) is running, or is waiting before
it in the plan: two changes on one target never run at once, and they run in plan order. `decide(change, done)`
runs on the calling thread, in plan order: the result a change gets without a write (blocked, pending approval,
refused), or None to hand it to `write(change, done)` on one of `workers` threads. When `decide` or `write` raises
(the applier's weakening guard, a bug), nothing more starts; what is running finishes, and `Stopped` carries the
results so far with the cause. With `workers` 1 (or a single change) every write runs on the calling thread, one
after another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, Protocol, TypeVar

from remediations.changes import Change

R = TypeVar("R")


class Stopped(Exception, Generic[R]):
    """The run stopped: `cause` was raised; `results` holds the changes that had finished, by id."""

    def __init__(self, cause: BaseException, results: Mapping[str, R]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.results = dict(results)


class _Pool(Protocol):
    def submit(self, fn: Callable[..., R], /, *args: object) -> Future[R]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class _Inline:
    """An executor that runs each task at once on the calling thread (one worker: no thread at all)."""

    def submit(self, fn: Callable[..., R], /, *args: object) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # handed to the dispatcher, as a thread's would be
            future.set_exception(e)
        return future

    def shutdown(self, wait: bool = True) -> None:
        return None


def targets(change: Change) -> frozenset[str]:
    """What a change writes or reads back: two changes sharing one of these never run at once."""
    op = change.operation
    return frozenset(p.lower() for p in (change.resource_id, op.path, op.read_path or op.path))


def dispatch(
    changes: Sequence[Change],
    decide: Callable[[Change, Mapping[str, R]], R | None],
    write: Callable[[Change, Mapping[str, R]], R],
    workers: int,
) -> dict[str, R]:
    """Each change's result by id (the first of two changes with one id decides it). Raises `Stopped`."""
    run = _Run(changes, decide, write, max(1, workers))
    try:
        run.loop()
    finally:
        run.pool.shutdown(wait=True)
    if run.cause is not None:
        raise Stopped(run.cause, run.results) from run.cause
    return run.results


class _Run(Generic[R]):
    """One dispatch. Linear in the plan: each change's targets are computed once; a change is looked at again only
    while it waits (`stalled`: for a dependency or a target, behind the changes before it); the rest of the plan is
    taken in order only while a worker is free."""

    def __init__(
        self,
        changes: Sequence[Change],
        decide: Callable[[Change, Mapping[str, R]], R | None],
        write: Callable[[Change, Mapping[str, R]], R],
        workers: int,
    ) -> None:
        self.order: dict[str, int] = {}
        for change in changes:
            self.order.setdefault(change.id, len(self.order))
        self.todo = [c for i, c in enumerate(changes) if self.order[c.id] == i]
        self.keys = {c.id: targets(c) for c in self.todo}
        self.next = 0  # the first change of `todo` not looked at yet
        self.stalled: list[Change] = []  # looked at, waiting; in plan order, all before todo[next]
        self.decide, self.write, self.workers = decide, write, workers
        self.results: dict[str, R] = {}
        self.running: dict[Future[R], Change] = {}
        self.busy: set[str] = set()  # targets of the running changes
        self.cause: BaseException | None = None
        several = workers > 1 and len(self.todo) > 1  # one change (an event's fix, an approval) needs no thread
        self.pool: _Pool = ThreadPoolExecutor(workers, thread_name_prefix="cryptward-write") if several else _Inline()

    def loop(self) -> None:
        while True:
            if self.cause is None:
                self._start()
            if not self.running:
                if self.cause is not None or (not self.stalled and self.next >= len(self.todo)):
                    return
                continue  # only decided without writing: look again
            done, _ = wait(self.running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: self.order[self.running[f].id]):
                change = self.running.pop(future)
                self.busy.difference_update(self.keys[change.id])
                error = future.exception()
                if error is None:
                    self.results[change.id] = future.result()
                elif self.cause is None:
                    self.cause = error

    def _start(self) -> None:
        """Start what may start, in plan order, while a worker is free; stop the run when `decide` raises."""
        held = set(self.busy)  # targets of changes running or waiting before the one looked at
        kept: list[Change] = []
        stalled, n = self.stalled, 0
        while n < len(stalled) and len(self.running) < self.workers and self.cause is None:
            if not self._try(stalled[n], held):
                kept.append(stalled[n])
            n += 1
        self.stalled = kept + stalled[n:]
        if n < len(stalled):
            return  # every worker busy (or stopped): the rest of the plan waits behind the stalled ones
        while self.next < len(self.todo) and len(self.running) < self.workers and self.cause is None:
            change = self.todo[self.next]
            self.next += 1
            if not self._try(change, held):
                self.stalled.append(change)

    def _try(self, change: Change, held: set[str]) -> bool:
        """Decide or start `change`: True when it got a result or a worker, False when it must wait."""
        mine, at = self.keys[change.id], self.order[change.id]
        earlier = [d for d in change.depends_on if self.order.get(d, len(self.order)) < at]
        if mine & held or any(d not in self.results for d in earlier):
            held |= mine
            return False
        before = {d: self.results[d] for d in earlier}  # one later in the plan is not done, as in one by one
        try:
            decided = self.decide(change, before)
        except Exception as e:  # stops the run, reported with what ran (Stopped)
            self.cause = e
            held |= mine
            return False
        if decided is not None:
            self.results[change.id] = decided
            return True
        self.running[self.pool.submit(self.write, change, before)] = change
        self.busy |= mine
        held |= mine
        return True


__all__ = ["Stopped", "dispatch", "targets"]
