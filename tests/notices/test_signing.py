"""HMAC helpers: webhook signatures (and the README's verification snippet), sealed tokens."""

import hashlib
import hmac
import re
import time
from pathlib import Path

import pytest

from remediations.notices import signing

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec-test-0123456789"
BODY = b'{"id":"n1","lines":[]}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert signing.signature(SECRET, 1767225600, BODY) == f"v1={expected}"
    headers = signing.webhook_headers(SECRET, BODY, timestamp=1767225600, idempotency_key="n1")
    assert headers == {
        "X-Cryptward-Timestamp": "1767225600",
        "X-Cryptward-Signature": f"v1={expected}",
        "Idempotency-Key": "n1",
    }


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now", "ok"),
    [
        (SECRET, "1000", BODY, 1000, True),
        (SECRET, "1000", BODY, 1299, True),
        (SECRET, "1000", BODY, 1301, False),  # too old: a replay
        (SECRET, "1000", BODY, 699, False),  # from the future
        ("other-secret", "1000", BODY, 1000, False),
        (SECRET, "1001", BODY, 1000, False),  # the timestamp is signed too
        (SECRET, "1000", BODY + b" ", 1000, False),
        (SECRET, "not-a-number", BODY, 1000, False),
    ],
)
def test_verify_webhook(secret, timestamp, body, now, ok):
    header = signing.signature(SECRET, 1000, BODY)
    assert signing.verify_webhook(secret, timestamp, body, header, now=now) is ok


def test_verify_accepts_any_of_several_signatures():
    header = "v1=" + "0" * 64 + ", " + signing.signature(SECRET, 1000, BODY)
    assert signing.verify_webhook(SECRET, "1000", BODY, header, now=1000)


def readme_verifier():
    """The README's verification snippet, executed: it must agree with the sender."""
    text = README.read_text()
    m = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert m, "README.md lost its webhook verification snippet"
    code = m.group(1)
    assert len(code.strip().splitlines()) <= 12
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["verify"]


def test_the_readme_snippet_verifies_what_the_sender_signs():
    verify = readme_verifier()
    now = int(time.time())
    headers = signing.webhook_headers(SECRET, BODY, timestamp=now, idempotency_key="n1")
    assert verify(SECRET.encode(), headers, BODY)
    assert not verify(b"wrong", headers, BODY)
    assert not verify(SECRET.encode(), headers, BODY.replace(b"n1", b"n2"))
    old = signing.webhook_headers(SECRET, BODY, timestamp=now - 3600, idempotency_key="n1")
    assert not verify(SECRET.encode(), old, BODY)


def test_seal_and_unseal():
    token = signing.seal({"c": "abc", "e": 5}, "k")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert signing.unseal(token, "k") == {"c": "abc", "e": 5}
    assert signing.unseal(token, "other") is None
    body, tag = token.split(".")
    forged = signing.seal({"c": "abd", "e": 5}, "k").split(".")[0]
    for bad in (f"{forged}.{tag}", body, f"{body}.", f".{tag}", "", "a.b.c", f"{body}.{tag[:-2]}", "%%.%%"):
        assert signing.unseal(bad, "k") is None, bad
    assert signing.unseal(signing.seal({}, "k").replace("e30", "W10"), "k") is None  # a list, not an object
