"""The dispatcher's guarantees under concurrency, with writes that block until the test lets them go (pure units: no
Azure; tests/engine/test_applier.py shows the same through the real clients against the sandbox)."""

import threading
from collections.abc import Mapping

import pytest

from remediations.changes import Change, Operation
from remediations.engine.dispatch import Stopped, dispatch, targets
from tests.waits import limit, wait_until

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.KeyVault/vaults"


def change(vault: str, lock: str = "cw", depends_on: tuple[str, ...] = ()) -> Change:
    path = f"{SUB}/{vault}/providers/Microsoft.Authorization/locks/{lock}"
    return Change(
        resource_id=f"{SUB}/{vault}",
        summary=f"lock {vault} {lock}",
        operation=Operation("PUT", path, "2020-05-01", {"properties": {"level": "CanNotDelete"}}),
        before={"properties.level": None},
        after={"properties.level": "CanNotDelete"},
        depends_on=depends_on,
    )


class Writes:
    """Writes that record when they start and end, and wait for `release` (unless `hold` is off)."""

    def __init__(self, hold: bool = True) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.running: set[str] = set()
        self.most = 0
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, c: Change, done: Mapping[str, str]) -> str:
        with self.lock:
            self.events.append(("start", c.summary))
            self.running.add(c.summary)
            self.most = max(self.most, len(self.running))
        assert self.release.wait(limit(30)), "never released"
        with self.lock:
            self.running.discard(c.summary)
            self.events.append(("end", c.summary))
        return "applied"

    def started(self) -> list[str]:
        with self.lock:
            return [s for kind, s in self.events if kind == "start"]


def go(c: Change, done: Mapping[str, str]) -> str | None:
    missing = [d for d in c.depends_on if done.get(d) != "applied"]
    return "blocked" if missing else None


def test_independent_changes_are_written_together_up_to_the_workers():
    changes = [change(f"kv-{i}") for i in range(6)]
    writes = Writes()
    out: dict[str, object] = {}
    runner = threading.Thread(target=lambda: out.update(dispatch(changes, go, writes, 4)))
    runner.start()
    wait_until(lambda: len(writes.started()) == 4, "four writes run at once")
    assert len(writes.started()) == 4  # a fifth waits for a worker
    writes.release.set()
    runner.join(limit(30))
    assert out == {c.id: "applied" for c in changes} and writes.most == 4


def test_a_change_starts_only_after_its_dependency_and_never_beside_a_change_on_its_target():
    first = change("kv-a")
    same_target = change("kv-a", "second")  # the same vault: after `first`, in plan order
    dependent = change("kv-b", depends_on=(first.id,))
    free = change("kv-c")
    writes = Writes()
    out: dict[str, object] = {}
    runner = threading.Thread(target=lambda: out.update(dispatch([first, same_target, dependent, free], go, writes, 8)))
    runner.start()
    wait_until(lambda: sorted(writes.started()) == sorted([first.summary, free.summary]), "the free ones start")
    assert same_target.summary not in writes.started() and dependent.summary not in writes.started()
    writes.release.set()
    runner.join(limit(30))
    ends = [s for kind, s in writes.events if kind == "end"]
    starts = writes.events.index
    assert starts(("start", same_target.summary)) > starts(("end", first.summary))
    assert starts(("start", dependent.summary)) > starts(("end", first.summary))
    assert len(ends) == 4 and set(out.values()) == {"applied"}


def test_a_dependency_that_did_not_hold_blocks_without_a_write():
    first = change("kv-a")
    dependent = change("kv-b", depends_on=(first.id,))
    later_dependency = change("kv-c", depends_on=(change("kv-z").id,))  # comes later in the plan: not done
    tail = change("kv-z")

    def failing(c: Change, done: Mapping[str, str]) -> str:
        return "failed" if c is first else "applied"

    out = dispatch([first, dependent, later_dependency, tail], go, failing, 8)
    got = [out[c.id] for c in (first, dependent, later_dependency, tail)]
    assert got == ["failed", "blocked", "blocked", "applied"]


def test_a_guard_that_raises_stops_new_work_and_keeps_what_ran():
    changes = [change(f"kv-{i}") for i in range(5)]
    writes = Writes(hold=False)

    def guard(c: Change, done: Mapping[str, str]) -> str | None:
        if c is changes[2]:
            raise AssertionError("would weaken")
        return None

    with pytest.raises(Stopped) as stopped:
        dispatch(changes, guard, writes, 2)
    assert isinstance(stopped.value.cause, AssertionError)
    assert set(stopped.value.results) == {changes[0].id, changes[1].id}  # both started before the guard
    assert writes.started() == [changes[0].summary, changes[1].summary]  # nothing after it started


def test_one_worker_writes_one_after_another_on_the_calling_thread():
    changes = [change(f"kv-{i}") for i in range(3)]
    threads: list[str] = []

    def write(c: Change, done: Mapping[str, str]) -> str:
        threads.append(threading.current_thread().name)
        return "applied"

    assert list(dispatch(changes, go, write, 1)) == [c.id for c in changes]
    assert set(threads) == {threading.current_thread().name}


def test_targets_are_the_resource_the_written_path_and_the_path_read_back():
    c = change("KV-A")
    assert targets(c) == {c.resource_id.lower(), c.operation.path.lower()}


def test_a_change_is_looked_at_again_only_while_it_waits(monkeypatch):
    """Linear in the plan: 2,000 independent changes, 8 workers: each change's targets are computed once."""
    import remediations.engine.dispatch as dispatch_module

    changes = [change(f"kv-{i}") for i in range(2000)]
    counted = []

    def counting(c: Change) -> frozenset[str]:
        counted.append(c.id)
        return targets(c)

    monkeypatch.setattr(dispatch_module, "targets", counting)
    out = dispatch(changes, go, Writes(hold=False), 8)
    assert len(out) == 2000 and len(counted) == 2000
