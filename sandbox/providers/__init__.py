"""Resource providers. Importing a provider module registers its resource types with the ARM core;
`install` also gives providers with state hooks (clock tickers, reset) the running sandbox."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.server import Sandbox

MODULES = [
    "resources",
    "locks",
    "tags",
    "authorization",
    "insights",
    "keyvault",
    "keyvault_data",
    "compute",
    "compute_disks",
    "compute_des",
    "compute_vms",
    "monitor",
    "eventgrid",
]


def install(sb: Sandbox) -> None:
    for name in MODULES:
        module = importlib.import_module(f"sandbox.providers.{name}")
        hook = getattr(module, "install", None)
        if hook is not None:
            hook(sb)
