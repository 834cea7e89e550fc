"""Who is deciding: the approval page signs a person in with Microsoft Entra ID and checks them against the approvers.

    signin = SignIn(settings.approvals, redirect_uri)      # built once per process by the runtime (rt.signin)
    flow = signin.start()                                   # MSAL's auth code flow (PKCE, form_post); flow["auth_uri"]
    claims = signin.finish(flow, form)                      # the IdP's form_post back -> validated ID token claims
    who = authorise(claims, settings.approvals)             # an approvals.Approver, or SignInRefused
    who = platform_principal(headers, settings.approvals)   # CRYPTWARD_SIGNIN=platform: App Service's header

`finish` redeems the code through MSAL (`acquire_token_by_auth_code_flow`, which checks state, nonce and PKCE), then
validates the ID token on its own with PyJWT: the signature against the tenant's published keys (`jwks_uri` of the
authority's discovery document), `aud` = the client id, `iss` = the discovery document's issuer for the tenant,
`exp`, `nbf`, `iat`, and the flow's nonce. `authorise` wants `tid` = the configured tenant and the `oid`, or one of
the token's `groups`, in CRYPTWARD_APPROVERS. Who may approve never comes from a resource (an owner tag anyone with
tag rights can change), only from that setting.

CRYPTWARD_SIGNIN=platform trusts `X-MS-CLIENT-PRINCIPAL`, which App Service Authentication ("Easy Auth") adds after
signing the person in. Only safe when that authentication is enabled and requires sign-in on the app: App Service
strips these headers from incoming requests only then (Microsoft Learn, "Work with user identities in Azure App
Service authentication": https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from remediations.notices.approvals import Approver

if TYPE_CHECKING:
    from remediations.settings import ApprovalSettings

LEEWAY_SECONDS = 60  # clock skew between Entra ID and the function app
PRINCIPAL_HEADER = "x-ms-client-principal"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"


class SignInRefused(Exception):
    """The sign-in is not accepted; `str(e)` says why, for the page (no token, no secret in it)."""


class SignIn:
    """An MSAL confidential client for the approval page's app registration, and the ID token check."""

    def __init__(self, settings: ApprovalSettings, redirect_uri: str) -> None:
        self.settings, self.redirect_uri = settings, redirect_uri
        self._lock = threading.Lock()
        self._app: Any = None
        self._discovery: dict[str, Any] | None = None
        self._keys: Any = None

    @property
    def app(self) -> Any:
        with self._lock:
            if self._app is None:
                import msal

                s = self.settings
                # The authority is the operator's setting, not a request's: instance discovery (a call to Microsoft
                # that vets unknown hosts) adds nothing, and MSAL then reads the authority's own discovery document.
                self._app = msal.ConfidentialClientApplication(
                    s.client_id,
                    client_credential=s.client_secret,
                    authority=s.authority,
                    instance_discovery=False,
                    verify=s.ca_bundle or True,
                )
            return self._app

    def start(self, login_hint: str | None = None) -> dict[str, Any]:
        """A new auth code flow (PKCE S256, response_mode form_post back to the approval endpoint)."""
        flow = self.app.initiate_auth_code_flow(
            scopes=[], redirect_uri=self.redirect_uri, response_mode="form_post", login_hint=login_hint
        )
        return dict(flow)

    def finish(self, flow: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
        """Redeem the code the IdP posted back; the validated ID token's claims, else SignInRefused."""
        if form.get("error"):
            raise SignInRefused(f"the sign-in was not completed ({form.get('error')}).")
        try:
            result = self.app.acquire_token_by_auth_code_flow(dict(flow), dict(form))
        except ValueError as e:  # MSAL: state mismatch, or a flow used twice
            raise SignInRefused(f"the sign-in answer does not match the sign-in it is for ({e}).") from None
        if "error" in result or not result.get("id_token"):
            raise SignInRefused(f"the identity provider refused the sign-in ({result.get('error', 'no ID token')}).")
        nonce = flow.get("nonce")  # MSAL sends its SHA-256 (hex) in the request, so the token carries that
        return self.validate(
            str(result["id_token"]), nonce=hashlib.sha256(nonce.encode()).hexdigest() if nonce else None
        )

    def discovery(self) -> dict[str, Any]:
        with self._lock:
            if self._discovery is None:
                import httpx

                url = f"{self.settings.authority}/v2.0/.well-known/openid-configuration"
                with httpx.Client(verify=self._ssl(), timeout=30) as http:
                    answer = http.get(url)
                    answer.raise_for_status()
                    self._discovery = dict(answer.json())
            return self._discovery

    def validate(self, id_token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """The claims of an ID token signed by the tenant's published keys, for this app, from this tenant's issuer,
        within its lifetime (and carrying `nonce` when given); else SignInRefused."""
        import jwt

        doc = self.discovery()
        issuer = str(doc["issuer"]).replace("{tenantid}", self.settings.tenant_id)
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(str(doc["jwks_uri"]), cache_keys=True, ssl_context=self._ssl())
        try:
            key = self._keys.get_signing_key_from_jwt(id_token).key
            claims = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.settings.client_id,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "nbf", "aud", "iss", "oid", "tid"]},
            )
        except jwt.PyJWTError as e:
            raise SignInRefused(f"the ID token is not valid ({type(e).__name__}).") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise SignInRefused("the ID token is not valid (it was issued for another sign-in).")
        return dict(claims)

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_bundle) if self.settings.ca_bundle else (
            ssl.create_default_context()
        )  # fmt: skip


def authorise(claims: Mapping[str, Any], settings: ApprovalSettings) -> Approver:
    """The approver these (validated) claims name, if CRYPTWARD_APPROVERS lets them decide; else SignInRefused."""
    oid = str(claims.get("oid") or "").lower()
    tid = str(claims.get("tid") or "").lower()
    name, upn = str(claims.get("name") or ""), str(claims.get("preferred_username") or claims.get("upn") or "")
    who = upn or name or oid
    if not oid or tid != settings.tenant_id:
        raise SignInRefused(f"{who} is not a user of the tenant Cryptward works for.")
    if oid in settings.approvers:
        return Approver(oid, tid, name, upn, oid)
    groups = claims.get("groups")
    if isinstance(groups, list):
        via = next((str(g).lower() for g in groups if str(g).lower() in settings.approvers), None)
        if via:
            return Approver(oid, tid, name, upn, via)
    elif "_claim_names" in claims:  # group overage: too many groups to list in the token
        raise SignInRefused(
            f"{who} is in too many groups for the token to list them; name the user in CRYPTWARD_APPROVERS."
        )
    raise SignInRefused(f"{who} is not one of the approvers (CRYPTWARD_APPROVERS).")


def platform_principal(headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The claims of App Service Authentication's `X-MS-CLIENT-PRINCIPAL` (base64 JSON), as ID-token-like claims
    (`oid`, `tid`, `name`, `preferred_username`, `groups`); None without the header or when it is malformed."""
    raw = next((v for k, v in headers.items() if k.lower() == PRINCIPAL_HEADER), "")
    if not raw:
        return None
    try:
        doc = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
        pairs = [(str(c["typ"]), str(c["val"])) for c in doc.get("claims") or []]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    claims: dict[str, Any] = {"groups": []}
    for typ, val in pairs:
        short = {OID_CLAIM: "oid", TID_CLAIM: "tid"}.get(typ, typ)
        if short == "groups":
            claims["groups"].append(val)
        elif short in ("oid", "tid", "name", "preferred_username", "upn") and short not in claims:
            claims[short] = val
    return claims


__all__ = ["SignIn", "SignInRefused", "authorise", "platform_principal"]
