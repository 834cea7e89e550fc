"""The fix registry. A fix is registered once, by name, with `@register("name")` on its class or function.

A fix is a pure function `plan(resource, params, ctx) -> list[Change]` (see `remediations.changes`): `resource` is
the non-compliant ARM body, `params` the policy's parameters with its fix parameters over them, `ctx` a
`PlanContext`. It raises `FixDeclined(reason, detail)` to leave the resource alone on purpose.

Importing this package imports every fix module listed in `FIX_MODULES`, so `names()` is complete afterwards.
Policies name their fix; the policy loader checks that name against `names()`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from remediations.errors import FixRegistryError, options_text

# Fix modules under remediations/fixes/, imported with this package. Add a module here when you add its file.
FIX_MODULES: tuple[str, ...] = (
    "kv_purge_protection",
    "kv_delete_lock",
    "kv_owner_tag",
    "kv_rbac_authorization",
    "kv_diagnostic_setting",
    "key_rotation_policy",
    "des_auto_rotation",
    "des_key_access",
    "disk_cmk",
    "vm_encryption_at_host",
    "vm_ade_key_vault",
    "kv_defender",
    "kv_admin_alerts",
    "vmss_model",
    "snapshot_cmk",
    "modify",  # registers nothing: the planner runs an Azure Policy Modify effect's operations through it
)

_REGISTRY: dict[str, Any] = {}
_READS: dict[str, tuple[str, ...]] = {}

T = TypeVar("T")


def register(name: str, reads: tuple[str, ...] = ()) -> Callable[[T], T]:
    """Class or function decorator: register the fix under `name` (unique). `reads`: `cryptward` fields the fix
    consults beyond its policy's condition (the reader fills them, and a finding whose block could not be read is
    skipped as cannot-read)."""

    def decorate(fix: T) -> T:
        if name in _REGISTRY:
            raise FixRegistryError(f"fix {name!r} is registered twice: {_REGISTRY[name]!r} and {fix!r}")
        _REGISTRY[name] = fix
        _READS[name] = tuple(reads)
        return fix

    return decorate


def reads(name: str) -> tuple[str, ...]:
    """The `cryptward` fields the fix `name` reads besides its policy's condition; () for an unknown name."""
    return _READS.get(name, ())


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
    _READS.pop(name, None)


for _module in FIX_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["FIX_MODULES", "get", "names", "reads", "register", "unregister"]
