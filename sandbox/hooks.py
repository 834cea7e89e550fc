"""What providers give the core when they are installed, so that the core never imports a provider.

`sandbox/providers/__init__.py` imports each provider module on the list (a module registers its resource types with
`sandbox.arm.register` as it is imported) and calls its `install(sb)`, which registers the rest here:

    sb.hooks.data_plane("keys", handle, cost)   # requests on /keys/... go to `handle`, throttled by `cost`
    sb.hooks.admin(admin_table)                  # more /_sandbox/... routes (a function of the sandbox)
    sb.hooks.ancestors(fn)                       # fn(scope) -> scopes above it that its id does not spell
                                                 # (management groups), which RBAC and role assignment lists use

Providers also use the sandbox's own hooks: `sb.state.on_reset`, `sb.state.on_operation`, `sb.startup_hooks`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from sandbox.server import Sandbox

Handler = Callable[["Sandbox", "Request"], Awaitable["Response"]]
# The throttling bucket a data-plane request draws on (see Throttler.vault) and its cost; None: it costs nothing.
Cost = Callable[["Sandbox", "Request"], Awaitable[tuple[dict[str, Any], float] | None]]
AdminRoute = tuple[str, Callable[["Request", Any], Any], list[str]]  # (path, fn(request, body), methods)
AdminTable = Callable[["Sandbox"], list[AdminRoute]]


@dataclass(frozen=True)
class DataPlane:
    """A data plane served beside ARM: the requests whose first path segment is its prefix."""

    handle: Handler
    cost: Cost | None = None


@dataclass
class Hooks:
    data_planes: dict[str, DataPlane] = field(default_factory=dict)  # first path segment, lower case -> plane
    admin_tables: list[AdminTable] = field(default_factory=list)
    ancestor_finders: list[Callable[[str], list[str]]] = field(default_factory=list)

    def data_plane(self, prefix: str, handle: Handler, cost: Cost | None = None) -> None:
        """Serve requests whose path starts with /{prefix}/ with `handle` (ARM paths never start with it)."""
        if prefix.lower() in self.data_planes:
            raise ValueError(f"the data plane {prefix!r} is registered twice")
        self.data_planes[prefix.lower()] = DataPlane(handle, cost)

    def admin(self, table: AdminTable) -> None:
        """Add the routes `table(sb)` gives to the admin API (sandbox/admin.py), after its own."""
        self.admin_tables.append(table)

    def ancestors(self, finder: Callable[[str], list[str]]) -> None:
        """Add `finder(scope)`: scopes above `scope` that are not a prefix of its id (the management groups above a
        subscription), lower-cased."""
        self.ancestor_finders.append(finder)

    def scopes_above(self, scope: str) -> list[str]:
        """Every finder's scopes above `scope` (empty when no provider registered one)."""
        return [s for finder in self.ancestor_finders for s in finder(scope)]
