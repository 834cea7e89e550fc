"""The admin API (`/_sandbox/...`): reset, seed, clock, settings, principals, call log. Needs X-Sandbox-Key."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import scenarios

if TYPE_CHECKING:
    from sandbox.server import Sandbox


def routes(sb: Sandbox) -> list[Route]:
    def guarded(fn):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            if request.headers.get("x-sandbox-key") != sb.admin_key:
                return JSONResponse(
                    {"error": {"code": "Forbidden", "message": "X-Sandbox-Key is missing or wrong"}}, 403
                )
            body: Any = None
            if request.method in ("POST", "PATCH", "PUT"):
                raw = await request.body()
                body = await request.json() if raw else {}
            try:
                result = fn(request, body)
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": {"code": "BadRequest", "message": str(exc)}}, 400)
            return result if isinstance(result, Response) else JSONResponse(result)

        return endpoint

    def health(request: Request, body: Any) -> dict[str, Any]:
        return {"status": "ok", "tenantId": sb.state.tenant_id, "subscriptions": sorted(sb.state.subscriptions)}

    def reset(request: Request, body: Any) -> dict[str, Any]:
        sb.state.reset()
        name = (body or {}).get("scenario", "empty")
        return scenarios.seed(sb, name)

    def seed(request: Request, body: Any) -> dict[str, Any]:
        return scenarios.seed(sb, body["scenario"])

    def clock(request: Request, body: Any) -> dict[str, Any]:
        if request.method == "POST":
            sb.state.clock.advance(float(body["advanceSeconds"]))
        return {"now": sb.state.clock.iso(), "offsetSeconds": sb.state.clock.offset.total_seconds()}

    def settings(request: Request, body: Any) -> dict[str, Any]:
        if request.method == "PATCH":
            known = {f.name for f in dataclasses.fields(sb.state.settings)}
            unknown = set(body) - known
            if unknown:
                raise ValueError(f"unknown settings {sorted(unknown)}; valid: {sorted(known)}")
            for key, value in body.items():
                setattr(sb.state.settings, key, value)
        return dataclasses.asdict(sb.state.settings)

    def principals(request: Request, body: Any) -> dict[str, Any]:
        return {"value": [p.to_dict() for p in sb.directory.all()]}

    def calls(request: Request, body: Any) -> dict[str, Any]:
        since = int(request.query_params.get("since", "0"))
        return {"value": sb.state.calls[since:], "next": len(sb.state.calls)}

    def operations(request: Request, body: Any) -> dict[str, Any]:
        since = int(request.query_params.get("since", "0"))
        ops = [dataclasses.asdict(op) for op in sb.state.operations[since:]]
        return {"value": ops, "next": len(sb.state.operations)}

    def resources(request: Request, body: Any) -> dict[str, Any]:
        return {"value": list(sb.state.resources.values())}

    def meta(request: Request, body: Any) -> dict[str, Any]:
        """Set sandbox-only facts on a resource (e.g. a disk's ADE history)."""
        rid = body["resourceId"]
        if sb.state.get(rid) is None:
            raise KeyError(f"no resource {rid}")
        sb.state.meta_of(rid).update(body["facts"])
        return {"resourceId": rid, "facts": sb.state.meta_of(rid)}

    def save(request: Request, body: Any) -> dict[str, Any]:
        sb.save()
        return {"saved": bool(sb.state_dir)}

    table = [
        ("/_sandbox/health", health, ["GET"]),
        ("/_sandbox/reset", reset, ["POST"]),
        ("/_sandbox/seed", seed, ["POST"]),
        ("/_sandbox/clock", clock, ["GET", "POST"]),
        ("/_sandbox/settings", settings, ["GET", "PATCH"]),
        ("/_sandbox/principals", principals, ["GET"]),
        ("/_sandbox/calls", calls, ["GET"]),
        ("/_sandbox/operations", operations, ["GET"]),
        ("/_sandbox/resources", resources, ["GET"]),
        ("/_sandbox/meta", meta, ["POST"]),
        ("/_sandbox/save", save, ["POST"]),
    ]
    return [Route(path, guarded(fn), methods=methods) for path, fn, methods in table]
