"""Shared: one object for equal values, never for values written differently."""

from datetime import UTC, datetime

from remediations.engine.shared import Shared

NOW = datetime(2026, 6, 1, 8, tzinfo=UTC)


def test_values_equal_in_python_but_written_differently_are_not_shared():
    share = Shared()
    first = {"a": 1, "b": [True]}
    assert share(first) is first
    assert share({"a": 1, "b": [True]}) is first
    for other in ({"b": [True], "a": 1}, {"a": True, "b": [True]}, {"a": 1.0, "b": [True]}, {"a": 1, "b": (True,)}):
        assert share(other) is other  # key order, bool, float and tuple are written differently: each kept
    odd = {"when": NOW}
    assert share(odd) is odd and share({"when": NOW}) is not odd  # not JSON data: never shared
