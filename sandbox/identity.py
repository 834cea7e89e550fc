"""The tenant's principals and the tokens they carry.

One `Directory` per sandbox: the named principals tests act as (`bot`, `admin`, `reader`, `intruder`, and the users
`approver` and `vault-owner`), plus the system-assigned identities resources get (a disk encryption set's). Ids are
uuid5 of the name, so they are the same every run. Tokens are HS256 JWTs shaped like Azure AD v1 access tokens;
only the sandbox can mint or verify them.

Errors carry the codes and messages Azure answers with (checked against public reports of real responses):
`TokenError` for ARM's 401s, `IdentityNotFound` for the managed-identity endpoint's 400.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from sandbox.state import DEFAULT_SUBSCRIPTION

__all__ = [
    "ARM_AUDIENCES",
    "AZURE_CLI_APP_ID",
    "VAULT_AUDIENCES",
    "Directory",
    "IdentityNotFound",
    "Principal",
    "TokenError",
    "bearer_token",
]

AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
# In the order ARM lists them when it refuses a token's audience.
_ARM_AUDIENCE_ORDER = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)
ARM_AUDIENCES = frozenset(_ARM_AUDIENCE_ORDER)
VAULT_AUDIENCES = frozenset({"https://vault.azure.net", "https://vault.azure.net/"})

# Fixed namespace for the named principals' ids: changing it changes every id `python -m sandbox env` prints.
_NAMESPACE = uuid.UUID("5f0c6a43-2b1e-4c8e-9a57-c7a3d0e1b2f4")
_ALGORITHM = "HS256"
_BOT_IDENTITY = (
    "/subscriptions/{sub}/resourceGroups/rg-cryptward/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
    "id-cryptward"
)


class TokenError(Exception):
    """A bearer token ARM would refuse (401). `code`/`message` are ARM's error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class IdentityNotFound(LookupError):
    """No managed identity matches the token request (IMDS answers 400 with this body)."""

    def __init__(self, description: str = "Identity not found") -> None:
        super().__init__(description)
        self.description = description

    def to_body(self) -> dict[str, str]:
        return {"error": "invalid_request", "error_description": self.description}


@dataclass
class Principal:
    object_id: str
    # The app id. A user has no app of its own: its client_id is a sandbox-only handle the token endpoint accepts
    # (standing in for signing in through the Azure CLI), and its tokens carry the Azure CLI's app id.
    client_id: str | None
    kind: str  # "ServicePrincipal" | "User"
    display_name: str
    upn: str | None = None
    mi_resource_id: str | None = None  # user-assigned managed identities
    system_assigned_for: str | None = None  # the resource a system-assigned identity belongs to
    name: str | None = None  # the handle of a named principal: "bot", "admin", "reader", "intruder"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_user(self) -> bool:
        return self.kind == "User"

    @property
    def managed_identity_id(self) -> str | None:
        """What Azure puts in `xms_mirid`: the identity's own id, or its owner's for a system-assigned one."""
        return self.mi_resource_id or self.system_assigned_for


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _sp(name: str, display_name: str, mi_resource_id: str | None = None) -> Principal:
    oid, app = _stable_id(name, "object"), _stable_id(name, "client")
    return Principal(oid, app, "ServicePrincipal", display_name, mi_resource_id=mi_resource_id, name=name)


def _user(name: str, display_name: str, upn: str) -> Principal:
    return Principal(_stable_id(name, "object"), _stable_id(name, "client"), "User", display_name, upn, name=name)


class Directory:
    """The principals of one tenant, and the minting and checking of their tokens."""

    def __init__(self, tenant_id: str, secret: str | bytes, subscription_id: str = DEFAULT_SUBSCRIPTION) -> None:
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id  # where the bot's user-assigned identity lives
        self._secret = secret
        self._by_oid: dict[str, Principal] = {}
        self._named: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the named principals only (system-assigned identities go with their resources)."""
        self._by_oid.clear()
        self._named.clear()
        self._add_named("bot", _sp("bot", "id-cryptward", _BOT_IDENTITY.format(sub=self.subscription_id)))
        self._add_named("admin", _user("admin", "Estate Administrator", "admin@contoso.example"))
        self._add_named("reader", _user("reader", "Estate Reader", "reader@contoso.example"))
        self._add_named("intruder", _sp("intruder", "intruder-app"))
        # Users who sign in through the OpenID Connect provider (sandbox/oidc.py) to approve changes.
        self._add_named("approver", _user("approver", "Change Approver", "approver@contoso.example"))
        self._add_named("vault-owner", _user("vault-owner", "Vault Owner", "vault-owner@contoso.example"))

    def _add_named(self, name: str, principal: Principal) -> None:
        self._named[name] = principal.object_id
        self._by_oid[principal.object_id] = principal

    # --- lookup -------------------------------------------------------------------------------------------------

    def named(self, name: str) -> Principal:
        try:
            return self._by_oid[self._named[name]]
        except KeyError:
            raise KeyError(f"no principal named {name!r}; named principals: {sorted(self._named)}") from None

    def names(self) -> dict[str, Principal]:
        return {name: self._by_oid[oid] for name, oid in self._named.items()}

    @property
    def default(self) -> Principal:
        return self.named("bot")

    def by_object_id(self, object_id: str) -> Principal | None:
        return self._by_oid.get(object_id.lower())

    def all(self) -> list[Principal]:
        return list(self._by_oid.values())

    def find(
        self, client_id: str | None = None, object_id: str | None = None, mi_res_id: str | None = None
    ) -> Principal:
        """The identity a managed-identity token request selects (IMDS / App Service rules).

        At most one selector; none selects the default identity (`bot`). Raises `IdentityNotFound`.
        """
        given = [s for s in (client_id, object_id, mi_res_id) if s]
        if len(given) > 1:
            raise IdentityNotFound("Only one of client_id, object_id/principal_id and mi_res_id may be given")
        if not given:
            return self.default
        for p in self._by_oid.values():
            if (
                (client_id and p.client_id and p.client_id.lower() == client_id.lower())
                or (object_id and p.object_id == object_id.lower())
                or (mi_res_id and p.managed_identity_id and p.managed_identity_id.lower() == mi_res_id.lower())
            ):
                return p
        raise IdentityNotFound()

    # --- system-assigned identities ------------------------------------------------------------------------------

    def add_system_identity(self, resource_id: str) -> Principal:
        """A new service principal for a resource's system-assigned identity (the existing one if it has one)."""
        existing = self.system_identity_of(resource_id)
        if existing:
            return existing
        oid, app = str(uuid.uuid4()), str(uuid.uuid4())
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        principal = Principal(oid, app, "ServicePrincipal", name, system_assigned_for=resource_id)
        self._by_oid[oid] = principal
        return principal

    def add_user_identity(self, resource_id: str) -> Principal:
        """A user-assigned managed identity (`Microsoft.ManagedIdentity/userAssignedIdentities/{name}`), made by a
        scenario: the sandbox serves no ManagedIdentity provider. The existing one when it exists."""
        for p in self._by_oid.values():
            if p.mi_resource_id and p.mi_resource_id.lower() == resource_id.lower():
                return p
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        principal = _sp(f"uai:{resource_id.lower()}", name, resource_id)
        principal.name = None
        self._by_oid[principal.object_id] = principal
        return principal

    def system_identity_of(self, resource_id: str) -> Principal | None:
        wanted = resource_id.lower()
        for p in self._by_oid.values():
            if p.system_assigned_for and p.system_assigned_for.lower() == wanted:
                return p
        return None

    def remove_system_identity(self, resource_id: str) -> Principal | None:
        """Deleting a resource deletes its identity: a re-created resource gets a new principal, as in Azure."""
        p = self.system_identity_of(resource_id)
        if p:
            del self._by_oid[p.object_id]
        return p

    # --- tokens -------------------------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    def mint_token(self, principal: Principal, audience: str, now: float, lifetime: int = 86400) -> tuple[str, int]:
        """An access token for `audience` (kept exactly as requested, like AAD v1), and its expiry (epoch s)."""
        claims = self.claims(principal, audience, now, lifetime)
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM), claims["exp"]

    def claims(
        self,
        principal: Principal,
        audience: str = "https://management.azure.com/",
        now: float = 0,
        lifetime: int = 86400,
    ) -> dict[str, Any]:
        """The claims of the principal's access token, shaped like Azure AD v1's."""
        iat = int(now)
        exp = iat + lifetime
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "tid": self.tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        if principal.is_user:
            claims |= {
                "appid": AZURE_CLI_APP_ID,
                "appidacr": "0",
                "idtyp": "user",
                "amr": ["pwd"],
                "scp": "user_impersonation",
                "name": principal.display_name,
                "upn": principal.upn,
                "unique_name": principal.upn,
            }
        else:
            claims |= {"appid": principal.client_id, "appidacr": "2", "idp": self.issuer, "idtyp": "app"}
            if principal.managed_identity_id:
                claims["xms_mirid"] = principal.managed_identity_id
        return claims

    def verify_token(self, token: str, now: float, audiences: set[str] | frozenset[str]) -> Principal:
        """The principal a bearer token stands for, or `TokenError` with ARM's code and message."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise TokenError("InvalidAuthenticationToken", "The access token is invalid.") from None
        exp, nbf, aud = claims.get("exp"), claims.get("nbf", 0), claims.get("aud")
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float) or not isinstance(aud, str):
            raise TokenError("InvalidAuthenticationToken", "The access token is invalid.")
        if now >= exp:
            raise TokenError(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_dotnet_time(exp)}' is earlier than current UTC time "
                f"'{_dotnet_time(now)}'.",
            )
        if now < nbf:
            raise TokenError("InvalidAuthenticationToken", "The access token is invalid.")
        if aud not in audiences:
            ordered = _ARM_AUDIENCE_ORDER if audiences == ARM_AUDIENCES else sorted(audiences)
            allowed = ",".join(f"'{a}'" for a in ordered)
            raise TokenError(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{aud}'. "
                f"It should exactly match with one of the allowed audiences {allowed}.",
            )
        if claims.get("tid") != self.tenant_id or claims.get("iss") != self.issuer:
            raise TokenError(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'. It must match the tenant "
                f"'{self.issuer}' associated with this subscription. Please use the authority (URL) "
                f"'https://login.windows.net/{self.tenant_id}' to get the token.",
            )
        principal = self._by_oid.get(str(claims.get("oid", "")).lower())
        if principal is None:
            raise TokenError("InvalidAuthenticationToken", "The access token is invalid.")
        return principal

    # --- persistence --------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "subscription_id": self.subscription_id,
            "named": dict(self._named),
            "principals": [p.to_dict() for p in self._by_oid.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], secret: str | bytes) -> Directory:
        directory = cls(data["tenant_id"], secret, data["subscription_id"])
        directory._by_oid = {p["object_id"]: Principal(**p) for p in data["principals"]}
        directory._named = dict(data["named"])
        return directory


def bearer_token(authorization: str | None) -> str:
    """The token in an `Authorization: Bearer ...` header, or `TokenError` as ARM words it."""
    if not authorization:
        raise TokenError("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(
            "AuthenticationFailedInvalidHeader",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
    return token.strip()


def _dotnet_time(epoch: float) -> str:
    """ARM prints times the .NET en-US way: 6/15/2026 8:22:51 AM."""
    t = datetime.fromtimestamp(epoch, UTC)
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"
