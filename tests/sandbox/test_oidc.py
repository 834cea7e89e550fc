"""The sandbox's OpenID Connect provider (sandbox/oidc.py), driven by the real MSAL for Python and checked
independently with PyJWT: sign-in by login hint and through the account picker, the ID token's claims and signature,
and the refusals of Microsoft's authorize and token endpoints."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msal
import pytest

REDIRECT = "https://approvals.example/auth/callback"


class _Forms(HTMLParser):
    """The forms of a page: (action, {name: value}) with the submit button's name/value included."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag in ("input", "button") and self.forms and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value", "")


def _forms(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def register(sandbox: Any, **body: Any) -> dict[str, Any]:
    return sandbox.admin("POST", "/_sandbox/apps", {"redirectUris": [REDIRECT], "secret": True, **body})


def msal_app(sandbox: Any, app: dict[str, Any]) -> msal.ConfidentialClientApplication:
    # A non-Microsoft host: instance_discovery=False makes MSAL read {authority}/v2.0/.well-known/openid-configuration
    # directly; verify= is handed to its requests.Session, so it trusts the sandbox's CA.
    return msal.ConfidentialClientApplication(
        app["clientId"],
        client_credential=app.get("clientSecret"),
        authority=f"{sandbox.base_url}/{sandbox.tenant_id}",
        instance_discovery=False,
        verify=sandbox.ca,
    )


def authorize(sandbox: Any, url: str, method: str = "GET", data: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(verify=sandbox.ssl, follow_redirects=False) as http:
        return http.request(method, url, data=data)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """What the app receives: the auto-submitting form of response_mode=form_post, or a 302's query."""
    if response.status_code == 200 and response.headers["content-type"].startswith("text/html"):
        (action, fields), *_ = _forms(response.text)
        assert action == REDIRECT, response.text
        return fields
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def flow_for(client: Any, login_hint: str | None = None, redirect_uri: str = REDIRECT) -> dict[str, Any]:
    # form_post, as MSAL recommends (it warns otherwise) and as the approval page will use
    return client.initiate_auth_code_flow(
        scopes=[], redirect_uri=redirect_uri, login_hint=login_hint, response_mode="form_post"
    )


def sign_in(sandbox: Any, app: dict[str, Any], user: str = "approver") -> tuple[Any, dict[str, Any], dict[str, str]]:
    """MSAL's flow up to the redirect back to the app: (msal app, flow, the redirect's query parameters)."""
    client = msal_app(sandbox, app)
    flow = flow_for(client, user)
    return client, flow, redirect_params(authorize(sandbox, flow["auth_uri"]))


def test_discovery_document_is_shaped_like_microsofts(sandbox):
    base, tid = sandbox.base_url, sandbox.tenant_id
    doc = httpx.get(f"{base}/{tid}/v2.0/.well-known/openid-configuration", verify=sandbox.ssl).json()
    assert doc["issuer"] == f"{base}/{tid}/v2.0"
    assert doc["authorization_endpoint"] == f"{base}/{tid}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/{tid}/discovery/v2.0/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "form_post" in doc["response_modes_supported"]
    common = httpx.get(f"{base}/organizations/v2.0/.well-known/openid-configuration", verify=sandbox.ssl).json()
    assert common["issuer"] == f"{base}/{{tenantid}}/v2.0"
    other = httpx.get(f"{base}/contoso.example/v2.0/.well-known/openid-configuration", verify=sandbox.ssl)
    assert other.status_code == 400 and other.json()["error"] == "invalid_tenant"


def test_msal_signs_a_user_in_and_the_id_token_validates(sandbox):
    app = register(sandbox)
    client, flow, params = sign_in(sandbox, app, "approver@contoso.example")
    result = client.acquire_token_by_auth_code_flow(flow, params)
    assert "error" not in result, result
    approver = sandbox.principal("approver")
    claims = result["id_token_claims"]
    assert claims["oid"] == approver.object_id
    assert claims["tid"] == sandbox.tenant_id
    assert claims["preferred_username"] == "approver@contoso.example"
    assert claims["name"] == "Change Approver"
    assert claims["ver"] == "2.0"
    assert claims["sub"] != approver.object_id  # pairwise, as Microsoft's
    assert "groups" not in claims  # the app did not ask for groupMembershipClaims
    assert {"token_type", "scope", "expires_in", "ext_expires_in", "access_token"} <= set(result)

    # Independently of MSAL: the tenant's published key, audience, issuer, expiry.
    issuer = f"{sandbox.base_url}/{sandbox.tenant_id}/v2.0"
    doc = httpx.get(f"{issuer}/.well-known/openid-configuration", verify=sandbox.ssl).json()
    keys = jwt.PyJWKClient(doc["jwks_uri"], ssl_context=sandbox.ssl)
    token = result["id_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    verified = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=app["clientId"],
        issuer=doc["issuer"],
        options={"require": ["exp", "iat", "nbf", "aud", "iss"]},
    )
    assert verified["oid"] == approver.object_id
    assert time.time() < verified["exp"] <= time.time() + 3600 + 5
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience="someone-else")
    forged = jwt.encode(dict(verified, oid=sandbox.principal("admin").object_id), "x" * 32, algorithm="HS256")
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(forged, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=app["clientId"])


def test_the_signing_key_is_kept_in_the_state_dir(sandbox):
    state_dir = sandbox.running.state_dir
    keys = httpx.get(f"{sandbox.base_url}/{sandbox.tenant_id}/discovery/v2.0/keys", verify=sandbox.ssl).json()
    (jwk,) = keys["keys"]
    assert jwk["kty"] == "RSA" and jwk["use"] == "sig" and jwk["kid"] == jwk["x5t"]
    assert (state_dir / "oidc-signing.key").exists() and (state_dir / "oidc-signing.pem").exists()
    sandbox.reset()
    again = httpx.get(f"{sandbox.base_url}/{sandbox.tenant_id}/discovery/v2.0/keys", verify=sandbox.ssl).json()
    assert again["keys"][0]["kid"] == jwk["kid"]  # a reset keeps the key


def test_groups_claim_lists_direct_and_nested_groups(sandbox):
    app = register(sandbox, groupMembershipClaims="SecurityGroup")
    approvers = sandbox.admin("POST", "/_sandbox/groups", {"displayName": "approvers", "members": ["approver"]})
    owners = sandbox.admin("POST", "/_sandbox/groups", {"displayName": "owners", "members": ["vault-owner"]})
    outer = sandbox.admin("POST", "/_sandbox/groups", {"displayName": "all-approvers", "members": [approvers["id"]]})
    client, flow, params = sign_in(sandbox, app, "approver")
    claims = client.acquire_token_by_auth_code_flow(flow, params)["id_token_claims"]
    assert sorted(claims["groups"]) == sorted([approvers["id"], outer["id"]])
    assert owners["id"] not in claims["groups"]
    client, flow, params = sign_in(sandbox, app, "reader")
    assert client.acquire_token_by_auth_code_flow(flow, params)["id_token_claims"]["groups"] == []


def test_account_picker_page_signs_in_with_a_plain_form_post(sandbox):
    app = register(sandbox)
    client = msal_app(sandbox, app)
    flow = flow_for(client)  # no login hint: the picker
    page = authorize(sandbox, flow["auth_uri"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    forms = {fields["login_hint"]: (action, fields) for action, fields in _forms(page.text)}
    assert {"admin@contoso.example", "approver@contoso.example", "vault-owner@contoso.example"} <= set(forms)
    assert not any("intruder" in hint for hint in forms)  # service principals do not sign in
    action, fields = forms["vault-owner@contoso.example"]
    params = redirect_params(authorize(sandbox, action, "POST", fields))
    claims = client.acquire_token_by_auth_code_flow(flow, params)["id_token_claims"]
    assert claims["oid"] == sandbox.principal("vault-owner").object_id


def test_query_response_mode_redirects(sandbox):
    app = register(sandbox)
    client, flow, _ = sign_in(sandbox, app)
    url = flow["auth_uri"].replace("response_mode=form_post", "response_mode=query")
    response = authorize(sandbox, url)
    assert response.status_code == 302
    params = redirect_params(response)
    assert params["state"] == flow["state"] and params["code"]
    assert "id_token" in client.acquire_token_by_auth_code_flow(flow, params)


def test_wrong_code_verifier_is_refused(sandbox):
    client, flow, params = sign_in(sandbox, register(sandbox))
    flow = dict(flow, code_verifier="x" * 43)
    result = client.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [501481]


def test_a_code_is_single_use(sandbox):
    client, flow, params = sign_in(sandbox, register(sandbox))
    assert "id_token" in client.acquire_token_by_auth_code_flow(flow, params)
    again = client.acquire_token_by_auth_code_flow(flow, params)
    assert again["error"] == "invalid_grant" and again["error_codes"] == [54005]
    assert again["error_description"].startswith("AADSTS54005: OAuth2 Authorization code was already redeemed")


def test_redirect_uri_must_match_at_redemption(sandbox):
    app = register(sandbox, redirectUris=[REDIRECT, "https://approvals.example/other"])
    client, flow, params = sign_in(sandbox, app)
    result = client.acquire_token_by_auth_code_flow(dict(flow, redirect_uri="https://approvals.example/other"), params)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [500112]


def test_an_expired_code_is_refused(sandbox):
    client, flow, params = sign_in(sandbox, register(sandbox))
    sandbox.advance(601)  # codes live 10 minutes of the sandbox clock
    result = client.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [70008]


def test_wrong_client_secret_is_refused(sandbox):
    app = register(sandbox)
    client, flow, params = sign_in(sandbox, app)
    wrong = msal_app(sandbox, dict(app, clientSecret="not-the-secret"))
    result = wrong.acquire_token_by_auth_code_flow(flow, params)
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert "id_token" in client.acquire_token_by_auth_code_flow(flow, params)  # the refusal did not spend the code


def test_unknown_client_and_unregistered_redirect_uri_get_the_error_page(sandbox):
    base, tid = sandbox.base_url, sandbox.tenant_id
    stranger = {"clientId": "11111111-2222-3333-4444-555555555555", "clientSecret": "s"}
    flow = flow_for(msal_app(sandbox, stranger), "admin")
    page = authorize(sandbox, flow["auth_uri"])
    assert page.status_code == 400 and "AADSTS700016" in page.text and "location" not in page.headers
    token = httpx.post(
        f"{base}/{tid}/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "client_id": stranger["clientId"], "code": "x"},
        verify=sandbox.ssl,
    )
    assert token.status_code == 400 and token.json()["error"] == "unauthorized_client"
    assert token.json()["error_codes"] == [700016]

    app = register(sandbox)
    flow = flow_for(msal_app(sandbox, app), "admin", "https://evil.example/cb")
    page = authorize(sandbox, flow["auth_uri"])
    assert page.status_code == 400 and "AADSTS50011" in page.text and "location" not in page.headers


def test_redirectable_errors_go_back_to_the_app(sandbox):
    app = register(sandbox)
    flow = flow_for(msal_app(sandbox, app), "admin")
    url = re.sub("response_type=code", "response_type=token", flow["auth_uri"])
    params = redirect_params(authorize(sandbox, url))
    assert params["error"] == "unsupported_response_type" and params["state"] == flow["state"]
    silent = flow["auth_uri"].replace("login_hint=admin", "prompt=none")
    assert redirect_params(authorize(sandbox, silent))["error"] == "login_required"


def test_apps_and_groups_admin_api(sandbox):
    app = register(sandbox, displayName="approvals")
    listed = sandbox.admin("GET", "/_sandbox/apps")["value"]
    assert [a["clientId"] for a in listed] == [app["clientId"]]
    assert "secret" not in listed[0] and "clientSecret" not in listed[0] and listed[0]["hasSecret"]
    assert app["authority"] == f"{sandbox.base_url}/{sandbox.tenant_id}"
    bad = sandbox.admin_api.post("/_sandbox/groups", json={"displayName": "g", "members": ["nobody"]})
    assert bad.status_code == 400
    assert sandbox.admin_api.post("/_sandbox/apps", json={"redirectUris": []}).status_code == 400
    sandbox.reset()
    assert sandbox.admin("GET", "/_sandbox/apps")["value"] == []


def test_sandbox_env_prints_the_authority(sandbox, capsys):
    from sandbox.__main__ import main

    assert main(["env", "--state", str(sandbox.running.state_dir)]) == 0
    out = capsys.readouterr().out
    assert f"export SANDBOX_OIDC_AUTHORITY={sandbox.base_url}/{sandbox.tenant_id}\n" in out
    assert "approver@contoso.example" in out
