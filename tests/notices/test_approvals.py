"""Approval links: signed, expiring, single-use; deciding with an in-memory store of pending changes; the pages."""

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from remediations.notices import approvals
from remediations.notices.approvals import Decision, MemoryPendingStore, Outcome, PendingChange, Refusal

KEY = "approval-key-0123456789abcdef"
BASE = "https://cryptward.azurewebsites.net/api/approvals"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-1"


def token_of(url):
    return parse_qs(urlsplit(url).query)["token"][0]


def link(decision="approve", expires=NOW + timedelta(days=7), change="c1", resource=VAULT, key=KEY, base=BASE):
    return approvals.make_link(base, change, resource, decision, expires, key)


class Nonces:
    """What the function app backs with storage: insert-if-absent, True when it was there."""

    def __init__(self):
        self.used = set()

    def __call__(self, nonce):
        seen = nonce in self.used
        self.used.add(nonce)
        return seen


def test_a_valid_link_carries_its_decision():
    result = approvals.verify(token_of(link("deny")), KEY, NOW, Nonces())
    assert isinstance(result, Decision)
    assert (result.change_id, result.resource_id, result.decision) == ("c1", VAULT, "deny")
    assert result.expires_at == NOW + timedelta(days=7) and result.nonce


def test_links_keep_the_base_query_and_differ_each_time():
    url = approvals.make_link(BASE + "?code=fn", "c1", VAULT, "approve", NOW, KEY)
    assert url.startswith(BASE + "?code=fn&token=")
    assert link() != link()  # a fresh nonce each
    with pytest.raises(ValueError, match="approve, deny"):
        approvals.make_link(BASE, "c1", VAULT, "maybe", NOW, KEY)


def test_expired_link_is_refused_without_using_its_nonce():
    nonces = Nonces()
    token = token_of(link(expires=NOW))
    result = approvals.verify(token, KEY, NOW, nonces)
    assert isinstance(result, Refusal) and result.reason == "expired" and "2026-03-01 12:00" in result.detail
    assert nonces.used == set()
    assert isinstance(approvals.verify(token, KEY, NOW - timedelta(seconds=1), nonces), Decision)


def test_replayed_link_is_refused():
    nonces = Nonces()
    token = token_of(link())
    assert isinstance(approvals.verify(token, KEY, NOW, nonces), Decision)
    again = approvals.verify(token, KEY, NOW, nonces)
    assert isinstance(again, Refusal) and again.reason == "replayed"


@pytest.mark.parametrize(
    "mangle",
    [
        # the MAC: not its last character, whose low bits base64 ignores (that edit would pass 1 time in 16)
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
        lambda t: ("X" if t[0] != "X" else "Y") + t[1:],  # the payload
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "not a token",
    ],
)
def test_tampered_link_is_refused(mangle):
    nonces = Nonces()
    result = approvals.verify(mangle(token_of(link())), KEY, NOW, nonces)
    assert isinstance(result, Refusal) and result.reason == "tampered" and nonces.used == set()


def test_a_link_signed_with_another_key_or_swapped_decision_is_tampered():
    assert approvals.verify(token_of(link(key="other")), KEY, NOW, Nonces()).reason == "tampered"
    from remediations.notices import signing

    payload = signing.unseal(token_of(link()), KEY)
    payload["d"] = "deny"
    body = signing.seal(payload, KEY).split(".")[0]
    forged = body + "." + token_of(link()).split(".")[1]
    assert approvals.verify(forged, KEY, NOW, Nonces()).reason == "tampered"
    payload["d"] = "maybe"
    assert approvals.verify(signing.seal(payload, KEY), KEY, NOW, Nonces()).reason == "tampered"


# --- deciding ------------------------------------------------------------------------------------------------------


def _decision(decision="approve", change="c1", resource=VAULT):
    return Decision(change, resource, decision, NOW + timedelta(days=1), "n")


class Applier:
    def __init__(self, status="applied", detail="written and verified"):
        self.calls, self.status, self.detail = [], status, detail

    def __call__(self, pending):
        self.calls.append(pending.change_id)
        return self.status, self.detail


def test_approve_applies_the_pending_change():
    store, apply = MemoryPendingStore(PendingChange("c1", VAULT, "Turn on purge protection")), Applier()
    outcome = approvals.decide(_decision(), store, apply, NOW)
    assert outcome == Outcome("approved", "c1", VAULT, "Turn on purge protection", "applied: written and verified")
    assert apply.calls == ["c1"]
    assert store.get("c1").decision == "approved" and store.get("c1").status == "applied"
    assert store.log == [("c1", "approved", "applied", "written and verified", NOW)]


def test_approve_waits_for_deallocation_when_the_vm_runs():
    store = MemoryPendingStore(PendingChange("c1", VAULT))
    outcome = approvals.decide(_decision(), store, Applier("pending-deallocation", "VM vm-1 is running"), NOW)
    assert outcome.result == "waiting-deallocation"
    assert store.get("c1").decision == "approved" and store.get("c1").status == "pending-deallocation"
    assert "deallocated" in approvals.page(outcome)


def test_deny_records_the_decision_and_stops_asking():
    store, apply = MemoryPendingStore(PendingChange("c1", VAULT)), Applier()
    outcome = approvals.decide(_decision("deny"), store, apply, NOW)
    assert outcome.result == "denied" and apply.calls == []
    assert store.get("c1").decision == "denied" and store.get("c1").status == "denied"
    later = approvals.decide(_decision("approve"), store, apply, NOW)  # the other link of the same card
    assert later.result == "already-decided" and "denied" in later.detail and apply.calls == []


def test_unknown_change_or_mismatched_resource():
    store, apply = MemoryPendingStore(PendingChange("c1", VAULT)), Applier()
    assert approvals.decide(_decision(change="c2"), store, apply, NOW).result == "unknown-change"
    assert approvals.decide(_decision(resource=VAULT + "-other"), store, apply, NOW).result == "unknown-change"
    assert approvals.decide(_decision(resource=VAULT.upper()), store, apply, NOW).result == "approved"
    assert store.log and apply.calls == ["c1"]


# --- pages ---------------------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    p = _Page()
    p.feed(html)
    return p


PAGES = {
    "approved": Outcome("approved", "c1", VAULT, "Turn on purge protection", "applied: written and verified"),
    "denied": Outcome("denied", "c1", VAULT, "Turn on purge protection"),
    "unknown": Outcome("unknown-change", "c9", VAULT, detail="No change with this id is pending."),
    "already": Outcome("already-decided", "c1", VAULT, detail="It was already denied."),
    "expired": Refusal("expired", "This link expired on 2026-03-01 12:00 UTC."),
    "tampered": Refusal("tampered", "This link is not one Cryptward made."),
    "replayed": Refusal("replayed", "This link was already used."),
}
HEADINGS = {
    "approved": "Change approved",
    "denied": "Change denied",
    "unknown": "Unknown change",
    "already": "Already decided",
    "expired": "Link expired",
    "tampered": "Invalid link",
    "replayed": "Link already used",
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_outcome_has_a_clear_self_contained_page(name):
    html = approvals.page(PAGES[name])
    assert html.startswith("<!doctype html>")
    page = parse(html)
    assert ("h1", {}) in page.tags and HEADINGS[name] in page.text
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "img", "link", "iframe"}  # nothing fetched, nothing run
    assert not re.search(r"https?://", html)


def test_pages_escape_what_they_show():
    html = approvals.page(Outcome("approved", "c1", "<script>alert(1)</script>", "<b>x</b>"))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>x" not in html


def test_confirm_page_posts_the_token_back():
    token = token_of(link())
    decision = approvals.verify(token, KEY, NOW, Nonces())
    page = parse(approvals.confirm_page(decision, token, "Turn on purge protection"))
    [form] = [a for t, a in page.tags if t == "form"]
    assert form == {"method": "post"}
    assert ("input", {"type": "hidden", "name": "token", "value": token}) in page.tags
    assert "Approve this change" in page.text
