"""App registrations and security groups of the sandbox tenant, for its OpenID Connect provider (sandbox/oidc.py).

Admin API (X-Sandbox-Key): `POST /_sandbox/apps` registers an app (`redirectUris`, optional `displayName`,
`clientId`, `secret`: true to have one made, or its value; `groupMembershipClaims`: "SecurityGroup" | "All" for a
`groups` claim), answering its `clientId`, `clientSecret` (only then), `authority`; `GET /_sandbox/apps`,
`DELETE /_sandbox/apps/{clientId}`. `POST /_sandbox/groups` makes a security group (`displayName`, `members`:
principal names, object ids or group ids), `GET /_sandbox/groups`. Apps and groups are state tables: a reset drops
them, `--persist` keeps them. The signing key stays across resets, like the TLS certificates.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox import admin

if TYPE_CHECKING:
    from sandbox.server import Sandbox

APPS, GROUPS = "entra.apps", "entra.groups"


class Registry:
    """The tenant's apps and groups (state tables: a reset drops them, `--persist` keeps them)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def authority(self) -> str:
        return f"{self.sb.base_url}/{self.sb.state.tenant_id}"

    def register_app(self, body: dict[str, Any]) -> dict[str, Any]:
        uris = body.get("redirectUris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) and u for u in uris):
            raise ValueError("redirectUris: a non-empty list of redirect URIs is required")
        claims = body.get("groupMembershipClaims")
        if claims not in (None, "None", "SecurityGroup", "All"):
            raise ValueError("groupMembershipClaims: one of None, SecurityGroup, All")
        client_id = str(uuid.UUID(str(body.get("clientId") or uuid.uuid4())))
        secret = body.get("secret")
        if secret is True:
            secret = secrets.token_urlsafe(30)
        elif secret in (None, False):
            secret = None
        elif not isinstance(secret, str):
            raise ValueError("secret: true (make one), or the secret's value")
        app = {
            "clientId": client_id,
            "displayName": body.get("displayName") or f"app-{client_id[:8]}",
            "redirectUris": list(uris),
            "secret": secret,
            "groupMembershipClaims": None if claims == "None" else claims,
        }
        self.sb.state.table(APPS)[client_id] = app
        out = self.public_app(app)
        if secret:
            out["clientSecret"] = secret
        return out

    def public_app(self, app: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in app.items() if k != "secret"}
        return out | {
            "hasSecret": bool(app["secret"]),
            "authority": self.authority(),
            "tenantId": self.sb.state.tenant_id,
        }

    def apps(self) -> list[dict[str, Any]]:
        return [self.public_app(a) for a in self.sb.state.table(APPS).values()]

    def app(self, client_id: str) -> dict[str, Any] | None:
        return self.sb.state.table(APPS).get(client_id.lower())

    def create_group(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("displayName")
        if not isinstance(name, str) or not name:
            raise ValueError("displayName is required")
        members = [self.member_id(m) for m in body.get("members") or []]
        group = {"id": str(uuid.uuid4()), "displayName": name, "members": members}
        self.sb.state.table(GROUPS)[group["id"]] = group
        return group

    def member_id(self, ref: Any) -> str:
        ref = str(ref)
        directory = self.sb.directory
        if ref in directory.names():
            return directory.named(ref).object_id
        if directory.by_object_id(ref) is not None or ref.lower() in self.sb.state.table(GROUPS):
            return ref.lower()
        raise KeyError(f"no principal or group {ref!r}; named principals: {sorted(directory.names())}")

    def groups_of(self, object_id: str) -> list[str]:
        """The ids of the groups the principal is a member of, directly or through other groups."""
        groups = self.sb.state.table(GROUPS)
        found: list[str] = []
        frontier = {object_id.lower()}
        while frontier:
            new = [g["id"] for g in groups.values() if g["id"] not in found and frontier & set(g["members"])]
            found.extend(new)
            frontier = set(new)
        return found


def admin_routes(sb: Sandbox, registry: Registry) -> list[Route]:
    return [
        Route("/_sandbox/apps", admin.endpoint(sb, _apps(registry)), methods=["GET", "POST"]),
        Route("/_sandbox/apps/{client_id}", admin.endpoint(sb, _app(registry)), methods=["GET", "DELETE"]),
        Route("/_sandbox/groups", admin.endpoint(sb, _groups(registry)), methods=["GET", "POST"]),
    ]


def _apps(registry: Registry) -> Any:
    def handle(request: Request, body: Any) -> Any:
        if request.method == "POST":
            return JSONResponse(registry.register_app(body or {}), 201)
        return {"value": registry.apps()}

    return handle


def _app(registry: Registry) -> Any:
    def handle(request: Request, body: Any) -> Any:
        client_id = request.path_params["client_id"].lower()
        app = registry.app(client_id)
        if app is None:
            raise KeyError(f"no app {client_id}")
        if request.method == "DELETE":
            del registry.sb.state.table(APPS)[client_id]
        return registry.public_app(app)

    return handle


def _groups(registry: Registry) -> Any:
    def handle(request: Request, body: Any) -> Any:
        if request.method == "POST":
            return JSONResponse(registry.create_group(body or {}), 201)
        return {"value": list(registry.sb.state.table(GROUPS).values())}

    return handle


__all__ = ["APPS", "GROUPS", "Registry", "admin_routes"]
