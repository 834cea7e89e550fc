"""How the tests wait. Every wait is for a condition; its time limit only says when to give up on the condition and
fail, so it can be generous at no cost: a test that passes never waits it out.

The limits are sized for a machine at a quarter of the speed of the 2-core machine the suite is timed on (README,
"Layout"), as a CI machine shared with other work can be: each is several times what the condition takes there
under load (`make test-under-load`). `CRYPTWARD_TEST_SLOWDOWN` (a number, default 1) multiplies every limit,
pytest's per-test timeout included (tests/conftest.py), for a machine slower still (an emulator, a debug build).
Nothing else changes with it: no test measures how fast something went; figures are bench/'s business.

    from tests.waits import limit, wait_until
    wait_until(lambda: receiver.events(), "the event arrives")      # fails after limit(WAIT) s
    subprocess.run(..., timeout=limit(120))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SETTING = "CRYPTWARD_TEST_SLOWDOWN"
# Something the sandbox, Azurite or serve does in well under a second here (a delivery, a handshake, a message
# moving queues): the default limit, a hundred times that and more.
WAIT = 30.0
# A program started by a test (Azurite, the sandbox's or serve's command line) listening: a few seconds here.
START = 60.0


def slowdown(env: dict[str, str] | os._Environ[str] = os.environ) -> float:
    text = (env.get(SETTING) or "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{SETTING} must be a number (a factor for every time limit), not {text!r}") from None
    if not value > 0:
        raise ValueError(f"{SETTING} must be above 0, not {text!r}")
    return value


SLOWDOWN = slowdown()


def limit(seconds: float) -> float:
    """A time limit of `seconds` on the machine the suite is sized for, on this one."""
    return seconds * SLOWDOWN


def wait_until(
    check: Callable[[], T], what: str | Callable[[], str], *, within: float = WAIT, every: float = 0.02
) -> T:
    """Call `check` until it returns something true, and return that. Fails, saying `what` (or what it returns, for
    a message made at that moment) did not happen, when it has not within `limit(within)` seconds."""
    deadline = time.monotonic() + limit(within)
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"{said}: not within {limit(within):g} s")
        time.sleep(every)
