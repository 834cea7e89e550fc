"""The admin API (`/_sandbox/...`): reset, seed, clock, settings, principals, call log. Needs X-Sandbox-Key."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import scenarios

if TYPE_CHECKING:
    from sandbox.server import Sandbox


Handler = Callable[["Sandbox", Request, Any], Any]  # (sandbox, request, JSON body or None) -> JSON or a Response


def routes(sb: Sandbox) -> list[Route]:
    """The admin API's routes: the table below, then what providers registered (sandbox/hooks.py)."""
    own = [(path, functools.partial(fn, sb), methods) for path, fn, methods in TABLE]
    extra = [route for table in sb.hooks.admin_tables for route in table(sb)]
    return [Route(path, endpoint(sb, fn), methods=methods) for path, fn, methods in [*own, *extra]]


def endpoint(sb: Sandbox, fn: Callable[[Request, Any], Any]) -> Callable[[Request], Awaitable[Response]]:
    """`fn` behind the admin key, with the JSON body it was sent; a KeyError, ValueError or TypeError is a 400."""

    async def guarded(request: Request) -> Response:
        refusal = refused(request.headers.get("x-sandbox-key"), sb.admin_key)
        if refusal is not None:
            return refusal
        body: Any = None
        if request.method in ("POST", "PATCH", "PUT"):
            raw = await request.body()
            body = await request.json() if raw else {}
        try:
            result = fn(request, body)
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": {"code": "BadRequest", "message": str(exc)}}, 400)
        return result if isinstance(result, Response) else JSONResponse(result)

    return guarded


def refused(key: str | None, admin_key: str) -> Response | None:
    """The 403 for a request without the admin key, or None."""
    if key == admin_key:
        return None
    return JSONResponse({"error": {"code": "Forbidden", "message": "X-Sandbox-Key is missing or wrong"}}, 403)


def settings_changes(current: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The settings a PATCH changes; ValueError naming the valid ones when it names another."""
    known = {f.name for f in dataclasses.fields(current)}
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid: {sorted(known)}")
    return dict(body)


# -- the handlers: each reads or changes the sandbox in a few lines ------------------------------------------------


def health(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    return {"status": "ok", "tenantId": sb.state.tenant_id, "subscriptions": sorted(sb.state.subscriptions)}


def reset(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    sb.state.reset()
    return scenarios.seed(sb, (body or {}).get("scenario", "empty"))


def seed(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    return scenarios.seed(sb, body["scenario"])


def clock(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    if request.method == "POST":
        sb.state.clock.advance(float(body["advanceSeconds"]))
    return {"now": sb.state.clock.iso(), "offsetSeconds": sb.state.clock.offset.total_seconds()}


def settings(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    if request.method == "PATCH":
        for key, value in settings_changes(sb.state.settings, body).items():
            setattr(sb.state.settings, key, value)
    return dataclasses.asdict(sb.state.settings)


def principals(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    return {"value": [p.to_dict() for p in sb.directory.all()]}


def calls(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    """The call log; `since` (an index or an ISO time), `principal` (name, object id or display name),
    `method`, `plane` (arm | keys | token) filter it; `next` is the index to ask `since` next time."""
    return {"value": _filter_calls(sb, request.query_params), "next": len(sb.state.calls)}


def calls_summary(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    """Counts over the (filtered) call log: reads and writes per principal and per status, faults, throttles."""
    return _summarize(_filter_calls(sb, request.query_params))


def faults(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    """POST a list of rules (or {seed, rules, append}), GET them with how often each fired, DELETE them."""
    if request.method == "POST":
        return sb.faults.configure(body)
    if request.method == "DELETE":
        sb.faults.clear()
    return sb.faults.to_json()


def operations(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    since = int(request.query_params.get("since", "0"))
    ops = [dataclasses.asdict(op) for op in sb.state.operations[since:]]
    return {"value": ops, "next": len(sb.state.operations)}


def resources(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    return {"value": list(sb.state.resources.values())}


def meta(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    """Set sandbox-only facts on a resource (e.g. a disk's ADE history)."""
    rid = body["resourceId"]
    if sb.state.get(rid) is None:
        raise KeyError(f"no resource {rid}")
    sb.state.meta_of(rid).update(body["facts"])
    return {"resourceId": rid, "facts": sb.state.meta_of(rid)}


def save(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    sb.save()
    return {"saved": bool(sb.state_dir)}


def estate(sb: Sandbox, request: Request, body: Any) -> dict[str, Any]:
    """Many subscriptions of many resources at once (sandbox/bulk.py)."""
    from sandbox import bulk

    body = body or {}
    return bulk.estate(sb, int(body.get("subscriptions", 100)), int(body.get("perSubscription", 1000)))


TABLE: list[tuple[str, Handler, list[str]]] = [
    ("/_sandbox/health", health, ["GET"]),
    ("/_sandbox/reset", reset, ["POST"]),
    ("/_sandbox/seed", seed, ["POST"]),
    ("/_sandbox/clock", clock, ["GET", "POST"]),
    ("/_sandbox/settings", settings, ["GET", "PATCH"]),
    ("/_sandbox/principals", principals, ["GET"]),
    ("/_sandbox/calls", calls, ["GET"]),
    ("/_sandbox/calls/summary", calls_summary, ["GET"]),
    ("/_sandbox/faults", faults, ["GET", "POST", "DELETE"]),
    ("/_sandbox/operations", operations, ["GET"]),
    ("/_sandbox/resources", resources, ["GET"]),
    ("/_sandbox/meta", meta, ["POST"]),
    ("/_sandbox/save", save, ["POST"]),
    ("/_sandbox/estate", estate, ["POST"]),
]


def _filter_calls(sb: Sandbox, query: Any) -> list[dict[str, Any]]:
    calls = sb.state.calls
    since = query.get("since", "0")
    # an index into the log, or an ISO time compared as the log writes it
    calls = calls[int(since) :] if since.isdigit() else [c for c in calls if c["time"] >= since]
    who = query.get("principal")
    if who:
        ids = {who.lower()}
        if who in sb.directory.names():
            ids.add(sb.directory.named(who).object_id.lower())
        calls = [c for c in calls if str(c["principal"]).lower() in ids or c["principalName"] == who]
    method = query.get("method")
    if method:
        calls = [c for c in calls if c["method"] == method.upper()]
    plane = query.get("plane")
    if plane:
        calls = [c for c in calls if c.get("plane") == plane]
    return list(calls)


def _summarize(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Reads are GET and HEAD, writes every other verb (DELETE included, and counted apart as deletes too)."""

    def tally() -> dict[str, Any]:
        return {"calls": 0, "reads": 0, "writes": 0, "deletes": 0, "byStatus": {}}

    total, by_principal, by_plane, faults, throttled = tally(), {}, {}, {}, 0
    for c in calls:
        by_plane[c.get("plane")] = by_plane.get(c.get("plane"), 0) + 1
        name = c["principalName"] or c["principal"] or "anonymous"
        for t in (total, by_principal.setdefault(name, tally())):
            t["calls"] += 1
            t["reads" if c["method"] in ("GET", "HEAD") else "writes"] += 1
            t["deletes"] += c["method"] == "DELETE"
            status = str(c["status"]) if c["status"] is not None else "reset"
            t["byStatus"][status] = t["byStatus"].get(status, 0) + 1
        if c.get("fault"):
            faults[c["fault"]] = faults.get(c["fault"], 0) + 1
        throttled += bool(c.get("throttled"))
    return {**total, "byPrincipal": by_principal, "byPlane": by_plane, "faults": faults, "throttled": throttled}
