"""The sandbox's HTTP side: one Starlette app serving ARM, the Key Vault data plane, the managed-identity token
endpoint (sandbox/msi.py) and the admin API, over HTTPS on 127.0.0.1; who may do what is sandbox/access.py's."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route, Router

from sandbox import arm, faults, paging, rbac, throttling
from sandbox.access import CHECKS, Access
from sandbox.hooks import Hooks
from sandbox.identity import ARM_AUDIENCES, Directory
from sandbox.listeners import Listeners
from sandbox.msi import ManagedIdentity
from sandbox.state import State, new_id

_VERBS = ["GET", "PUT", "PATCH", "DELETE", "POST", "HEAD"]


class Sandbox(Access, ManagedIdentity):
    """The whole local tenant: state, directory of principals, and the ASGI app serving them."""

    def __init__(self, state_dir: Path | None = None, identity_header: str | None = None) -> None:
        self.state = State()
        self.state_dir = state_dir
        self.identity_header = identity_header or secrets.token_urlsafe(16)
        self.admin_key = secrets.token_urlsafe(16)
        self.directory = Directory(self.state.tenant_id, secrets.token_bytes(32))
        self.base_url = ""  # set once the port is known
        self.throttler = throttling.Throttler(self.state)
        self.faults = faults.Faults()  # the Event Grid delivery engine asks `faults.for_delivery(url)` too
        self._verified: dict[str, tuple[Any, float, set[str]]] = {}  # token -> (principal, exp, audiences)
        self.listeners = Listeners()
        self.ca_path: Path | None = None  # the CA that signs the sandbox's certificates, once known
        self.startup_hooks: list[Callable[[], Awaitable[None]]] = []  # run on the server's loop once it serves
        self.state.on_reset(self._on_reset)
        self.hooks = Hooks()  # what the providers register: data planes, admin routes
        from sandbox import providers

        providers.install(self)

    def _on_reset(self) -> None:
        self.throttler.clear()
        self.faults.clear()
        self._verified.clear()
        self.directory.reset()

    def throttle(self, principal: Any, method: str, subscription: str | None) -> dict[str, str]:
        """ARM's token buckets (sandbox/throttling.py): the ratelimit headers, or ArmError 429."""
        return self.throttler.arm(principal, method, subscription)

    # -- the ASGI app --------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        from sandbox import admin, oidc, receivers

        routes = [
            Route("/msi/token", self.token_endpoint, methods=["GET"]),
            *admin.routes(self),
            *receivers.routes(self),
            *oidc.routes(self),  # the tenant's OpenID Connect provider (before the ARM catch-all)
            Route("/{prefix}", self.dispatch, methods=_VERBS),
            Route("/{prefix}/{rest:path}", self.dispatch, methods=_VERBS),
        ]
        app = Starlette(routes=routes, middleware=[Middleware(_CollapseSlashes)])
        app.router = _ArmFirst(routes, catchalls=2)  # the same routes, matched in the same order, sooner
        return app

    async def dispatch(self, request: Request) -> Response:
        start = time.perf_counter()
        request.state.checks = []
        CHECKS.set(request.state.checks)
        request.state.principal = None
        request.state.throttled = False
        plane = self.hooks.data_planes.get(request.path_params["prefix"].lower())
        correlation = request.state.correlation = request.headers.get("x-ms-correlation-request-id") or new_id()
        fault = None
        if self.faults.active:
            fault = self.faults.for_request(request.method, request.url.path, lambda: self._bearer_principal(request))
        if fault is not None and fault.kind == "reset" and await faults.reset_connection(self, request):
            self._log_call(request, start, None, "keys" if plane else "arm", correlation, fault)
            return Response(status_code=500)  # never sent: the connection is gone
        try:
            if fault is not None and fault.kind in ("500", "503", "429"):
                raise faults.error_for(
                    fault,
                    request.method,
                    subscription=_subscription_of(request.url.path),
                    correlation_id=correlation,
                    now=self.state.clock.iso(),
                    data_plane=plane is not None,
                )
            if plane is not None:
                cost = await plane.cost(self, request) if plane.cost is not None else None
                if cost is not None:
                    try:
                        self.throttler.vault(*cost)
                    except arm.ArmError:
                        request.state.throttled = True
                        raise
                response = await plane.handle(self, request)
            else:
                response = await self.arm(request, fault)
        except arm.ArmError as exc:
            response = JSONResponse(exc.body(), exc.status, exc.headers)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault is not None and fault.kind == "lroFailed" and not getattr(request.state, "lro_failed", False):
            fault = None  # not a long-running write: nothing failed
        response.headers.setdefault("x-ms-request-id", new_id())
        response.headers.setdefault("x-ms-correlation-request-id", correlation)
        response.headers.setdefault("x-ms-routing-request-id", f"SANDBOX:{new_id()}")
        self._log_call(request, start, response.status_code, "keys" if plane else "arm", correlation, fault)
        return response

    def _log_call(
        self,
        request: Request,
        start: float,
        status: int | None,
        plane: str,
        correlation: str,
        fault: faults.Fault | None,
    ) -> None:
        principal = request.state.principal
        if principal is None and fault is not None:  # answered before authentication: say whose token it was
            principal = self._bearer_principal(request)
        self.state.calls.append(
            {
                "time": self.state.clock.iso(),
                "principal": principal.object_id if principal else None,
                "principalName": principal.display_name if principal else None,
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "status": status,
                "latencyMs": round((time.perf_counter() - start) * 1000, 3),
                "plane": plane,
                "correlationId": correlation,
                "throttled": request.state.throttled,
                "fault": fault.kind if fault is not None else None,
                # the RBAC checks the request made: principal, action, dataAction, scope, allowed
                "actions": getattr(request.state, "checks", []),
            }
        )

    def _bearer_principal(self, request: Request) -> Any:
        """Whose bearer token a request carries, without verifying it (fault matching, the call log)."""
        _, _, token = (request.headers.get("authorization") or "").partition(" ")
        if not token:
            return None
        cached = self._verified.get(token)
        if cached is not None:
            return cached[0]
        try:
            oid = jwt.decode(token, options={"verify_signature": False}).get("oid")
        except jwt.PyJWTError:
            return None
        return self.directory.by_object_id(str(oid)) if oid else None

    async def arm(self, request: Request, fault: faults.Fault | None = None) -> Response:
        principal = self.authenticate(request, ARM_AUDIENCES)
        request.state.principal = principal
        method = request.method
        own = self.hooks.posts.get(request.url.path.lower().rstrip("/")) if method == "POST" else None
        if own is not None:
            return await own(self, request)
        path = arm.parse_path(request.url.path, method)
        query = dict(request.query_params)
        try:
            headers = self.throttle(principal, method, path.subscription)
        except arm.ArmError:
            request.state.throttled = True
            raise
        if path.type.lower().endswith(("/locations/operations", "/locations/operationresults")) and path.name:
            answer = arm.operation_status(self.state, path.name, path.type.lower().endswith("operationresults"))
            return _respond(answer, headers)
        rt = arm.lookup(path, query.get("api-version"))
        if method == "POST" and path.kind != "action":  # a POST names an action; on a bare collection it has none
            raise arm.ArmError(405, "MethodNotAllowed", f"The POST method is not allowed on '{path.type}'.")
        api_version = arm.check_api_version(rt, path, query.get("api-version"))
        body = None
        if method in ("PUT", "PATCH", "POST"):
            raw = await request.body()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError as exc:
                    raise arm.ArmError(
                        400,
                        "InvalidRequestContent",
                        f"The request content was invalid and could not be deserialized: {exc}",
                    ) from exc
        call = arm.Call(
            state=self.state,
            path=path,
            method=method,
            base_url=self.base_url,
            url=str(request.url),
            api_version=api_version,
            query=query,
            principal=principal,
            claims=self.directory.claims(principal),
            correlation_id=request.state.correlation,  # the same in the answer, the call log and the operation
            body=body,
            sandbox=self,
        )
        fail = fault if fault is not None and fault.kind == "lroFailed" else None
        answer = self.handle(call, rt, fail)
        if fail is not None and (answer.headers.get("Azure-AsyncOperation") or answer.status == 202):
            request.state.lro_failed = True
            self.faults.applied(fail, method, request.url.path)
        return _respond(answer, headers)

    def handle(self, call: arm.Call, rt: arm.ResourceType, fail: faults.Fault | None = None) -> arm.Answer:
        """ARM's work for one request. With `fail` (an injected lroFailed fault) a long-running write is answered
        as accepted, but its operation ends Failed and the change is undone: in Azure a failed LRO did not happen."""
        try:
            return self._handle(call, rt, fail)
        except arm.ArmError as exc:  # a refused write is an operation too (ResourceWriteFailure events)
            path = call.path
            if (call.method in ("PUT", "PATCH", "DELETE") and path.kind == "item") or path.kind == "action":
                action = rbac.action_for(call.method, path.type, path.action if path.kind == "action" else None)
                arm.record(call, action, path.id, exc.status, status="Failed")
            raise

    def _handle(self, call: arm.Call, rt: arm.ResourceType, fail: faults.Fault | None) -> arm.Answer:
        path, method, state = call.path, call.method, self.state
        self._check_scope_exists(call, rt)
        action = rbac.action_for(method if path.kind != "action" else "POST", path.type, path.action)
        scope = path.id if path.kind in ("item", "action") else (path.parent or "/")
        if path.type.lower() == "microsoft.resources/subscriptions" and path.kind == "collection":
            return arm.Answer(200, paging.page(call, lambda: self._visible_subscriptions(call.principal)))
        self.authorize(call.principal, action, scope, attributes=rt.attributes(call))
        if method in ("GET", "HEAD"):
            if path.kind == "collection" and not rt.singleton:
                return arm.Answer(200, paging.page(call, lambda: rt.list(call)))
            return arm.Answer(
                200, arm.updating(state, path.id, rt.read(call)) if path.kind == "item" else rt.read(call)
            )
        existing = rt.current(call)
        verb = path.action if path.kind == "action" else method
        if fail is not None and verb not in rt.lro:
            fail = None
        before = faults.snapshot(state) if fail is not None else None
        if method != "PUT" or existing is not None:
            arm.enforce_locks(state, method, path.id or path.parent, path.type)
        elif path.kind == "item":
            arm.enforce_locks(state, method, path.parent, path.type)
        if method == "PUT" and path.kind == "item":
            answer = rt.put(call, existing)
        elif method == "PATCH" and path.kind == "item":
            if existing is None:
                raise arm.not_found(path)
            answer = rt.patch(call, existing)
        elif method == "DELETE" and path.kind == "item":
            answer = rt.delete(call, existing)
        elif method == "POST" and path.kind == "action":
            if existing is None:
                raise arm.not_found(path)
            answer = rt.action(call, path.action or "", existing)
        else:
            raise arm.ArmError(405, "MethodNotAllowed", f"The {method} method is not allowed on '{path.type}'.")
        if fail is not None and not (answer.status < 300 and answer.status != 204):
            fail = None  # refused or nothing to do: no LRO to fail
        if answer.status < 300 and not (method == "DELETE" and answer.status == 204) and fail is None:
            arm.record(call, action, path.id, answer.status)
        if verb in rt.lro and answer.status < 300 and answer.status != 204:
            source = answer.body if isinstance(answer.body, dict) else (existing or {})
            location = str(source.get("location", "global")).replace(" ", "").lower()
            answer = arm.lro_answer(call, path.id, answer, location)
            if fail is not None and before is not None:
                self._fail_lro(call, action, fail, before)
        return answer

    def _fail_lro(self, call: arm.Call, action: str, fail: faults.Fault, before: Any) -> None:
        state = self.state
        faults.restore(state, before)
        op = state.lros[next(reversed(state.lros))]  # the one lro_answer just made
        op["status"] = "Failed"
        op["errorCode"] = fail.code or "InternalExecutionError"
        op["errorMessage"] = fail.message or "An internal execution error occurred. Please retry later."
        arm.record(call, action, call.path.id, 202, status="Failed")  # the activity log shows it; no success event

    def _check_scope_exists(self, call: arm.Call, rt: arm.ResourceType) -> None:
        path, state = call.path, self.state
        if path.subscription and path.subscription.lower() not in state.subscriptions:
            raise arm.ArmError(
                404, "SubscriptionNotFound", f"The subscription '{path.subscription}' could not be found."
            )
        if path.resource_group and not (
            path.type.lower() == "microsoft.resources/resourcegroups" and path.kind == "item"
        ):
            rg_id = f"/subscriptions/{path.subscription}/resourceGroups/{path.resource_group}"
            if state.get(rg_id) is None:
                raise arm.ArmError(
                    404, "ResourceGroupNotFound", f"Resource group '{path.resource_group}' could not be found."
                )
        parent = path.parent
        if parent and "/providers/" in parent and not rt.parent_exists(call):
            if rt.extension:  # a lock, tag set, role assignment... on a resource that does not exist
                raise arm.not_found(arm.parse_path(parent, "GET"))
            code = "ParentResourceNotFound"
            raise arm.ArmError(
                404,
                code,
                f"Can not perform requested operation on nested resource. Parent resource '{parent.rsplit('/', 1)[-1]}'"
                " not found.",
            )

    def _visible_subscriptions(self, principal: Any) -> list[dict[str, Any]]:
        out = []
        for sub in self.state.subscriptions.values():
            if self.allowed(principal.object_id, "Microsoft.Resources/subscriptions/read", sub["id"]):
                out.append(sub)
        return out

    # -- persistence ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load state.json and directory.json from the state dir (principals keep their ids; tokens are new)."""
        assert self.state_dir is not None
        self.state.load(self.state_dir / "state.json")
        directory = self.state_dir / "directory.json"
        if directory.exists():
            secret = secrets.token_bytes(32)
            self.directory = Directory.from_dict(json.loads(directory.read_text()), secret)

    def save(self) -> None:
        if self.state_dir:
            self.state.save(self.state_dir / "state.json")
            (self.state_dir / "directory.json").write_text(json.dumps(self.directory.to_dict()))


class _ArmFirst(Router):
    """Starlette's router, except that a request whose path none of the routes before the ARM catch-alls (the last
    `catchalls`) can match goes to the catch-alls at once: one regular expression, the union of those routes' own,
    says so instead of each route's in turn (thirty-odd a request, most of the sandbox's routing CPU). Any path one of
    them matches, whatever the method, and anything the catch-alls do not fully match, takes Starlette's own way, so
    every request meets the route it met before."""

    def __init__(self, routes: list[Route], catchalls: int) -> None:
        super().__init__(routes=routes)
        self._first, self._last = routes[:-catchalls], routes[-catchalls:]
        # group names made anonymous: the same name (`tenant`, `name`) may appear in several routes
        union = "|".join(f"(?:{_ANON.sub('(?:', route.path_regex.pattern)})" for route in self._first)
        self._specific = re.compile(union) if union else None

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not (self._specific and self._specific.match(get_route_path(scope))):
            for route in self._last:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


_ANON = re.compile(r"\(\?P<\w+>")


class _CollapseSlashes:
    """ARM accepts `//subscriptions/...` (the SDKs' `/{scope}` templates given a scope with a leading slash)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope, path=re.sub("/{2,}", "/", scope["path"]))
            scope.pop("raw_path", None)
        await self.app(scope, receive, send)


def _subscription_of(path: str) -> str | None:
    segs = path.split("/", 3)
    return segs[2] if len(segs) > 2 and segs[1].lower() == "subscriptions" and segs[2] else None


def _respond(answer: arm.Answer, headers: dict[str, str]) -> Response:
    merged = {**headers, **answer.headers}
    if answer.body is None:
        return Response(status_code=answer.status, headers=merged)
    return JSONResponse(answer.body, answer.status, merged)


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else dict(obj)
