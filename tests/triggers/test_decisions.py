"""The approval endpoint end to end: the bot (`cryptward serve` hosting function_app.py, Azurite, the sandbox) sends a
Teams card for a change waiting for approval; the test follows the card's links over real HTTP, as a person's browser
would, signing in through the sandbox's OpenID Connect provider (MSAL's auth code flow, as in Entra ID)."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations.notices import approvals, signing
from remediations.notices.delivery import setting_prefix
from tests.test_e2e import RG, bot, disk_estate, ledger_of, make_vault  # noqa: F401  (bot is a fixture)
from tests.waits import limit

APPROVAL_KEY = "approval-key-for-the-tests-0123456789"
TEAMS = "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=sIgTeamsWorkflowSecret0123456789abc"


@pytest.fixture
def teams_bot(sandbox, bot):  # noqa: F811 (the fixture imported above)
    """The bot with Teams notices (a sandbox receiver of its own), approval links pointing at serve, and an app
    registration in the sandbox's Entra ID whose redirect URI is serve's approval endpoint. Approvers: the sandbox's
    `approver` user unless `CRYPTWARD_APPROVERS` is given."""

    def start(**kwargs):
        name = f"ops{uuid.uuid4().hex[:6]}"
        client_id, secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
        kwargs.setdefault("CRYPTWARD_APPROVERS", sandbox.principal("approver").object_id)
        app = bot(
            CRYPTWARD_ROUTES=json.dumps({"*": [f"teams:{name}"]}),
            CRYPTWARD_APPROVAL_KEY=APPROVAL_KEY,
            CRYPTWARD_SIGNIN_AUTHORITY=f"{sandbox.base_url}/{sandbox.tenant_id}",
            CRYPTWARD_SIGNIN_CLIENT_ID=client_id,
            CRYPTWARD_SIGNIN_CLIENT_SECRET=secret,
            **{f"{setting_prefix(name)}_URL": f"{sandbox.base_url}/_receivers/teams/{name}{TEAMS}"},
            **kwargs,
        )
        redirect = f"{app.running.base_url}/api/approvals"  # serve's port is known once it runs
        body = {"clientId": client_id, "secret": secret, "redirectUris": [redirect], "displayName": "cryptward"}
        sandbox.admin("POST", "/_sandbox/apps", {**body, "groupMembershipClaims": "SecurityGroup"})
        app.receiver = f"teams/{name}"
        return app

    return start


class _Forms(HTMLParser):
    """The forms of a page: (action, {name: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), {}))
        elif tag in ("input", "button") and self.forms and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value", "")


def forms(page):
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def sign_in(sandbox, link, user="approver", http=None):
    """Follow an approve / deny link and sign in as the sandbox user `user` (browserless: the login hint picks the
    account): GET the link (303 to the authorize URL), the IdP's form_post back to the endpoint; returns that answer
    (the confirmation page for an approver, else the refusal)."""
    own = http is None
    http = http or httpx.Client(timeout=60, verify=sandbox.ssl)
    try:
        started = http.get(link, follow_redirects=False)
        assert started.status_code == 303, started.text
        authorize = started.headers["location"]
        assert authorize.startswith(f"{sandbox.base_url}/{sandbox.tenant_id}/oauth2/v2.0/authorize?")
        assert "token=" not in authorize  # the link stays on the server
        back = http.get(f"{authorize}&login_hint={user}")
        assert back.status_code == 200, back.text
        (action, fields), *_ = forms(back.text)
        return http.post(action, data=fields)
    finally:
        if own:
            http.close()


def decision_form(confirm):
    """The confirmation page's form: (action, fields) with the token and the approver assertion."""
    assert confirm.status_code == 200, confirm.text
    action, fields = forms(confirm.text)[-1]
    assert set(fields) == {"token", "assertion"}, fields
    return action, fields


def cards(sandbox, receiver):
    return [i["json"] for i in sandbox.admin("GET", f"/_sandbox/received?receiver={receiver}")["value"]]


def links(card, title):
    """The URLs of the card's `title` buttons (Approve / Deny), anywhere in the card."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.OpenUrl" and node.get("title") == title:
                found.append(node["url"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card)
    return found


def change_of(link):
    token = unquote(parse_qs(urlsplit(link).query)["token"][0])
    return signing.unseal(token, APPROVAL_KEY)["c"]


def wait_for_link(app, sandbox, title, resource_name):
    def find():
        for card in cards(sandbox, app.receiver):
            if resource_name in json.dumps(card):
                found = links(card, title)
                if found:
                    return found[0]
        return None

    link = app.wait_for(find)
    assert link, f"no {title} link for {resource_name} in {len(cards(sandbox, app.receiver))} card(s)"
    return link


def follow(sandbox, link, between=lambda: None, user="approver"):
    """Follow the link, sign in as `user`, then POST the confirmation page's form, as a browser does. `between` runs
    in between."""
    with httpx.Client(timeout=limit(60), verify=sandbox.ssl) as http:
        confirm = sign_in(sandbox, link, user, http)
        action, fields = decision_form(confirm)
        between()
        decided = http.post(action, data=fields)
    return confirm, decided


def purge_protected(sandbox, name):
    return bool(sandbox.client(KeyVaultManagementClient).vaults.get(RG, name).properties.enable_purge_protection)


def test_approve_link_applies_the_pending_change_once(sandbox, teams_bot, azurite):
    app = teams_bot()
    vault = make_vault(sandbox, "kv-approve-1")
    link = wait_for_link(app, sandbox, "Approve", "kv-approve-1")
    app.settle()
    assert not purge_protected(sandbox, "kv-approve-1")
    assert link.startswith(f"{app.running.base_url}/api/approvals?token=")
    got_before_post = []
    confirm, decided = follow(sandbox, link, lambda: got_before_post.append(purge_protected(sandbox, "kv-approve-1")))
    assert "Approve this change?" in confirm.text
    assert got_before_post == [False]  # the GET decided nothing
    assert decided.status_code == 200 and "Change approved" in decided.text, decided.text
    assert purge_protected(sandbox, "kv-approve-1")
    ledger = ledger_of(azurite)
    entry = ledger.find_pending(change_of(link))
    assert entry is not None and entry.decision == "approved" and entry.status == "resolved"
    approver = sandbox.principal("approver")
    assert entry.decided_by["oid"] == approver.object_id and entry.decided_by["upn"] == "approver@contoso.example"
    assert entry.decided_by["name"] == "Change Approver" and entry.decided_by["run"]  # the notice's run
    records = ledger.audit_for(vault.id)
    assert {"approved", "applied"} <= {r.result for r in records}
    decided = next(r for r in records if r.result == "approved")
    assert decided.caller.oid == approver.object_id and decided.caller.upn == "approver@contoso.example"
    # the same link again: refused, whichever way it comes
    with httpx.Client() as http:
        again = http.post(link)
        assert again.status_code == 409 and "Link already used" in again.text
        assert http.get(link).status_code == 409


def test_tampered_and_expired_links_are_refused_with_the_reason(sandbox, teams_bot, azurite):
    app = teams_bot()
    make_vault(sandbox, "kv-approve-2")
    link = wait_for_link(app, sandbox, "Approve", "kv-approve-2")
    app.settle()
    base, _, token = link.partition("?token=")
    token = unquote(token)
    tampered = ("X" if token[0] != "X" else "Y") + token[1:]  # an edit of the signed payload
    entry = ledger_of(azurite).find_pending(change_of(link))
    expired = approvals.make_link(
        base, entry.change_id, entry.resource_id, "approve", datetime.now(UTC) - timedelta(minutes=1), APPROVAL_KEY
    )
    with httpx.Client() as http:
        bad = http.post(base, data={"token": tampered})
        assert bad.status_code == 400 and "Invalid link" in bad.text
        assert http.post(base, data={"token": ""}).status_code == 400
        late = http.post(expired)
        assert late.status_code == 410 and "Link expired" in late.text and "expired on" in late.text
        assert http.get(expired).status_code == 410
    assert not purge_protected(sandbox, "kv-approve-2")
    # the refusals consumed nothing: the genuine link still works
    _, decided = follow(sandbox, link)
    assert decided.status_code == 200 and purge_protected(sandbox, "kv-approve-2")


def test_deny_is_recorded_and_nobody_is_asked_again(sandbox, teams_bot, azurite):
    app = teams_bot()
    vault = make_vault(sandbox, "kv-deny-1")
    deny = wait_for_link(app, sandbox, "Deny", "kv-deny-1")
    app.settle()
    change = change_of(deny)
    _, decided = follow(sandbox, deny)
    assert decided.status_code == 200 and "Change denied" in decided.text
    ledger = ledger_of(azurite)
    entry = ledger.find_pending(change)
    assert entry.decision == "denied" and entry.status == "resolved"
    seen = len(cards(sandbox, app.receiver))
    runs = sum(1 for r in ledger.audit_for(vault.id) if r.result == "pending-approval")
    # another change to the vault: the bot works it again, the change is still not applied, and no card asks
    rm = sandbox.client(ResourceManagementClient)
    rm.tags.begin_update_at_scope(vault.id, {"operation": "Merge", "properties": {"tags": {"team": "x"}}}).result()
    assert app.wait_for(lambda: sum(1 for r in ledger.audit_for(vault.id) if r.result == "pending-approval") > runs)
    app.settle()
    assert not purge_protected(sandbox, "kv-deny-1")
    later = cards(sandbox, app.receiver)[seen:]
    assert not [u for c in later for u in links(c, "Approve") if change_of(u) == change]
    assert not [p for p in ledger.list_pending("approval") if p.change_id == change]
    # the approve link of the same card now finds the change decided
    approve = approvals.make_link(
        f"{app.running.base_url}/api/approvals",
        change,
        vault.id,
        "approve",
        datetime.now(UTC) + timedelta(days=1),
        APPROVAL_KEY,
    )
    with httpx.Client(timeout=60, verify=sandbox.ssl) as http:
        action, fields = decision_form(sign_in(sandbox, approve, http=http))
        late = http.post(action, data=fields)
    assert late.status_code == 409 and "Already decided" in late.text
    assert not purge_protected(sandbox, "kv-deny-1")


def test_an_approved_disk_change_waits_for_the_deallocation(sandbox, teams_bot, azurite):
    des, disk, _ = disk_estate(sandbox)
    des_map = {"westeurope": {"EncryptionAtRestWithCustomerKey": des}}
    app = teams_bot(
        subscribe=False,
        CRYPTWARD_POLICY_MODES=json.dumps({"disk-cmk": "approve"}),
        CRYPTWARD_DES_MAP=json.dumps(des_map),
    )
    app.subscribe()
    app.mark = len(app.calls(0))
    rm = sandbox.client(ResourceManagementClient)
    rm.tags.begin_update_at_scope(disk, {"operation": "Merge", "properties": {"tags": {"team": "app"}}}).result()
    link = wait_for_link(app, sandbox, "Approve", "disk-e2e-data")
    app.settle()
    compute = sandbox.client(ComputeManagementClient)
    _, decided = follow(sandbox, link)
    assert decided.status_code == 200, decided.text
    assert "once the VM is deallocated" in decided.text
    assert compute.disks.get(RG, "disk-e2e-data").encryption.type == "EncryptionAtRestWithPlatformKey"
    ledger = ledger_of(azurite)
    entry = ledger.find_pending(change_of(link))
    assert entry.decision == "approved" and entry.decision_status == "pending-deallocation" and entry.status == "open"
    compute.virtual_machines.begin_deallocate(RG, "vm-e2e").result()
    assert app.wait_for(
        lambda: compute.disks.get(RG, "disk-e2e-data").encryption.type == "EncryptionAtRestWithCustomerKey",
    )
    app.settle()
    assert compute.disks.get(RG, "disk-e2e-data").encryption.disk_encryption_set_id.lower() == des.lower()
    assert ledger.find_pending(change_of(link)).status == "resolved"
    assert not [p for p in ledger.list_pending() if p.resource_id.lower() == disk.lower()]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_an_approval_key_a_link_gets_a_page_saying_so_not_a_500(caplog, method):
    from remediations.runtime import Runtime
    from remediations.settings import Settings
    from remediations.triggers import decisions

    no_key = Runtime(Settings.from_env({}))
    status, page, _ = decisions.respond(method, {"token": "anything"}, b"", rt=no_key)
    assert status == 503
    assert "Approvals are not set up" in page and "CRYPTWARD_APPROVAL_KEY" in page and "nothing was changed" in page
    assert "CRYPTWARD_APPROVAL_KEY is not set" in caplog.text
