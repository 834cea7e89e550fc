"""Introspection of function_app.py's function objects (for the demo, `cryptward serve` and tests)."""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from typing import Any

# function_app.py sits beside the package, as the Functions host deploys them; the `cryptward` console script does
# not put that folder on sys.path (only `python -m` from the project root does), so add it when needed.
_PROJECT = Path(__file__).resolve().parents[2]


def function_app_module() -> Any:
    try:
        return importlib.import_module("function_app")
    except ModuleNotFoundError as e:
        if e.name != "function_app" or not (_PROJECT / "function_app.py").exists():
            raise
        sys.path.insert(0, str(_PROJECT))
        return importlib.import_module("function_app")


@functools.cache
def functions() -> tuple[Any, ...]:
    """The function objects of function_app.app. `get_functions()` may be called once per FunctionApp, so cache."""
    return tuple(function_app_module().app.get_functions())


def describe_functions() -> list[str]:
    out = []
    for f in functions():
        trigger = f.get_trigger()
        out.append(f"{f.get_function_name()} ({trigger.get_binding_name()})")
    return out
