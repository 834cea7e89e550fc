"""The read budget (this side's copy of ARM's token bucket) and the bounded pool, as pure units with a fake clock."""

import threading

from remediations import pacing
from remediations.errors import AzureAccessError
from remediations.pacing import ReadBudget, gather, scope_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_full_bucket_spends_its_burst_then_waits_for_the_refill():
    clock = FakeClock()
    budget = ReadBudget(capacity=250, refill=25.0, clock=clock, sleep=clock.sleep)
    for _ in range(250):
        budget.take("subscription:s")
    assert clock.now == 0.0
    for _ in range(50):
        budget.take("subscription:s")
    assert abs(clock.now - 2.0) < 1e-9  # 50 more at 25 a second
    assert abs(budget.waited - 2.0) < 1e-9


def test_the_header_lowers_the_copy_to_what_remains_less_the_reads_in_flight():
    clock = FakeClock()
    budget = ReadBudget(capacity=250, refill=25.0, clock=clock, sleep=clock.sleep)
    budget.take("subscription:s")
    budget.take("subscription:s")  # a second read on its way when the first is answered
    budget.done("subscription:s", "3")  # another client of the same principal spent most of the bucket
    budget.take("subscription:s")
    budget.take("subscription:s")
    assert clock.now == 0.0  # 3 left less the one in flight: 2
    budget.take("subscription:s")
    assert abs(clock.now - 0.04) < 1e-9  # then one per 1/25 s
    for _ in range(3):
        budget.done("subscription:s", "0")
    budget.done("subscription:s", "not a number")
    budget.done("subscription:s", None)


def test_a_bigger_figure_than_the_bucket_grows_the_copy():
    clock = FakeClock()
    budget = ReadBudget(capacity=250, refill=25.0, clock=clock, sleep=clock.sleep)
    budget.take("subscription:s")
    budget.done("subscription:s", "1000000")
    for _ in range(5000):
        budget.take("subscription:s")
    assert clock.now == 0.0


def test_each_subscription_has_its_own_bucket():
    clock = FakeClock()
    budget = ReadBudget(capacity=1, refill=1.0, clock=clock, sleep=clock.sleep)
    budget.take("subscription:a")
    budget.take("subscription:b")
    budget.take("tenant")
    assert clock.now == 0.0


def test_scope_of_an_arm_path():
    assert scope_of("/subscriptions/ABC/resourceGroups/g/providers/x") == "subscription:abc"
    assert scope_of("/subscriptions?api-version=1") == "tenant"
    assert scope_of("/providers/Microsoft.Authorization/operations") == "tenant"


def test_gather_keeps_the_order_bounds_the_threads_and_returns_access_errors():
    running, most = 0, 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=10)

    def fetch(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if i < 3:
            gate.wait()  # three at once: the pool really runs them together
        with lock:
            running -= 1
        if i == 5:
            raise AzureAccessError(403, "AuthorizationFailed", "no")
        return i * 10

    results = gather(fetch, range(12), workers=3)
    assert results[:5] == [0, 10, 20, 30, 40] and results[6:] == [60, 70, 80, 90, 100, 110]
    assert isinstance(results[5], AzureAccessError)
    assert most == 3


def test_gather_holds_a_window_of_pending_reads_not_one_per_item():
    # pool.map queued a future per item at once: 20,000 vaults' item lists held 20,000 (bench/scanrss.py)
    from tests.waits import wait_until

    workers, items = 2, 1000
    window = workers * pacing.WINDOW
    release, lock = threading.Event(), threading.Lock()
    finished: list[int] = []
    early: list[int] = []  # items started beyond the window while its first item was unread

    def fetch(i: int) -> int:
        if i >= window and not release.is_set():
            early.append(i)
        if i == 0:
            release.wait(60)  # the first read is slow: nothing consumes a result meanwhile
        with lock:
            finished.append(i)
        return i

    out: list[list[object]] = []
    runner = threading.Thread(target=lambda: out.append(gather(fetch, range(items), workers=workers)))
    runner.start()
    try:
        wait_until(lambda: len(finished) >= window - 1, "the rest of the window is read")
    finally:
        release.set()
        runner.join(60)
    assert early == []
    assert out == [list(range(items))]
