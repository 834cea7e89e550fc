"""The Key Vault key store shared by the management plane (`vaults/keys`), the data plane (`/kv/...`) and the
providers that use keys (compute's disk encryption sets, events).

Contract (other providers rely on it): `state.table("keyvault.keys")` maps f"{vault_id.lower()}/{key_name.lower()}"
to {"name", "vaultId", "versions": [version entries, oldest first], "rotationPolicy": dict | None}. A version entry is
{"version": 32 hex, "kty", "keySize", "crv", "keyOps", "n", "e", "attributes": {"enabled", "created", "updated",
"exp", "nbf", "recoveryLevel"}, "tags"}. EC versions also carry "x" and "y". No real cryptography: the public key
material only has the right shape (an RSA modulus of the right length with its top bit set, e = AQAB).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sandbox.state import State

TABLE = "keyvault.keys"
RSA_SIZES = (2048, 3072, 4096)
CURVES = {"P-256": 32, "P-384": 48, "P-521": 66, "P-256K": 32}
KEY_TYPES = ("RSA", "RSA-HSM", "EC", "EC-HSM")
RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
EC_OPS = ["sign", "verify"]

NewVersionHook = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]
_NEW_VERSION_HOOKS: list[NewVersionHook] = []


class KeyStoreError(ValueError):
    """A key request Key Vault refuses: (status, code, message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def on_new_version(callback: NewVersionHook) -> NewVersionHook:
    """Call `callback(vault_body, key_entry, version_entry)` whenever a key gets a new version (create, rotate)."""
    _NEW_VERSION_HOOKS.append(callback)
    return callback


def keys(state: State) -> dict[str, Any]:
    return state.table(TABLE)


def key_ref(vault_id: str, key_name: str) -> str:
    return f"{vault_id.lower()}/{key_name.lower()}"


def get_key(state: State, vault_id: str, key_name: str) -> dict[str, Any] | None:
    return keys(state).get(key_ref(vault_id, key_name))


def keys_of(state: State, vault_id: str) -> list[dict[str, Any]]:
    prefix = vault_id.lower() + "/"
    return [entry for ref, entry in keys(state).items() if ref.startswith(prefix)]


def drop_keys_of(state: State, vault_id: str) -> None:
    prefix = vault_id.lower() + "/"
    for ref in [r for r in keys(state) if r.startswith(prefix)]:
        del keys(state)[ref]


def latest_version(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["versions"][-1]


def find_version(entry: dict[str, Any], version: str) -> dict[str, Any] | None:
    wanted = version.lower()
    return next((v for v in entry["versions"] if v["version"] == wanted), None)


def recovery_level(vault: dict[str, Any]) -> str:
    props = vault.get("properties", {})
    if props.get("enableSoftDelete") is False:
        return "Purgeable"
    return "Recoverable" if props.get("enablePurgeProtection") else "Recoverable+Purgeable"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _material(kty: str, size: int | None, crv: str | None) -> dict[str, str]:
    if kty.startswith("RSA"):
        modulus = bytearray(secrets.token_bytes((size or 2048) // 8))
        modulus[0] |= 0x80
        modulus[-1] |= 0x01
        return {"n": _b64url(bytes(modulus)), "e": "AQAB"}
    length = CURVES[crv or "P-256"]
    return {"x": _b64url(secrets.token_bytes(length)), "y": _b64url(secrets.token_bytes(length))}


def validate_spec(kty: Any, key_size: Any, crv: Any) -> tuple[str, int | None, str | None]:
    """Normalise (kty, key_size, crv) the way Key Vault defaults them, or raise KeyStoreError (400 BadParameter)."""
    if kty not in KEY_TYPES:
        raise KeyStoreError(
            400, "BadParameter", f"Property has invalid value. The key type '{kty}' is not supported by this operation."
        )
    if kty.startswith("RSA"):
        size = 2048 if key_size is None else key_size
        if size not in RSA_SIZES:
            raise KeyStoreError(400, "BadParameter", f"The key size {size} is not valid for key type '{kty}'.")
        return kty, int(size), None
    curve = crv or "P-256"
    if curve not in CURVES:
        raise KeyStoreError(400, "BadParameter", f"The curve name '{curve}' is not valid.")
    return kty, None, curve


def add_version(
    state: State,
    vault: dict[str, Any],
    key_name: str,
    *,
    kty: str,
    key_size: int | None,
    crv: str | None,
    key_ops: list[str] | None = None,
    enabled: bool = True,
    exp: int | None = None,
    nbf: int | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a key (or a new version of it) and tell the new-version listeners. Returns (entry, version)."""
    table = keys(state)
    ref = key_ref(vault["id"], key_name)
    entry = table.get(ref)
    if entry is None:
        entry = {"name": key_name, "vaultId": vault["id"], "versions": [], "rotationPolicy": None}
        table[ref] = entry
    now = int(state.clock.timestamp())
    version: dict[str, Any] = {
        "version": secrets.token_hex(16),
        "kty": kty,
        "keySize": key_size,
        "crv": crv,
        "keyOps": list(key_ops) if key_ops else list(RSA_OPS if kty.startswith("RSA") else EC_OPS),
        **_material(kty, key_size, crv),
        "attributes": {
            "enabled": enabled,
            "created": now,
            "updated": now,
            "exp": exp,
            "nbf": nbf,
            "recoveryLevel": recovery_level(vault),
        },
        "tags": dict(tags or {}),
    }
    entry["versions"].append(version)
    for hook in list(_NEW_VERSION_HOOKS):
        hook(vault, entry, version)
    return entry, version


# -- ISO 8601 durations ------------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"P(?!$)(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(text: Any) -> timedelta:
    """PnYnMnWnDTnHnMnS as a timedelta (a year is 365 days, a month 30, as Key Vault counts them). ValueError if
    it is not one."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"'{text}' is not an ISO 8601 duration")
    g = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(
        days=g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"], hours=g["h"], minutes=g["mi"], seconds=g["s"]
    )


# -- rotation policies -------------------------------------------------------------------------------------------

DEFAULT_POLICY_ACTIONS = [{"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}}]


def validate_policy(body: Any) -> dict[str, Any]:
    """A rotation policy PUT body checked and normalised: {"lifetimeActions": [...], "attributes": {...}}.

    Key Vault's rules (Microsoft Learn, https://learn.microsoft.com/azure/key-vault/keys/how-to-configure-key-rotation:
    "Rotation Time - key rotation interval, the minimum value is 7 days from creation and 7 days from expiration
    time"; expiryTime "should be at least 28 days", the SDKs' KeyRotationPolicy.ExpiresIn): a trigger at least 7
    days, and at most expiryTime - 7 days. The status and code (400 BadParameter) are Key Vault's for a bad
    parameter; the wording of each message  # unverified (no recorded refusal found)."""
    if not isinstance(body, dict):
        raise KeyStoreError(400, "BadParameter", "The rotation policy is missing or not valid JSON.")
    attrs = body.get("attributes") or {}
    expiry_text = attrs.get("expiryTime")
    expiry = _duration_or_error(expiry_text, "expiryTime") if expiry_text is not None else None
    if expiry is not None and expiry < timedelta(days=28):
        raise KeyStoreError(400, "BadParameter", "The expiryTime of a key rotation policy must be at least 28 days.")
    actions_in = body.get("lifetimeActions") or []
    if not isinstance(actions_in, list):
        raise KeyStoreError(400, "BadParameter", "lifetimeActions must be an array.")
    actions, seen = [], set()
    for item in actions_in:
        kind = str(((item or {}).get("action") or {}).get("type", "")).lower()
        if kind not in ("rotate", "notify"):
            raise KeyStoreError(400, "BadParameter", f"Invalid lifetime action type '{kind}'. Valid: Rotate, Notify.")
        if kind in seen:
            raise KeyStoreError(400, "BadParameter", f"Only one '{kind.title()}' lifetime action is allowed.")
        seen.add(kind)
        trigger = (item or {}).get("trigger") or {}
        after, before = trigger.get("timeAfterCreate"), trigger.get("timeBeforeExpiry")
        if (after is None) == (before is None):
            raise KeyStoreError(
                400,
                "BadParameter",
                "A lifetime action trigger must have exactly one of timeAfterCreate, timeBeforeExpiry.",
            )
        if kind == "notify" and after is not None:
            raise KeyStoreError(400, "BadParameter", "A 'Notify' lifetime action only supports timeBeforeExpiry.")
        name, text = ("timeAfterCreate", after) if after is not None else ("timeBeforeExpiry", before)
        span = _duration_or_error(text, name)
        if span < timedelta(days=7):
            raise KeyStoreError(400, "BadParameter", f"The {name} of a lifetime action must be at least 7 days.")
        if expiry is not None and span > expiry - timedelta(days=7):
            raise KeyStoreError(
                400, "BadParameter", f"The {name} of a lifetime action must be at least 7 days shorter than expiryTime."
            )
        actions.append({"trigger": {name: text}, "action": {"type": "Rotate" if kind == "rotate" else "Notify"}})
    out_attrs = {"expiryTime": expiry_text} if expiry_text is not None else {}
    return {"lifetimeActions": actions, "attributes": out_attrs}


def _duration_or_error(text: Any, name: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError:
        raise KeyStoreError(
            400, "BadParameter", f"The {name} '{text}' is not a valid ISO 8601 duration (e.g. P90D, P1Y)."
        ) from None
