"""Resource providers, and the one place that names them: the core imports no provider (tests/test_layout.py).

Importing a provider module registers its resource types with the ARM core (`sandbox.arm.register`); `install` then
calls each module's `install(sb)`, which registers the rest with the core (sandbox/hooks.py: data planes with their
throttling cost, admin routes) and the sandbox's own hooks (reset, operations, start-up)."""

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
    "management_groups",
    "authorization_pim",
    "insights",
    "keyvault",
    "keyvault_data",
    "keyvault_secrets",
    "compute",
    "compute_disks",
    "compute_snapshots",
    "compute_scalesets",
    "compute_images",
    "compute_des",
    "compute_vms",
    "compute_extensions",
    "compute_skus",
    "features",
    "security",
    "policy",
    "monitor",
    "eventgrid",
    "keyvault_secret_events",
    "resourcegraph",
    "retailprices",
]


def install(sb: Sandbox) -> None:
    for name in MODULES:
        module = importlib.import_module(f"sandbox.providers.{name}")
        hook = getattr(module, "install", None)
        if hook is not None:
            hook(sb)
