"""An OpenID Connect provider for the sandbox tenant's users, shaped like the Microsoft identity platform v2.0
endpoints, so that a client (MSAL for Python, a browser) goes through the real authorization-code sign-in:

- `GET /{tenant}/v2.0/.well-known/openid-configuration`: the discovery document. Field for field as a recorded answer
  of `login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration` (Azure SDK for JS test recordings,
  2021), with the sandbox's base URL for `https://login.microsoftonline.com`. Graph/Kerberos/device-code URLs are
  listed as Microsoft lists them but not served. `{tenant}`: the tenant id, `organizations` or `common` (whose
  `issuer` is the template `{base}/{tenantid}/v2.0`, as Microsoft's is).
  See https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc ("Fetch the OpenID configuration
  document").
- `GET /{tenant}/discovery/v2.0/keys`: the JWKS (sandbox/signing.py).
- `GET|POST /{tenant}/oauth2/v2.0/authorize`: `response_type=code`, PKCE (`S256` or `plain`), `response_mode`
  `query` (default), `fragment` or `form_post`. With `login_hint` naming a user of the Directory (UPN or sandbox
  name) it signs that user in at once; without one (or with `prompt=select_account`) it answers an HTML page listing
  the tenant's users, each a form button posting the same request back with that user's hint. No password, no
  consent: the sandbox's sign-in is "pick a user".
  See https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow ("Request an authorization code").
- `POST /{tenant}/oauth2/v2.0/token`: `grant_type=authorization_code`; answers `token_type`, `scope`, `expires_in`,
  `ext_expires_in`, `access_token`, `id_token`. Codes are single use and live 10 minutes of the sandbox clock
  (Microsoft: "typically, they expire after about 10 minutes"), so a test expires one with `POST /_sandbox/clock`.
  See https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow ("Redeem a code for an access
  token").
- ID tokens: v2.0 claims per https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference: `aud`
  (client id), `iss` (`{base}/{tenant id}/v2.0`), `iat`, `nbf`, `exp` (1 hour), `sub` (pairwise: per user and app, as
  Microsoft's is; use `oid` + `tid` to identify a user), `oid`, `tid`, `name`, `preferred_username`, `nonce`, `ver`
  `2.0`, `uti`, `rh`, `aio`, and `groups` when the app asks for it (`groupMembershipClaims`, as in the app manifest;
  transitive memberships, like Entra's). Signed RS256 with `kid` in the header. Token times are wall-clock time, as
  the sandbox's ARM tokens are (clients check them against their own clock); code expiry follows the sandbox clock.

Refusals: sandbox/oidc_answers.py (Microsoft's error shapes and AADSTS codes). App registrations and groups, with
their admin API: sandbox/entra_apps.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.entra_apps import Registry, admin_routes
from sandbox.oidc_answers import OidcError, basic_auth, deliver, error_page, read_form, token_error
from sandbox.signing import SigningKey, ensure_signing_key

if TYPE_CHECKING:
    from sandbox.identity import Principal
    from sandbox.server import Sandbox

CODE_LIFETIME = 600  # seconds of the sandbox clock
TOKEN_LIFETIME = 3600
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MULTI_TENANT = ("organizations", "common")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    challenge: str | None
    method: str
    object_id: str
    expires: float  # sandbox clock
    redeemed: bool = False


class Provider:
    """The OpenID provider of one sandbox: app registrations, groups, codes and the signing key."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self._key: SigningKey | None = None
        self.codes: dict[str, _Code] = {}
        sb.state.on_reset(self.codes.clear)
        self.registry = Registry(sb)

    # -- configuration --------------------------------------------------------------------------------------
    @property
    def key(self) -> SigningKey:
        if self._key is None:
            sb = self.sb
            state_dir = sb.state_dir or (sb.ca_path.parent if sb.ca_path else None)
            self._key = ensure_signing_key(state_dir)
        return self._key

    @property
    def tenant_id(self) -> str:
        return self.sb.state.tenant_id

    def issuer(self, tenant: str | None = None) -> str:
        return f"{self.sb.base_url}/{tenant or self.tenant_id}/v2.0"

    def authority(self) -> str:
        return f"{self.sb.base_url}/{self.tenant_id}"

    def _tenant(self, request: Request) -> str:
        tenant = request.path_params["tenant"]
        if tenant.lower() == self.tenant_id or tenant.lower() in MULTI_TENANT:
            return tenant.lower()
        raise OidcError("90002", tenant)

    def discovery(self, tenant: str) -> dict[str, Any]:
        base = f"{self.sb.base_url}/{tenant}"
        issuer = self.issuer("{tenantid}" if tenant in MULTI_TENANT else tenant)
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                *("sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name"),
                *("msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name"),
                *("tid", "ver", "at_hash", "c_hash", "email"),
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    # -- users ----------------------------------------------------------------------------------------------
    def users(self) -> list[Principal]:
        return [p for p in self.sb.directory.all() if p.is_user]

    def user(self, hint: str) -> Principal | None:
        hint = hint.strip().lower()
        for p in self.users():
            if hint in ((p.upn or "").lower(), (p.name or "").lower(), p.object_id):
                return p
        return None

    # -- tokens ---------------------------------------------------------------------------------------------
    def id_token(self, code: _Code, user: Principal, app: dict[str, Any], now: float) -> str:
        iat = int(now)
        pairwise = hashlib.sha256(f"{user.object_id}|{code.client_id}|{self.tenant_id}".encode()).digest()
        claims: dict[str, Any] = {
            "aud": code.client_id,
            "iss": self.issuer(),
            "iat": iat,
            "nbf": iat,
            "exp": iat + TOKEN_LIFETIME,
            "aio": _b64url(secrets.token_bytes(48)),
            "name": user.display_name,
            "oid": user.object_id,
            "preferred_username": user.upn,
            "rh": "0.sandbox.",
            "sub": _b64url(pairwise),
            "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "2.0",
        }
        if code.nonce is not None:
            claims["nonce"] = code.nonce
        if app.get("groupMembershipClaims") in ("SecurityGroup", "All"):
            claims["groups"] = self.registry.groups_of(user.object_id)
        return self._sign(claims)

    def access_token(self, code: _Code, user: Principal, now: float) -> str:
        """A Graph-shaped (v1) access token for the OIDC scopes: the sandbox serves no Graph, ARM refuses it."""
        iat = int(now)
        scopes = [s for s in code.scope.split() if s not in ("openid", "profile", "offline_access", "email")]
        claims = {
            "aud": GRAPH_APP_ID,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": iat,
            "nbf": iat,
            "exp": iat + TOKEN_LIFETIME,
            "appid": code.client_id,
            "name": user.display_name,
            "oid": user.object_id,
            "scp": " ".join(["openid", "profile", "email", *scopes]),
            "sub": user.object_id,
            "tid": self.tenant_id,
            "upn": user.upn,
            "ver": "1.0",
        }
        return self._sign(claims)

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key.private_pem, algorithm="RS256", headers={"kid": self.key.kid})

    # -- endpoints ------------------------------------------------------------------------------------------
    async def configuration(self, request: Request) -> Response:
        try:
            tenant = self._tenant(request)
        except OidcError as exc:
            return token_error(exc)
        return JSONResponse(self.discovery(tenant), headers={"Cache-Control": "max-age=86400, private"})

    async def keys(self, request: Request) -> Response:
        try:
            self._tenant(request)
        except OidcError as exc:
            return token_error(exc)
        issuer = self.issuer("{tenantid}")
        return JSONResponse({"keys": [self.key.jwk(issuer)]}, headers={"Cache-Control": "max-age=86400, private"})

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params |= await read_form(request)
        try:
            self._tenant(request)
            client_id = params.get("client_id")
            if not client_id:
                raise OidcError("900144", "client_id")
            app = self.registry.app(client_id)
            if app is None:
                raise OidcError("700016", client_id, self.tenant_id)
            redirect_uri = params.get("redirect_uri") or app["redirectUris"][0]
            if redirect_uri not in app["redirectUris"]:
                raise OidcError("50011", redirect_uri, client_id)
        except OidcError as exc:
            return error_page(exc)
        mode = params.get("response_mode") or "query"
        if mode not in ("query", "fragment", "form_post"):
            mode = "query"
        state = params.get("state")
        try:
            response_type = params.get("response_type", "")
            if not response_type:
                raise OidcError("900144", "response_type")
            if response_type != "code":
                raise OidcError("70005", response_type)
            if not params.get("scope"):
                raise OidcError("900144", "scope")
            challenge = params.get("code_challenge")
            method = params.get("code_challenge_method") or ("plain" if challenge else "")
            if challenge is not None and not 43 <= len(challenge) <= 128:
                raise OidcError("501491")
            if challenge and method not in ("S256", "plain"):
                raise OidcError("501478", method)
            hint = params.get("login_hint") or ""
            user = self.user(hint) if hint else None
            if user is None and params.get("prompt") == "none":
                raise OidcError("50058")
        except OidcError as exc:
            return deliver(redirect_uri, mode, {"error": exc.error, "error_description": exc.message, "state": state})
        if user is None or params.get("prompt") == "select_account":
            return self._picker(request, params, hint)
        code = secrets.token_urlsafe(48)
        self.codes[code] = _Code(
            client_id=app["clientId"],
            redirect_uri=redirect_uri,
            scope=params["scope"],
            nonce=params.get("nonce"),
            challenge=challenge,
            method=method,
            object_id=user.object_id,
            expires=self.sb.state.clock.timestamp() + CODE_LIFETIME,
        )
        self._forget_old_codes()
        answer = {"code": code, "state": state, "session_state": str(uuid.uuid4())}
        return deliver(redirect_uri, mode, answer)

    def _forget_old_codes(self) -> None:
        now = self.sb.state.clock.timestamp()
        for key in [k for k, c in self.codes.items() if c.expires < now - 3600]:
            del self.codes[key]

    def _picker(self, request: Request, params: dict[str, str], hint: str) -> Response:
        action = html.escape(str(request.url.replace(query="")), quote=True)
        carried = {k: v for k, v in params.items() if k not in ("login_hint", "prompt")}
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k, quote=True)}" value="{html.escape(v, quote=True)}">'
            for k, v in carried.items()
        )
        rows = "".join(
            f'<li><form method="post" action="{action}">{hidden}'
            f'<input type="hidden" name="login_hint" value="{html.escape(p.upn or "", quote=True)}">'
            f'<button type="submit" name="sandbox_user" value="{html.escape(p.name or p.object_id, quote=True)}">'
            f"{html.escape(p.display_name)} &lt;{html.escape(p.upn or '')}&gt;</button></form></li>"
            for p in self.users()
        )
        note = f"<p>No user matches the hint {html.escape(hint)!s}.</p>" if hint else ""
        page = (
            "<!doctype html><html><head><meta charset=utf-8><title>Sign in to your account</title></head><body>"
            f"<h1>Pick an account</h1><p>Cryptward sandbox, tenant {html.escape(self.tenant_id)}</p>{note}"
            f'<ul id="accounts">{rows}</ul></body></html>'
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def token(self, request: Request) -> Response:
        try:
            self._tenant(request)
            form = await read_form(request)
            return self._redeem(request, form)
        except OidcError as exc:
            return token_error(exc)

    def _redeem(self, request: Request, form: dict[str, str]) -> Response:
        basic_id, basic_secret = basic_auth(request.headers.get("authorization"))
        grant = form.get("grant_type")
        if not grant:
            raise OidcError("900144", "grant_type")
        if grant != "authorization_code":
            raise OidcError("70003", grant)
        client_id = form.get("client_id") or basic_id
        if not client_id:
            raise OidcError("900144", "client_id")
        app = self.registry.app(client_id)
        if app is None:
            raise OidcError("700016", client_id, self.tenant_id)
        secret = form.get("client_secret") or basic_secret
        if app["secret"]:
            if not secret:
                raise OidcError("7000218")
            if not hmac.compare_digest(secret.encode(), app["secret"].encode()):
                raise OidcError("7000215", app["clientId"])
        elif secret:
            raise OidcError("700025")
        raw = form.get("code")
        if not raw:
            raise OidcError("900144", "code")
        code = self.codes.get(raw)
        if code is None or code.client_id != app["clientId"]:
            raise OidcError("70000")
        if code.redeemed:
            raise OidcError("54005")
        if self.sb.state.clock.timestamp() >= code.expires:
            raise OidcError("70008")
        redirect_uri = form.get("redirect_uri", "")
        if redirect_uri != code.redirect_uri:
            raise OidcError("500112", redirect_uri, code.redirect_uri)
        if code.challenge:
            verifier = form.get("code_verifier", "")
            if code.method == "S256":
                expected = _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            else:
                expected = verifier
            if not verifier or not hmac.compare_digest(expected.encode(), code.challenge.encode()):
                raise OidcError("501481")
        code.redeemed = True  # a code is spent by its first good redemption, and only by it
        user = self.sb.directory.by_object_id(code.object_id)
        if user is None:  # deleted since: Microsoft would refuse the grant
            raise OidcError("70000")
        now = time.time()
        scopes = code.scope.split()
        answer = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in ["openid", "profile", "email", *scopes] if s != "offline_access"),
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": self.access_token(code, user, now),
        }
        if "openid" in scopes:
            answer["id_token"] = self.id_token(code, user, app, now)
        return JSONResponse(answer, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def routes(sb: Sandbox) -> list[Route]:
    """The provider's routes (they go before the ARM catch-all) and its admin API."""
    provider = getattr(sb, "oidc", None)
    if provider is None:
        provider = sb.oidc = Provider(sb)  # type: ignore[attr-defined]
    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", provider.configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", provider.keys, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/authorize", provider.authorize, methods=["GET", "POST"]),
        Route("/{tenant}/oauth2/v2.0/token", provider.token, methods=["POST"]),
        *admin_routes(sb, provider.registry),
    ]
