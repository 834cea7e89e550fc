"""Introspection of function_app.py's function objects (for the demo, `cryptward serve` and tests)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def functions() -> tuple[Any, ...]:
    """The function objects of function_app.app. `get_functions()` may be called once per FunctionApp, so cache."""
    import function_app

    return tuple(function_app.app.get_functions())


def describe_functions() -> list[str]:
    out = []
    for f in functions():
        trigger = f.get_trigger()
        out.append(f"{f.get_function_name()} ({trigger.get_binding_name()})")
    return out
