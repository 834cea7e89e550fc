"""Secrets, certificates and keys that expire: what the sweep reads of them, and which announcements are due. Pure.

    items = [item(body) for body in secret_and_key_bodies]   # a vault's `cryptward.items` block (the reader fills it)
    due(items, now, already_sent)                              # the announcements to send now, each once

Only metadata: the management plane's `vaults/secrets` and `vaults/keys` (azure-rest-api-specs keyvault
`SecretProperties.value` "will never be returned from the service"; ARM action `Microsoft.KeyVault/vaults/secrets/
read`, "View the properties of a secret, but not its value", Microsoft Learn "Azure permissions for Security").
`attributes.exp` is in seconds since 1970 as the specs' `Attributes` say; the SDK gives it as a datetime, the raw body
as a number, both are accepted. A certificate is known by its backing secret ("When a Key Vault certificate is created,
an addressable key and secret are also created with the same name", Microsoft Learn "About Azure Key Vault
certificates"), whose content type is `application/x-pkcs12` or `application/x-pem-file` (same page).

Announcements: 30, 14, 7 and 1 days before an item's expiry, each once (Key Vault's own `SecretNearExpiry` /
`CertificateNearExpiry` / `KeyNearExpiry` events come 30 days before: Microsoft Learn "Azure Key Vault as Event Grid
source"); an item first seen inside a window is announced once for the nearest window, not once per window it
missed; an expired item is escalated once per expiry date. The keys say which expiry they are for, so a renewed item
(a new expiry) is announced again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remediations.resources import get

WINDOWS = (30, 14, 7, 1)  # days before expiry
CERTIFICATE_CONTENT_TYPES = frozenset({"application/x-pkcs12", "application/x-pem-file"})
SECRET, CERTIFICATE, KEY = "secret", "certificate", "key"


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def item(body: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of `cryptward.items` from a management-plane secret or key body: `{id, name, kind, enabled,
    expires}` (`expires` an ISO 8601 UTC string, absent when the item has none)."""
    rid = str(body.get("id", ""))
    if "/keys/" in rid.lower():
        kind = KEY
    elif str(get(body, "properties.contentType") or "").lower() in CERTIFICATE_CONTENT_TYPES:
        kind = CERTIFICATE
    else:
        kind = SECRET
    attrs = get(body, "properties.attributes") or {}
    expires = _when(attrs.get("exp", attrs.get("expires")))
    out: dict[str, Any] = {"id": rid, "name": str(body.get("name", "")), "kind": kind}
    out["enabled"] = attrs.get("enabled") is not False
    if expires is not None:
        out["expires"] = iso(expires)
    return out


@dataclass(frozen=True)
class Announcement:
    """One notice to send about an item: `window` days before its expiry, or 0 when it has expired (escalated)."""

    item_id: str
    kind: str
    name: str
    expires: str
    window: int

    @property
    def key(self) -> str:
        """What the ledger remembers, so that each announcement is sent once."""
        return f"{self.item_id.lower()}|{self.expires}|{self.window}"

    @property
    def escalated(self) -> bool:
        return self.window == 0

    def say(self) -> str:
        if self.escalated:
            return f"The {self.kind} {self.name} expired at {self.expires}: replace it and what uses it."
        return f"The {self.kind} {self.name} expires at {self.expires}, within {self.window} day(s): renew it."


def due(items: Iterable[Mapping[str, Any]], now: datetime, sent: Collection[str] = ()) -> list[Announcement]:
    """The announcements due now and not in `sent` (their keys): at most one per item."""
    out = []
    for entry in items:
        expires = _when(entry.get("expires"))
        if expires is None or entry.get("enabled") is False:
            continue
        left = (expires - now).total_seconds() / 86400
        if left <= 0:
            window = 0
        else:
            inside = [w for w in WINDOWS if left <= w]
            if not inside:
                continue
            window = min(inside)
        found = Announcement(str(entry["id"]), str(entry.get("kind")), str(entry.get("name")), iso(expires), window)
        earlier = [f"{found.item_id.lower()}|{found.expires}|{w}" for w in WINDOWS if w < window or window == 0]
        if found.key in sent or (window and any(k in sent for k in earlier)):
            continue  # already told, or told of a nearer window (a clock that ran back)
        out.append(found)
    return out


__all__ = ["WINDOWS", "Announcement", "due", "item"]
