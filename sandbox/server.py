"""The sandbox's HTTP side: one Starlette app serving ARM, the Key Vault data plane, the managed-identity token
endpoint and the admin API, over HTTPS on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import arm, rbac
from sandbox.identity import Directory, TokenError
from sandbox.listeners import Listeners
from sandbox.state import State, new_id

ARM_AUDIENCES = {
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
}
VAULT_AUDIENCES = {"https://vault.azure.net", "https://vault.azure.net/"}
_VERBS = ["GET", "PUT", "PATCH", "DELETE", "POST", "HEAD"]
DataPlane = Callable[["Sandbox", Request], Awaitable[Response]]
DATA_PLANES: dict[str, DataPlane] = {}  # first path segment -> handler (the Key Vault data plane registers "kv")


@dataclass
class Bucket:
    """A per-principal token bucket refilled continuously, like ARM's hourly read/write limits."""

    capacity: int
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self, capacity: int) -> tuple[bool, int, float]:
        now = time.monotonic()
        if capacity != self.capacity:
            self.capacity, self.tokens = capacity, float(capacity)
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.capacity / 3600.0)
        self.stamp = now
        if self.tokens < 1:
            return False, 0, (1 - self.tokens) * 3600.0 / self.capacity
        self.tokens -= 1
        return True, int(self.tokens), 0.0


class Sandbox:
    """The whole local tenant: state, directory of principals, and the ASGI app serving them."""

    def __init__(self, state_dir: Path | None = None, identity_header: str | None = None) -> None:
        self.state = State()
        self.state_dir = state_dir
        self.identity_header = identity_header or secrets.token_urlsafe(16)
        self.admin_key = secrets.token_urlsafe(16)
        self.directory = Directory(self.state.tenant_id, secrets.token_bytes(32))
        self.base_url = ""  # set once the port is known
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self._verified: dict[str, tuple[Any, float, set[str]]] = {}  # token -> (principal, exp, audiences)
        self.listeners = Listeners()
        self.state.on_reset(self._on_reset)
        from sandbox import providers

        providers.install(self)

    def _on_reset(self) -> None:
        self.buckets.clear()
        self._verified.clear()
        self.directory.reset()

    # -- authentication / authorization ------------------------------------------------------------------
    def authenticate(self, request: Request, audiences: set[str]) -> Any:
        header = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": f'Bearer authorization_uri="https://login.windows.net/{self.state.tenant_id}"'}
        if not header:
            raise arm.ArmError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", challenge
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise arm.ArmError(
                401,
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                challenge,
            )
        now = time.time()
        cached = self._verified.get(token)
        if (
            cached is not None
            and cached[1] > now
            and cached[2] is audiences
            and self.directory.by_object_id(cached[0].object_id) is cached[0]  # a deleted identity's token dies
        ):
            return cached[0]
        try:
            principal = self.directory.verify_token(token, now, audiences)
        except TokenError as exc:
            raise arm.ArmError(401, exc.code, exc.message, challenge) from exc
        if len(self._verified) > 10_000:
            self._verified.clear()
        expires = float(jwt.decode(token, options={"verify_signature": False}).get("exp", now))
        self._verified[token] = (principal, expires, audiences)
        return principal

    def authorize(self, principal: Any, action: str, scope: str, *, data_action: bool = False) -> None:
        if not self.allowed(principal.object_id, action, scope, data_action=data_action):
            raise arm.ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{principal.upn or principal.object_id}' with object id '{principal.object_id}' does not "
                f"have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If "
                "access was recently granted, please refresh your credentials.",
            )

    def allowed(self, object_id: str, action: str, scope: str, *, data_action: bool = False) -> bool:
        return rbac.is_allowed(
            object_id,
            action,
            scope,
            data_action=data_action,
            assignments=list(self.state.of_type("Microsoft.Authorization/roleAssignments")),
            role_definitions=self.role_definitions(),
        )

    def role_definitions(self) -> dict[str, dict[str, Any]]:
        """Built-in and custom role definitions by lower-cased GUID."""
        defs = {k.lower(): v for k, v in rbac.BUILTIN_ROLES.items()}
        for body in self.state.of_type("Microsoft.Authorization/roleDefinitions"):
            defs[body["name"].lower()] = body
        return defs

    def throttle(self, principal: Any, write: bool) -> dict[str, str]:
        settings = self.state.settings
        kind = "writes" if write else "reads"
        capacity = settings.write_budget if write else settings.read_budget
        bucket = self.buckets.setdefault((principal.object_id, kind), Bucket(capacity, float(capacity)))
        ok, remaining, wait = bucket.take(capacity)
        headers = {f"x-ms-ratelimit-remaining-subscription-{kind}": str(remaining)}
        if not ok and settings.throttle:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))
            raise arm.ArmError(
                429,
                "SubscriptionRequestsThrottled",
                f"Number of '{kind[:-1]}' requests for subscription exceeded the limit of '{capacity}' for time "
                f"interval '01:00:00'. Please try again after '{headers['Retry-After']}' seconds.",
                headers,
            )
        return headers

    # -- the ASGI app --------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        from sandbox import admin

        routes = [
            Route("/msi/token", self.token_endpoint, methods=["GET"]),
            *admin.routes(self),
            Route("/{prefix}", self.dispatch, methods=_VERBS),
            Route("/{prefix}/{rest:path}", self.dispatch, methods=_VERBS),
        ]
        return Starlette(routes=routes, middleware=[Middleware(_CollapseSlashes)])

    async def dispatch(self, request: Request) -> Response:
        start = time.perf_counter()
        request.state.principal = None
        plane = DATA_PLANES.get(request.path_params["prefix"].lower())
        try:
            response = await (plane(self, request) if plane else self.arm(request))
        except arm.ArmError as exc:
            response = JSONResponse(exc.body(), exc.status, exc.headers)
        response.headers.setdefault("x-ms-request-id", new_id())
        correlation = request.headers.get("x-ms-correlation-request-id") or new_id()
        response.headers.setdefault("x-ms-correlation-request-id", correlation)
        response.headers.setdefault("x-ms-routing-request-id", f"SANDBOX:{new_id()}")
        principal = request.state.principal
        self.state.calls.append(
            {
                "time": self.state.clock.iso(),
                "principal": principal.object_id if principal else None,
                "principalName": principal.display_name if principal else None,
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "status": response.status_code,
                "latencyMs": round((time.perf_counter() - start) * 1000, 3),
            }
        )
        return response

    async def arm(self, request: Request) -> Response:
        principal = self.authenticate(request, ARM_AUDIENCES)
        request.state.principal = principal
        method = request.method
        path = arm.parse_path(request.url.path, method)
        query = dict(request.query_params)
        headers = self.throttle(principal, method not in ("GET", "HEAD"))
        if path.type.lower().endswith(("/locations/operations", "/locations/operationresults")) and path.name:
            answer = arm.operation_status(self.state, path.name, path.type.lower().endswith("operationresults"))
            return _respond(answer, headers)
        rt = arm.lookup(path)
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
            correlation_id=request.headers.get("x-ms-correlation-request-id") or new_id(),
            body=body,
            sandbox=self,
        )
        answer = self.handle(call, rt)
        return _respond(answer, headers)

    def handle(self, call: arm.Call, rt: arm.ResourceType) -> arm.Answer:
        path, method, state = call.path, call.method, self.state
        self._check_scope_exists(call, rt)
        action = rbac.action_for(method if path.kind != "action" else "POST", path.type, path.action)
        scope = path.id if path.kind in ("item", "action") else (path.parent or "/")
        if path.type.lower() == "microsoft.resources/subscriptions" and path.kind == "collection":
            return arm.Answer(200, arm.page(call, self._visible_subscriptions(call.principal)))
        self.authorize(call.principal, action, scope)
        if method in ("GET", "HEAD"):
            if path.kind == "collection" and not rt.singleton:
                return arm.Answer(200, arm.page(call, rt.list(call)))
            return arm.Answer(200, rt.read(call))
        existing = rt.current(call)
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
        if answer.status < 300 and not (method == "DELETE" and answer.status == 204):
            arm.record(call, action, path.id, answer.status)
        verb = path.action if path.kind == "action" else method
        if verb in rt.lro and answer.status < 300 and answer.status != 204:
            source = answer.body if isinstance(answer.body, dict) else (existing or {})
            location = str(source.get("location", "global")).replace(" ", "").lower()
            answer = arm.lro_answer(call, path.id, answer, location)
        return answer

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

    # -- managed identity ----------------------------------------------------------------------------------
    async def token_endpoint(self, request: Request) -> Response:
        """App Service managed identity (2019-08-01, X-IDENTITY-HEADER) and its legacy form (2017-09-01, secret)."""
        q = request.query_params
        api_version = q.get("api-version", "")
        if api_version == "2017-09-01":
            supplied = request.headers.get("secret")
        else:
            supplied = request.headers.get("x-identity-header")
        if supplied != self.identity_header:
            return JSONResponse({"statusCode": 400, "message": "Missing or invalid identity header."}, 400)
        resource = q.get("resource")
        if not resource:
            return JSONResponse({"statusCode": 400, "message": "Required query parameter 'resource' is missing."}, 400)
        selectors = {
            "client_id": q.get("client_id") or q.get("clientid"),
            "object_id": q.get("object_id") or q.get("principal_id"),
            "mi_res_id": q.get("mi_res_id") or q.get("msi_res_id"),
        }
        try:
            principal = self.directory.find(**{k: v for k, v in selectors.items() if v})
        except LookupError as exc:
            return JSONResponse({"statusCode": 400, "message": str(exc)}, 400)
        token, expires_on = self.directory.mint_token(principal, resource, time.time())
        body: dict[str, Any] = {
            "access_token": token,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal.client_id,
        }
        if api_version == "2017-09-01":
            body["expires_on"] = time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(expires_on))
        else:
            body["expires_on"] = str(int(expires_on))
        return JSONResponse(body)

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


class _CollapseSlashes:
    """ARM accepts `//subscriptions/...` (the SDKs' `/{scope}` templates given a scope with a leading slash)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope, path=re.sub("/{2,}", "/", scope["path"]))
            scope.pop("raw_path", None)
        await self.app(scope, receive, send)


def _respond(answer: arm.Answer, headers: dict[str, str]) -> Response:
    merged = {**headers, **answer.headers}
    if answer.body is None:
        return Response(status_code=answer.status, headers=merged)
    return JSONResponse(answer.body, answer.status, merged)


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else dict(obj)
