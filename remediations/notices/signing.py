"""HMAC-SHA256 signing, shared by the webhook sender and the approval links. Pure: no I/O, time is passed in.

    headers = webhook_headers(secret, body, timestamp=1767225600, idempotency_key=notice.id)
    verify_webhook(secret, headers["X-Cryptward-Timestamp"], body, headers["X-Cryptward-Signature"], now=...)
    token = seal({"c": change_id, ...}, key)      # url-safe "payload.mac"
    unseal(token, key)                            # the payload, or None when malformed or tampered with

A webhook signature is `v1=<hex>` of HMAC-SHA256(secret, `timestamp + "." + body`): the receiver recomputes it over
the exact bytes it received and refuses a timestamp older than a few minutes, so a captured request cannot be
replayed later. The version prefix lets a later scheme (or a second, rotated secret) sit beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

TIMESTAMP_HEADER = "X-Cryptward-Timestamp"
SIGNATURE_HEADER = "X-Cryptward-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE_SECONDS = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def mac(secret: str | bytes, message: bytes) -> bytes:
    return hmac.new(_key(secret), message, hashlib.sha256).digest()


def signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """`v1=<hex>` over `timestamp + "." + body`."""
    return "v1=" + mac(secret, str(timestamp).encode() + b"." + body).hex()


def webhook_headers(secret: str | bytes, body: bytes, *, timestamp: int, idempotency_key: str) -> dict[str, str]:
    """The headers a signed webhook request carries besides its content type."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }


def verify_webhook(
    secret: str | bytes, timestamp: str, body: bytes, header: str, *, now: float, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """Whether `header` (one or more `v1=<hex>`, comma-separated) signs `body` at `timestamp`, and the timestamp is
    within `tolerance` seconds of `now` (epoch seconds)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    expected = signature(secret, sent, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(payload: Mapping[str, Any], key: str | bytes) -> str:
    """A url-safe token: base64url(JSON payload) + "." + base64url(HMAC-SHA256 of that first part)."""
    body = _b64(json.dumps(dict(payload), separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(mac(key, body.encode()))}"


def unseal(token: str, key: str | bytes) -> dict[str, Any] | None:
    """The payload of a token made by `seal` with the same key; None when it is malformed or its MAC does not match."""
    body, dot, tag = token.partition(".")
    if not dot or not body or not tag:
        return None
    try:
        ok = hmac.compare_digest(_unb64(tag), mac(key, body.encode()))
        payload = json.loads(_unb64(body)) if ok else None
    except (ValueError, UnicodeError):
        return None
    return payload if isinstance(payload, dict) else None


__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "mac",
    "seal",
    "signature",
    "unseal",
    "verify_webhook",
    "webhook_headers",
]
