"""The fix registry. A fix is registered once, by name, with `@register("name")` on its class or function.

Importing this package imports every fix module listed in `FIX_MODULES`, so `names()` is complete afterwards.
Policies name their fix; the policy loader checks that name against `names()`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from remediations.errors import FixRegistryError, options_text

# Fix modules under remediations/fixes/, imported with this package. Add a module here when you add its file.
FIX_MODULES: tuple[str, ...] = ()

_REGISTRY: dict[str, Any] = {}

T = TypeVar("T")


def register(name: str) -> Callable[[T], T]:
    """Class or function decorator: register the fix under `name` (unique)."""

    def decorate(fix: T) -> T:
        if name in _REGISTRY:
            raise FixRegistryError(f"fix {name!r} is registered twice: {_REGISTRY[name]!r} and {fix!r}")
        _REGISTRY[name] = fix
        return fix

    return decorate


def names() -> tuple[str, ...]:
    """Every registered fix name, sorted."""
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Any:
    """The fix registered under `name`; `FixRegistryError` listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FixRegistryError(f"unknown fix {name!r}{options_text(names())}") from None


def unregister(name: str) -> None:
    """Forget a fix (for tests that register throwaway fixes)."""
    _REGISTRY.pop(name, None)


for _module in FIX_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["FIX_MODULES", "get", "names", "register", "unregister"]
