"""The Key Vault keys data plane, served on each vault's own port (Azure: https://{vaultName}.vault.azure.net/).

Keys: create, get (latest or a version), list, list versions, update attributes, rotate, rotation policy get/put.
Authentication is Key Vault's challenge handshake (the first request comes without a token and gets 401 +
WWW-Authenticate); authorization is Azure RBAC data actions on an RBAC vault, the vault's access policies otherwise;
then the vault's network rules. Automatic rotation by a rotation policy is NOT modelled (a policy is stored, validated
and served; rotation happens only on POST .../rotate). Key deletion and the crypto operations are not served.
"""

from __future__ import annotations

import ipaddress
import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox import rbac
from sandbox.identity import VAULT_AUDIENCES, TokenError
from sandbox.providers.keyvault import data_allowed, vault_by_name, vault_uri
from sandbox.providers.keyvault_limits import vault_cost
from sandbox.providers.keyvault_store import (
    DEFAULT_POLICY_ACTIONS,
    KeyStoreError,
    add_version,
    find_version,
    get_key,
    keys_of,
    latest_version,
    parse_duration,
    recovery_level,
    validate_policy,
    validate_spec,
)

if TYPE_CHECKING:
    from sandbox.server import Sandbox

API_VERSIONS = frozenset(
    {"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6-preview.1", "7.6-preview.2", "7.6", "2025-06-01", "2025-07-01"}
)
LATEST_API = "2025-07-01"
MAX_RESULTS = 25


class KvError(Exception):
    """A Key Vault data-plane error answer: {"error": {"code", "message", "innererror"?}}."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.inner, self.headers = status, code, message, inner, headers or {}

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return JSONResponse({"error": error}, self.status, self.headers)


async def handle(sb: Sandbox, request: Request) -> Response:
    try:
        return await _handle(sb, request)
    except KvError as exc:
        return exc.response()


def _challenge(sb: Sandbox) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{sb.state.tenant_id}", '
        'resource="https://vault.azure.net"'
    }


def _authenticate(sb: Sandbox, request: Request) -> Any:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # Verified: AKV10000 with this message, and the challenge header (SDK test recordings).
        raise KvError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", None, _challenge(sb))
    token = token.strip()
    try:
        return sb.directory.verify_token(token, time.time(), VAULT_AUDIENCES)
    except TokenError as exc:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = {}
        if exc.code == "InvalidAuthenticationTokenAudience":
            # Verified wording (public reports of real responses).
            message = f"AKV10022: Invalid audience. Expected https://vault.azure.net, found: {claims.get('aud')}."
        elif exc.code == "InvalidAuthenticationTokenTenant":
            tid = sb.state.tenant_id
            message = (
                f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tid}/, "
                f"https://login.microsoftonline.com/{tid}/v2.0, found {claims.get('iss')}."
            )  # code and wording from memory of real answers, not re-checked
        elif exc.code == "ExpiredAuthenticationToken":
            message = "AKV10013: Token expired."  # unverified AKV number and wording
        else:
            message = "AKV10046: Token validation failed."  # unverified AKV number and wording
        raise KvError(401, "Unauthorized", message, None, _challenge(sb)) from None


def _caller(sb: Sandbox, principal: Any) -> str:
    claims = sb.directory.claims(principal)
    return f"appid={claims.get('appid')};oid={principal.object_id};iss={claims.get('iss')}"


def _vault_tag(vault: dict[str, Any]) -> str:
    return f"{vault['name']};location={vault['location']}"


def _check_network(sb: Sandbox, request: Request, vault: dict[str, Any], principal: Any) -> None:
    props = vault["properties"]
    if str(props.get("publicNetworkAccess", "Enabled")).lower() == "disabled":
        # Verified: 403 Forbidden, this message, innererror ForbiddenByConnection.
        raise KvError(
            403,
            "Forbidden",
            "Public network access is disabled and request is not from a trusted service nor via an approved private "
            f"link.\r\nCaller: {_caller(sb, principal)}\r\nVault: {_vault_tag(vault)}",
            "ForbiddenByConnection",
        )
    acls = props.get("networkAcls") or {}
    if str(acls.get("defaultAction", "Allow")).lower() != "deny":
        return
    client = request.client.host if request.client else "127.0.0.1"
    address = ipaddress.ip_address(client)
    for rule in acls.get("ipRules") or []:
        try:
            if address in ipaddress.ip_network(str(rule.get("value", "")).strip("'"), strict=False):
                return
        except ValueError:
            continue
    # The first sentence and innererror are verified; the rest follows the same layout as the other refusals.
    raise KvError(
        403,
        "Forbidden",
        f"Client address is not authorized and caller is not a trusted service.\r\nClient address: {client}\r\n"
        f"Caller: {_caller(sb, principal)}\r\nVault: {_vault_tag(vault)}",
        "ForbiddenByFirewall",
    )


def _authorize(sb: Sandbox, principal: Any, vault: dict[str, Any], key: str | None, op: str) -> None:
    if data_allowed(sb, principal.object_id, vault, key, op):
        return
    if vault["properties"].get("enableRbacAuthorization"):
        resource = (f"{vault['id']}/keys/{key}" if key else vault["id"]).lower()
        # Verified layout: Forbidden + innererror ForbiddenByRbac (public reports of real responses).
        raise KvError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role "
            f"definitions were changed recently, please observe propagation time.\r\nCaller: {_caller(sb, principal)}"
            f"\r\nAction: '{rbac.DATA_ACTIONS[op]}'\r\nResource: '{resource}'\r\nAssignment: (not found)\r\n"
            f"DenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {_vault_tag(vault)}\r\n",
            "ForbiddenByRbac",
        )
    # Verified layout: Forbidden + innererror AccessDenied.
    raise KvError(
        403,
        "Forbidden",
        f"The user, group or application '{_caller(sb, principal)}' does not have keys "
        f"{rbac.KEY_PERMISSIONS[op].lower()} permission on key vault '{_vault_tag(vault)}'. For help resolving this "
        "issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
        "AccessDenied",
    )


def _not_found(name: str) -> KvError:
    # Verified: 404 KeyNotFound and this message (SDK test recordings).
    return KvError(
        404,
        "KeyNotFound",
        f"A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be "
        "able to recover it using the correct recovery command. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125182",
    )


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise KvError(400, "BadParameter", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise KvError(400, "BadParameter", "The request body must be a JSON object.")
    return body


# -- views ----------------------------------------------------------------------------------------------------------


def _uri(sb: Sandbox, vault: dict[str, Any]) -> str:
    return vault_uri(sb, vault["name"])


def _attributes(vault: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    attrs = version["attributes"]
    out = {k: attrs[k] for k in ("enabled", "nbf", "exp", "created", "updated") if attrs.get(k) is not None}
    out["recoveryLevel"] = recovery_level(vault)
    if out["recoveryLevel"].startswith("Recoverable"):
        out["recoverableDays"] = int(vault["properties"].get("softDeleteRetentionInDays") or 90)
    return out


def _bundle(sb: Sandbox, vault: dict[str, Any], entry: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    key: dict[str, Any] = {
        "kid": f"{_uri(sb, vault)}keys/{entry['name']}/{version['version']}",
        "kty": version["kty"],
        "key_ops": list(version["keyOps"]),
    }
    if version["kty"].startswith("RSA"):
        key |= {"n": version["n"], "e": version["e"]}
    else:
        key |= {"crv": version["crv"], "x": version.get("x"), "y": version.get("y")}
    out: dict[str, Any] = {"key": key, "attributes": _attributes(vault, version)}
    if version.get("tags"):
        out["tags"] = dict(version["tags"])
    return out


def _item(kid: str, vault: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kid": kid, "attributes": _attributes(vault, version)}
    if version.get("tags"):
        out["tags"] = dict(version["tags"])
    return out


def _page(sb: Sandbox, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    query = request.query_params
    try:
        size = int(query.get("maxresults", MAX_RESULTS))
        start = int(query.get("$skiptoken", "0"))
    except ValueError:
        raise KvError(400, "BadParameter", "maxresults and $skiptoken must be integers.") from None
    if not 1 <= size <= MAX_RESULTS:
        raise KvError(400, "BadParameter", f"The value of maxresults must be between 1 and {MAX_RESULTS}.")
    out: dict[str, Any] = {"value": items[start : start + size], "nextLink": None}
    if start + size < len(items):
        params = {"api-version": query.get("api-version"), "$skiptoken": str(start + size), "maxresults": str(size)}
        out["nextLink"] = str(request.url.replace(query=urlencode(params)))  # the vault's own address
    return out


def _policy_view(sb: Sandbox, vault: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    policy = entry.get("rotationPolicy") or {"lifetimeActions": DEFAULT_POLICY_ACTIONS, "attributes": {}}
    return {"id": f"{_uri(sb, vault)}keys/{entry['name']}/rotationpolicy", **json.loads(json.dumps(policy))}


# -- dispatch -------------------------------------------------------------------------------------------------------


async def _handle(sb: Sandbox, request: Request) -> Response:
    segs = [s for s in request.url.path.split("/") if s]
    # Each vault has its own port (sandbox/listeners.py): the port names the vault, as the host does in Azure.
    vault_name, route = sb.listeners.name_for(request.url.port) or "", segs
    vault = vault_by_name(sb.state, vault_name) if vault_name else None
    if vault is None:
        # In Azure an unknown vault name does not resolve in DNS; the sandbox answers 404 VaultNotFound instead.
        raise KvError(404, "VaultNotFound", f"The vault '{vault_name}' was not found.")
    principal = _authenticate(sb, request)
    request.state.principal = principal
    api_version = request.query_params.get("api-version")
    if not api_version:
        raise KvError(400, "BadParameter", "The 'api-version' query parameter is missing.")  # unverified wording
    if api_version not in API_VERSIONS:
        # Wording from memory of real answers, not re-checked.
        raise KvError(
            400,
            "BadParameter",
            f"The specified version ({api_version}) is not recognized. Consider using the latest supported version "
            f"({LATEST_API}).",
        )
    method = request.method
    if not route or route[0].lower() != "keys":
        raise KvError(400, "BadParameter", f"The request URI '{request.url.path}' is not supported by the sandbox.")
    name = route[1] if len(route) > 1 else None
    tail = [s.lower() for s in route[2:]]
    op = _operation(method, name, tail)
    _check_network(sb, request, vault, principal)
    _authorize(sb, principal, vault, name, op)
    body = await _json(request) if method in ("POST", "PUT", "PATCH") else {}
    headers = {"x-ms-keyvault-region": vault["location"], "x-ms-keyvault-service-version": "1.9.0.0"}
    result = _run(sb, request, vault, name, tail, op, body)
    return JSONResponse(result, 200, headers)


def _operation(method: str, name: str | None, tail: list[str]) -> str:
    table = {
        ("GET", None, ()): "list",
        ("POST", "create"): "create",
        ("POST", "rotate"): "rotate",
        ("GET", "versions"): "versions",
        ("GET", "rotationpolicy"): "get_rotation_policy",
        ("PUT", "rotationpolicy"): "set_rotation_policy",
    }
    if name is None:
        op = table.get((method, None, ()))
    elif not tail:
        op = {"GET": "get", "PATCH": "update"}.get(method)
    elif tail[0] in ("create", "rotate", "versions", "rotationpolicy") and len(tail) == 1:
        op = table.get((method, tail[0]))
    elif len(tail) == 1:
        op = {"GET": "get", "PATCH": "update"}.get(method)
    else:
        op = None
    if op is None:
        raise KvError(405, "MethodNotAllowed", f"The {method} method is not supported on this resource.")
    return op


def _run(
    sb: Sandbox, request: Request, vault: dict, name: str | None, tail: list[str], op: str, body: dict
) -> dict[str, Any]:
    state = sb.state
    if op == "list":
        entries = sorted(keys_of(state, vault["id"]), key=lambda e: e["name"].lower())
        items = [_item(f"{_uri(sb, vault)}keys/{e['name']}", vault, latest_version(e)) for e in entries]
        return _page(sb, request, items)
    assert name is not None
    if op == "create":
        return _create(sb, vault, name, body)
    entry = get_key(state, vault["id"], name)
    if entry is None:
        raise _not_found(name)
    if op == "versions":
        base = f"{_uri(sb, vault)}keys/{entry['name']}"
        return _page(sb, request, [_item(f"{base}/{v['version']}", vault, v) for v in entry["versions"]])
    if op == "rotate":
        return _rotate(sb, vault, entry)
    if op == "get_rotation_policy":
        return _policy_view(sb, vault, entry)
    if op == "set_rotation_policy":
        return _set_policy(sb, vault, entry, body)
    version = latest_version(entry)
    if tail:
        found = find_version(entry, tail[0])
        if found is None:
            raise _not_found(f"{name}/{tail[0]}")
        version = found
    if op == "update":
        _update(sb, version, body)
    return _bundle(sb, vault, entry, version)


def _create(sb: Sandbox, vault: dict[str, Any], name: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        kty, size, crv = validate_spec(body.get("kty"), body.get("key_size"), body.get("crv"))
    except KeyStoreError as exc:
        raise KvError(exc.status, exc.code, exc.message) from None
    attrs = body.get("attributes") or {}
    entry, version = add_version(
        sb.state,
        vault,
        name,
        kty=kty,
        key_size=size,
        crv=crv,
        key_ops=body.get("key_ops"),
        enabled=attrs.get("enabled", True) is not False,
        exp=attrs.get("exp"),
        nbf=attrs.get("nbf"),
        tags=body.get("tags"),
    )
    return _bundle(sb, vault, entry, version)


def _rotate(sb: Sandbox, vault: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    latest = latest_version(entry)
    policy = entry.get("rotationPolicy") or {}
    expiry = (policy.get("attributes") or {}).get("expiryTime")
    exp = int(sb.state.clock.timestamp() + parse_duration(expiry) / timedelta(seconds=1)) if expiry else None
    entry, version = add_version(
        sb.state,
        vault,
        entry["name"],
        kty=latest["kty"],
        key_size=latest.get("keySize"),
        crv=latest.get("crv"),
        key_ops=latest["keyOps"],
        exp=exp,
        tags=latest.get("tags"),
    )
    return _bundle(sb, vault, entry, version)


def _update(sb: Sandbox, version: dict[str, Any], body: dict[str, Any]) -> None:
    attrs = version["attributes"]
    for field in ("enabled", "exp", "nbf"):
        if field in (body.get("attributes") or {}):
            attrs[field] = body["attributes"][field]
    if body.get("key_ops") is not None:
        version["keyOps"] = list(body["key_ops"])
    if body.get("tags") is not None:
        version["tags"] = dict(body["tags"])
    attrs["updated"] = int(sb.state.clock.timestamp())


def _set_policy(sb: Sandbox, vault: dict[str, Any], entry: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    try:
        policy = validate_policy(body)
    except KeyStoreError as exc:
        raise KvError(exc.status, exc.code, exc.message) from None
    now = int(sb.state.clock.timestamp())
    previous = (entry.get("rotationPolicy") or {}).get("attributes") or {}
    policy["attributes"]["created"] = previous.get("created", now)
    policy["attributes"]["updated"] = now
    entry["rotationPolicy"] = policy
    return _policy_view(sb, vault, entry)


def install(sb: Sandbox) -> None:
    sb.hooks.data_plane("keys", handle, vault_cost)  # each vault's port serves /keys/... (ARM paths never do)
