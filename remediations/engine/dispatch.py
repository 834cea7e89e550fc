"""Which changes of a plan may be written at once: independent changes on a bounded pool, the rest in plan order.

    results = dispatch(changes, decide, write, workers=8)   # {change id: result}, one per change

A change starts only when (1) every change it depends on that comes before it in the plan has finished (`decide`
then sees its result; one later in the plan, or not in it, is not done, as when writing one by one), and (2) no
change on one of its targets (the resource, the written path, the path read back) is running, or is waiting before
it in the plan: two changes on one target never run at once, and they run in plan order. `decide(change, done)`
runs on the calling thread, in plan order: the result a change gets without a write (blocked, pending approval,
refused), or None to hand it to `write(change, done)` on one of `workers` threads. When `decide` or `write` raises
(the applier's weakening guard, a bug), nothing more starts; what is running finishes, and `Stopped` carries the
results so far with the cause. With `workers` 1 every write runs on the calling thread, one after another.
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
    order: dict[str, int] = {}
    for change in changes:
        order.setdefault(change.id, len(order))
    waiting = [c for i, c in enumerate(changes) if order[c.id] == i]
    results: dict[str, R] = {}
    running: dict[Future[R], Change] = {}
    busy: set[str] = set()  # targets of the running changes
    cause: BaseException | None = None
    pool: _Pool = _Inline() if workers <= 1 else ThreadPoolExecutor(workers, thread_name_prefix="cryptward-write")
    try:
        while waiting or running:
            if cause is None:
                waiting, cause = _start(waiting, order, results, running, busy, decide, write, pool, workers)
            if not running:
                if cause is not None or not waiting:
                    break
                continue  # decided without writing: look again
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: order[running[f].id]):
                change = running.pop(future)
                busy.difference_update(targets(change))
                error = future.exception()
                if error is None:
                    results[change.id] = future.result()
                elif cause is None:
                    cause = error
    finally:
        pool.shutdown(wait=True)
    if cause is not None:
        raise Stopped(cause, results) from cause
    return results


def _start(
    waiting: list[Change],
    order: Mapping[str, int],
    results: dict[str, R],
    running: dict[Future[R], Change],
    busy: set[str],
    decide: Callable[[Change, Mapping[str, R]], R | None],
    write: Callable[[Change, Mapping[str, R]], R],
    pool: _Pool,
    workers: int,
) -> tuple[list[Change], BaseException | None]:
    """Start what may start, in plan order; the changes still waiting, and what stopped the run (or None)."""
    held = set(busy)  # targets of changes running or waiting before the one looked at
    later: list[Change] = []
    for n, change in enumerate(waiting):
        mine = targets(change)
        earlier = [d for d in change.depends_on if order.get(d, len(order)) < order[change.id]]
        if any(d not in results for d in earlier) or mine & held or len(running) >= workers:
            later.append(change)
            held |= mine
            continue
        before = {d: results[d] for d in earlier}  # a dependency later in the plan is not done, as in one by one
        try:
            decided = decide(change, before)
        except Exception as e:  # stops the run, reported with what ran (Stopped)
            return later + waiting[n:], e
        if decided is not None:
            results[change.id] = decided
            continue
        running[pool.submit(write, change, before)] = change
        busy |= mine
        held |= mine
    return later, None


__all__ = ["Stopped", "dispatch", "targets"]
