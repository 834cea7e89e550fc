"""The Key Vault data plane as Azure Policy presents it (mode `Microsoft.KeyVault.Data`), made from the key Cryptward
reads: `key_view(key)` turns a `Microsoft.KeyVault/vaults/keys` GET body into a `Microsoft.KeyVault.Data/vaults/keys`
object whose fields the data-plane aliases name.

Azure Policy's data-plane aliases (as Microsoft's built-ins use them: Azure/azure-policy, built-in-policies/
policyDefinitions/Key Vault/Keys_*.json) name the key's type, size, curve, and its attributes as dates
(`attributes.createdOn`, `expiresOn`, `notBefore`) that template functions do arithmetic on
(`addDays(field('.../attributes.createdOn'), 90)`); Learn, "Integrate Azure Key Vault with Azure Policy"
(https://learn.microsoft.com/azure/key-vault/general/azure-policy). The management-plane key has every field they
need (azure-rest-api-specs keyvault openapi `KeyProperties`: kty, keySize, curveName, attributes with exp/nbf/created,
rotationPolicy), so Cryptward reads no data plane for them and needs no data-plane role. It gives the attributes as
epoch seconds (azure-rest-api-specs keyvault getKey.json: `"created": 1598533051`): they are presented as ISO 8601
UTC in the format `utcNow()` and `addDays()` return, so that comparing them is comparing times. An absent attribute
stays absent (`exists: false` holds). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

MODE = "Microsoft.KeyVault.Data"
KEY_DATA = "Microsoft.KeyVault.Data/vaults/keys"
KEY = "Microsoft.KeyVault/vaults/keys"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # as utcNow() and addDays() give it (remediations/policy/functions.py)

# Data-plane alias suffix -> the path in the view. The suffixes are those Microsoft's key built-ins read.
ALIASES: dict[str, str] = {
    "keyType": "keyType",
    "keySize": "keySize",
    "ellipticCurveName": "ellipticCurveName",
    "keyOperations": "keyOperations",
    "keyOperations[*]": "keyOperations[*]",
    "attributes.enabled": "attributes.enabled",
    "attributes.createdOn": "attributes.createdOn",
    "attributes.updatedOn": "attributes.updatedOn",
    "attributes.expiresOn": "attributes.expiresOn",
    "attributes.notBefore": "attributes.notBefore",
    "attributes.recoveryLevel": "attributes.recoveryLevel",
    "scheduledRotationDate": "scheduledRotationDate",
    "rotationPolicy.expiryTime": "rotationPolicy.expiryTime",
}
_ATTRIBUTES = {"created": "createdOn", "updated": "updatedOn", "exp": "expiresOn", "nbf": "notBefore"}


def iso(epoch: Any) -> str | None:
    """Epoch seconds (the management plane's attribute times) as an ISO 8601 UTC time; None for anything else."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime(TIME_FORMAT)


def key_view(key: Mapping[str, Any]) -> dict[str, Any]:
    """The data-plane object Azure Policy evaluates for a key, from its management-plane GET body."""
    props = key.get("properties") or {}
    attrs = props.get("attributes") or {}
    view: dict[str, Any] = {"id": key.get("id"), "name": key.get("name"), "type": KEY_DATA}
    for source, target in (("kty", "keyType"), ("keySize", "keySize"), ("curveName", "ellipticCurveName")):
        if props.get(source) is not None:
            view[target] = props[source]
    if isinstance(props.get("keyOps"), list):
        view["keyOperations"] = list(props["keyOps"])
    out: dict[str, Any] = {}
    for k in ("enabled", "recoveryLevel"):
        if attrs.get(k) is not None:
            out[k] = attrs[k]
    for source, target in _ATTRIBUTES.items():
        when = iso(attrs.get(source))
        if when is not None:
            out[target] = when
    view["attributes"] = out
    policy = props.get("rotationPolicy")
    if isinstance(policy, Mapping):
        expiry = (policy.get("attributes") or {}).get("expiryTime")
        view["rotationPolicy"] = {"expiryTime": expiry} if expiry else {}
        scheduled = scheduled_rotation(policy, attrs)
        if scheduled is not None:
            view["scheduledRotationDate"] = scheduled
    return view


def scheduled_rotation(policy: Mapping[str, Any], attrs: Mapping[str, Any]) -> str | None:
    """When the rotation policy rotates the key next: its `Rotate` action's `timeAfterCreate` after the current
    version's creation, or `timeBeforeExpiry` before its expiry (Learn, "Configure cryptographic key auto-rotation
    in Azure Key Vault", rotation policy). None without a Rotate action. # unverified: that Azure Policy's
    `scheduledRotationDate` is computed this way (no Microsoft document defines it)."""
    for action in policy.get("lifetimeActions") or []:
        if str((action.get("action") or {}).get("type", "")).lower() != "rotate":
            continue
        trigger = action.get("trigger") or {}
        created, expires = attrs.get("created"), attrs.get("exp")
        after = duration(trigger.get("timeAfterCreate"))
        if after is not None and isinstance(created, int | float):
            return (datetime.fromtimestamp(created, UTC) + after).strftime(TIME_FORMAT)
        before = duration(trigger.get("timeBeforeExpiry"))
        if before is not None and isinstance(expires, int | float):
            return (datetime.fromtimestamp(expires, UTC) - before).strftime(TIME_FORMAT)
    return None


_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$", re.IGNORECASE)


def duration(text: Any) -> timedelta | None:
    """An ISO 8601 duration of the rotation policy (`P90D`, `P2Y`, `P1Y6M`): years as 365 days and months as 30
    (# unverified: Key Vault's own calendar arithmetic is not documented)."""
    m = _DURATION.match(str(text or ""))
    if not m or not any(m.groups()):
        return None
    years, months, days = (int(g or 0) for g in m.groups())
    return timedelta(days=years * 365 + months * 30 + days)


def evaluated(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a `Microsoft.KeyVault.Data` definition evaluates for `resource`: the data-plane view of a key (a body
    already of the data-plane type is itself)."""
    kind = str(resource.get("type", "")).lower()
    return key_view(resource) if kind == KEY.lower() else resource
