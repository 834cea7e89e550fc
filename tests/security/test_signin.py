"""A link alone decides nothing (issue "Approvals: a signed-in, authorised approver"): the approval page signs the
person in through the sandbox's OpenID Connect provider (shaped like Entra ID) and checks them against
CRYPTWARD_APPROVERS. Against the bot as deployed locally (`cryptward serve`, Azurite, the sandbox), over real HTTP.

Rows of the issue's table: "Owner-tag hijack of approvals" (a tag writer made themselves the owner and denied the
change), "decisions record no approver", "Unauthenticated DoS on /api/approvals" (a 20 MB body)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from azure.mgmt.resource.resources import ResourceManagementClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from remediations.notices import approvals
from tests.sandbox.test_oidc import authorize as idp
from tests.sandbox.test_oidc import msal_app, redirect_params
from tests.sandbox.test_oidc import register as register_app
from tests.test_e2e import bot, ledger_of, make_vault  # noqa: F401  (bot is a fixture)
from tests.triggers.test_decisions import (  # noqa: F401  (teams_bot is a fixture)
    APPROVAL_KEY,
    cards,
    change_of,
    decision_form,
    forms,
    links,
    purge_protected,
    sign_in,
    teams_bot,
    wait_for_link,
)
from tests.waits import limit


def test_a_tag_writer_who_made_themselves_owner_cannot_decide_and_the_change_waits_for_an_approver(
    sandbox,
    teams_bot,  # noqa: F811
    azurite,
):
    app = teams_bot()
    vault = make_vault(sandbox, "kv-hijack-1")
    deny = wait_for_link(app, sandbox, "Deny", "kv-hijack-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-hijack-1")
    app.settle()
    # the tag writer re-tags the owner to themselves; the card still carries links (anyone in the channel has them)
    rm = sandbox.client(ResourceManagementClient)
    tags = {"owner": "vault-owner@contoso.example"}
    rm.tags.begin_update_at_scope(vault.id, {"operation": "Merge", "properties": {"tags": tags}}).result()
    app.settle()
    refused = sign_in(sandbox, deny, "vault-owner")
    assert refused.status_code == 403 and "Not an approver" in refused.text, refused.text
    assert "vault-owner@contoso.example is not one of the approvers" in refused.text
    assert 'name="assertion"' not in refused.text
    entry = ledger_of(azurite).find_pending(change_of(deny))
    assert entry is not None and entry.decision is None and entry.status == "open"  # nothing decided
    # the real approver follows the same card's link: not consumed by the refusal
    with httpx.Client(timeout=limit(60), verify=sandbox.ssl) as http:
        action, fields = decision_form(sign_in(sandbox, approve, "approver", http))
        decided = http.post(action, data=fields)
    assert decided.status_code == 200 and "Change approved" in decided.text, decided.text
    assert purge_protected(sandbox, "kv-hijack-1")
    entry = ledger_of(azurite).find_pending(change_of(approve))
    assert entry.decided_by["oid"] == sandbox.principal("approver").object_id


def test_a_group_in_the_approvers_lets_its_members_decide(sandbox, teams_bot, azurite):  # noqa: F811
    group = sandbox.admin("POST", "/_sandbox/groups", {"displayName": f"g{uuid.uuid4().hex[:6]}", "members": ["admin"]})
    app = teams_bot(CRYPTWARD_APPROVERS=group["id"])
    make_vault(sandbox, "kv-group-1")
    deny = wait_for_link(app, sandbox, "Deny", "kv-group-1")
    app.settle()
    assert sign_in(sandbox, deny, "approver").status_code == 403  # not in the group
    with httpx.Client(timeout=limit(60), verify=sandbox.ssl) as http:
        confirm = sign_in(sandbox, deny, "admin", http)
        assert "Signed in as" in confirm.text and "admin@contoso.example" in confirm.text
        action, fields = decision_form(confirm)
        decided = http.post(action, data=fields)
    assert decided.status_code == 200 and "Change denied" in decided.text
    entry = ledger_of(azurite).find_pending(change_of(deny))
    assert entry.decision == "denied" and entry.decided_by["via"] == group["id"]
    assert entry.decided_by["oid"] == sandbox.principal("admin").object_id


def test_a_decision_without_a_valid_assertion_is_401_and_consumes_nothing(sandbox, teams_bot, azurite):  # noqa: F811
    app = teams_bot()
    make_vault(sandbox, "kv-assert-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-assert-1")
    deny = wait_for_link(app, sandbox, "Deny", "kv-assert-1")
    app.settle()
    base, token = approve.split("?")[0], parse_qs(urlsplit(approve).query)["token"][0]
    _, other = decision_form(sign_in(sandbox, deny))  # an approver's assertion, for the Deny link
    with httpx.Client(timeout=limit(60)) as http:
        bare = http.post(approve)  # the link alone, as before the sign-in existed
        assert bare.status_code == 401 and "Sign in first" in bare.text, bare.text
        assert http.post(base, data={"token": token}).status_code == 401
        assert http.post(base, data={"token": token, "assertion": "x.y"}).status_code == 401
        # an assertion made for another link (same change, the Deny link's nonce) does not carry over
        assert http.post(base, data={"token": token, "assertion": other["assertion"]}).status_code == 401
        # nor does one sealed with another key
        forged = approvals.assertion(
            approvals.Approver(sandbox.principal("approver").object_id, sandbox.tenant_id, via="x"),
            approvals.verify(token, APPROVAL_KEY, datetime.now(UTC), lambda n: False),
            "not-the-approval-key",
            datetime.now(UTC),
        )
        assert http.post(base, data={"token": token, "assertion": forged}).status_code == 401
    entry = ledger_of(azurite).find_pending(change_of(approve))
    assert entry.decision is None and not purge_protected(sandbox, "kv-assert-1")
    _, decided = _decide(sandbox, approve)
    assert decided.status_code == 200 and purge_protected(sandbox, "kv-assert-1")


def _decide(sandbox, link, user="approver"):
    with httpx.Client(timeout=limit(60), verify=sandbox.ssl) as http:
        confirm = sign_in(sandbox, link, user, http)
        action, fields = decision_form(confirm)
        return confirm, http.post(action, data=fields)


def test_a_replayed_sign_in_answer_is_refused(sandbox, teams_bot, azurite):  # noqa: F811
    app = teams_bot()
    make_vault(sandbox, "kv-state-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-state-1")
    app.settle()
    with httpx.Client(timeout=limit(60), verify=sandbox.ssl) as http:
        started = http.get(approve, follow_redirects=False)
        back = http.get(started.headers["location"] + "&login_hint=approver")
        (action, fields), *_ = forms(back.text)
        assert set(fields) >= {"code", "state"}
        first = http.post(action, data=fields)
        again = http.post(action, data=fields)  # the same code and state: someone who captured the form_post
        unknown = http.post(action, data={**fields, "state": "made-up"})
    assert first.status_code == 200 and 'name="assertion"' in first.text
    assert again.status_code == 401 and "already used" in again.text and 'name="assertion"' not in again.text
    assert unknown.status_code == 401
    assert ledger_of(azurite).find_pending(change_of(approve)).decision is None


def test_a_20_mb_body_is_refused_unread_with_413(sandbox, teams_bot):  # noqa: F811
    from remediations.triggers import decisions

    # before the runtime, the ledger or the parser: no runtime is installed, none is built
    status, page, _ = decisions.respond("POST", {}, b"token=" + b"A" * (20 * 1024 * 1024))
    assert status == 413 and "Request too large" in page
    app = teams_bot()
    with httpx.Client(timeout=limit(60)) as http:
        big = http.post(f"{app.running.base_url}/api/approvals", content=b"state=" + b"A" * (20 * 1024 * 1024))
        assert big.status_code == 413  # the host refuses it before reading it whole (serve: 1 MB)
        over = http.post(f"{app.running.base_url}/api/approvals", content=b"state=" + b"A" * (100 * 1024))
        assert over.status_code == 413 and "Request too large" in over.text  # the door's own 8 KB
        small = http.post(f"{app.running.base_url}/api/approvals", data={"token": "x" * 7000})
        assert small.status_code == 400  # within the limit: read, and refused as a bad link


def test_with_no_approvers_the_card_says_why_and_a_link_cannot_decide(sandbox, teams_bot, azurite):  # noqa: F811
    app = teams_bot(CRYPTWARD_APPROVERS="")
    vault = make_vault(sandbox, "kv-nobody-1")

    def told():
        return [c for c in cards(sandbox, app.receiver) if "kv-nobody-1" in json.dumps(c)]

    assert app.wait_for(lambda: any("APPROVERS is empty" in json.dumps(c) for c in told()))
    app.settle()
    assert not [u for c in told() for u in links(c, "Approve") + links(c, "Deny")]
    entry = next(p for p in ledger_of(azurite).list_pending("approval") if p.resource_id.lower() == vault.id.lower())
    link = approvals.make_link(
        f"{app.running.base_url}/api/approvals",
        entry.change_id,
        vault.id,
        "approve",
        datetime.now(UTC) + timedelta(days=1),
        APPROVAL_KEY,
    )
    with httpx.Client(timeout=limit(60)) as http:
        page = http.get(link, follow_redirects=False)
        assert page.status_code == 403 and "CRYPTWARD_APPROVERS is empty" in page.text
        assert http.post(link).status_code == 403
    assert not purge_protected(sandbox, "kv-nobody-1")


def test_platform_sign_in_trusts_app_service_authentications_principal(sandbox, teams_bot, azurite):  # noqa: F811
    app = teams_bot(CRYPTWARD_SIGNIN="platform")
    make_vault(sandbox, "kv-easyauth-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-easyauth-1")
    app.settle()

    def principal(name):
        p = sandbox.principal(name)
        claims = [
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": p.object_id},
            {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": sandbox.tenant_id},
            {"typ": "name", "val": p.display_name},
            {"typ": "preferred_username", "val": p.upn},
        ]
        doc = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
        return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode()).decode()}

    with httpx.Client(timeout=limit(60)) as http:
        assert http.get(approve).status_code == 401  # no platform in front: nobody signed in
        assert http.get(approve, headers=principal("vault-owner")).status_code == 403
        confirm = http.get(approve, headers=principal("approver"))
        action, fields = decision_form(confirm)
        decided = http.post(action, data=fields)
    assert decided.status_code == 200 and purge_protected(sandbox, "kv-easyauth-1")
    assert ledger_of(azurite).find_pending(change_of(approve)).decided_by["upn"] == "approver@contoso.example"


# --- the ID token check, against the sandbox's published keys --------------------------------------------------------


@pytest.fixture
def checker(sandbox):
    from remediations.settings import ApprovalSettings
    from remediations.triggers.signin import SignIn

    app = register_app(sandbox)
    settings = ApprovalSettings(
        approvers=frozenset({sandbox.principal("approver").object_id}),
        authority=f"{sandbox.base_url}/{sandbox.tenant_id}",
        client_id=app["clientId"],
        client_secret=app["clientSecret"],
        tenant_id=sandbox.tenant_id,
        ca_bundle=sandbox.ca,
    )
    return app, SignIn(settings, "https://approvals.example/auth/callback")


def _real_token(sandbox, app):
    client = msal_app(sandbox, app)
    flow = client.initiate_auth_code_flow(
        scopes=[],
        redirect_uri="https://approvals.example/auth/callback",
        login_hint="approver",
        response_mode="form_post",
    )
    return client.acquire_token_by_auth_code_flow(flow, redirect_params(idp(sandbox, flow["auth_uri"])))["id_token"]


def test_forged_expired_and_other_audience_id_tokens_are_refused(sandbox, checker):
    from remediations.triggers.signin import SignInRefused, authorise
    from sandbox.signing import ensure_signing_key

    app, signin = checker
    token = _real_token(sandbox, app)
    claims = signin.validate(token)
    assert authorise(claims, signin.settings).oid == sandbox.principal("approver").object_id
    header = jwt.get_unverified_header(token)
    genuine = jwt.decode(token, options={"verify_signature": False})
    idp_key = ensure_signing_key(sandbox.running.state_dir).private_pem  # the sandbox's own key: a valid signature
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = int(time.time())

    def signed(key, **changes):
        return jwt.encode({**genuine, **changes}, key, algorithm="RS256", headers={"kid": header["kid"]})

    refused = {
        "another key": signed(other),
        "expired": signed(idp_key, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "not yet valid": signed(idp_key, nbf=now + 3600),
        "another audience": signed(idp_key, aud=str(uuid.uuid4())),
        "another issuer": signed(idp_key, iss=f"{sandbox.base_url}/{uuid.uuid4()}/v2.0"),
        "unsigned": jwt.encode({**genuine}, None, algorithm="none"),
        "symmetric": jwt.encode({**genuine}, "x" * 32, algorithm="HS256", headers={"kid": header["kid"]}),
    }

    def accepted(forged):
        try:
            signin.validate(forged)
        except SignInRefused:
            return False
        return True

    assert [why for why, forged in refused.items() if accepted(forged)] == []
    assert signin.validate(signed(idp_key, exp=now + 600))["oid"] == genuine["oid"]  # the test's own signing works
    with pytest.raises(SignInRefused, match="not a user of the tenant"):
        authorise({**claims, "tid": str(uuid.uuid4())}, signin.settings)
    with pytest.raises(SignInRefused, match="not one of the approvers"):
        authorise({**claims, "oid": sandbox.principal("vault-owner").object_id}, signin.settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CRYPTWARD_APPROVERS", "alice@contoso.example"),
        ("CRYPTWARD_SIGNIN", "basic"),
        ("CRYPTWARD_SIGNIN_AUTHORITY", "http://login.example/tenant"),
        ("CRYPTWARD_SIGNIN_CLIENT_ID", "my-app"),
    ],
)
def test_bad_signin_settings_name_the_variable(name, value):
    from remediations.errors import SettingsError
    from remediations.settings import Settings

    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
