"""sandbox/server.py's router: a path no route before the ARM catch-alls matches goes straight to them, and every
request meets the route (and answer) Starlette's own router gives it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.routing import Router

from sandbox.server import Sandbox, _ArmFirst


@pytest.fixture(scope="module")
def apps():
    sb = Sandbox()
    ours = sb.app()
    theirs = sb.app()
    theirs.router = Router(routes=list(theirs.router.routes))
    return sb, ours, theirs


def _sample(path_format: str) -> str:
    return path_format.replace("{rest}", "a/b").replace("{", "").replace("}", "")


def test_every_route_before_the_catch_alls_is_in_the_union(apps):
    _, ours, _ = apps
    router = ours.router
    assert isinstance(router, _ArmFirst)
    for route in router.routes[:-2]:
        assert router._specific.match(_sample(route.path_format)), route.path
    for path in ("/subscriptions/s/providers/Microsoft.KeyVault/vaults", "/kv/x/keys/k", "/providers/x", "/x"):
        assert not router._specific.match(path)


def test_each_request_gets_the_answer_starlette_s_own_router_gives(apps):
    sb, ours, theirs = apps
    sub = next(iter(sb.state.subscriptions), "s")
    paths = [_sample(route.path_format) for route in ours.router.routes[:-2]]
    paths += [
        f"/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults?api-version=2026-05-15",
        f"//subscriptions/{sub}/resourceGroups/rg?api-version=2025-04-01",
        "/providers/Microsoft.Management/managementGroups?api-version=2023-04-01",
        "/subscriptions",
        "/",
    ]

    async def answers(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1") as client:
            return [
                (method, path, r.status_code, r.headers.get("allow"))
                for method in ("GET", "POST", "PATCH", "OPTIONS")
                for path in paths
                for r in [await client.request(method, path)]
            ]

    assert asyncio.run(answers(ours)) == asyncio.run(answers(theirs))
