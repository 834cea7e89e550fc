"""Give a key a rotation policy: a new version every `maximumAge`, each version expiring after `expiryTime`.

Key Vault refuses a policy whose rotation is less than 7 days after creation or less than 7 days before expiry, or
whose expiry is under 28 days (Microsoft Learn, "Configure cryptographic key auto-rotation in Azure Key Vault":
"Rotation Time ... the minimum value is 7 days from creation and 7 days from expiration time"; the SDKs' ExpiresIn:
"It should be at least 28 days"). The owner's rotation time and expiry are kept; a value the bot chooses (the
policy's `maximumAge`, the notice before expiry) is shortened to fit them; a policy the owner's values cannot make
valid is left alone, with the reason."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import KEYVAULT_DATA_API, get, name_of, parent_of

NOTIFY_BEFORE_EXPIRY = "P30D"
MIN_SPAN = 7  # days: after creation, and before expiry
MIN_EXPIRY = 28  # days
_UNITS = {"Y": "year", "M": "month", "W": "week", "D": "day"}
_DAYS = {"Y": 365, "M": 30, "W": 7, "D": 1}  # as Key Vault counts them


def days(duration: str) -> float | None:
    """An ISO 8601 duration in days (P1Y6M, P90D, PT36H); None when it is not one."""
    m = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", duration)
    if not m or not any(m.groups()) or duration.endswith("T"):
        return None
    y, mo, w, d, h, mi, sec = (int(g) if g else 0 for g in m.groups())
    return y * 365 + mo * 30 + w * 7 + d + h / 24 + mi / 1440 + sec / 86400


def human(duration: str) -> str:
    """'P1Y6M' -> '1 year 6 months'; anything else (times, odd forms) is returned as written."""
    m = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?", duration)
    if not m or not any(m.groups()):
        return duration
    parts = [(n, u) for n, u in zip(m.groups(), _UNITS.values(), strict=True) if n]
    return " ".join(f"{n} {u}{'' if n == '1' else 's'}" for n, u in parts)


def _action(policy: Any, kind: str) -> Mapping[str, Any] | None:
    actions = get(policy, "lifetimeActions") or []
    return next((a for a in actions if str(get(a, "action.type")).lower() == kind), None)


def _vault_uri(key: Mapping[str, Any], ctx: PlanContext) -> str | None:
    vault = ctx.related(parent_of(str(key["id"])))
    uri = get(vault, "properties.vaultUri") if vault else None
    if not uri:  # properties.keyUri is https://<vault>.vault.azure.net:443/keys/<name>
        head, sep, _ = str(get(key, "properties.keyUri") or "").partition("/keys/")
        uri = head.replace(":443", "") + "/" if sep else None
    return str(uri).rstrip("/") + "/" if uri else None


@register("key-rotation-policy")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    key_id, name = str(resource["id"]), name_of(str(resource["id"]))
    vault_uri = _vault_uri(resource, ctx)
    if vault_uri is None:
        raise FixDeclined(
            SkipReason.CANNOT_READ, f"the vault URI of key {name} is unknown (neither the vault nor keyUri read)"
        )
    current = get(resource, "properties.rotationPolicy") or {}
    unread = get(resource, "cryptward.rotationPolicyUnread")
    if not current and unread:
        raise FixDeclined(
            SkipReason.CANNOT_READ,
            f"key {name}: the management plane shows no rotation policy and the data plane's could not be read "
            f"({unread}); Cryptward does not replace a policy it cannot see",
        )
    owner_rotate = get(_action(current, "rotate"), "trigger.timeAfterCreate")
    current_expiry = get(current, "attributes.expiryTime")
    expiry = str(current_expiry or params["expiryTime"])
    rotate_after, notify = _fitted(name, str(owner_rotate or params["maximumAge"]), bool(owner_rotate), expiry)
    actions = [
        {"trigger": {"timeAfterCreate": rotate_after}, "action": {"type": "Rotate"}},
        {"trigger": {"timeBeforeExpiry": notify}, "action": {"type": "Notify"}},
    ]
    body = {"lifetimeActions": actions, "attributes": {"expiryTime": expiry}}
    return [
        Change(
            resource_id=key_id,
            summary=(
                f"Give key {name} a rotation policy: Key Vault creates a new version {human(rotate_after)} after "
                f"each version is created, each version expires {human(expiry)} after it is created, and a notice "
                f"goes out {human(notify)} before expiry."
            ),
            operation=Operation("PUT", f"{vault_uri}keys/{name}/rotationpolicy", KEYVAULT_DATA_API, body, "keyvault"),
            before={"lifetimeActions": get(current, "lifetimeActions"), "attributes.expiryTime": current_expiry},
            after={"lifetimeActions": actions, "attributes.expiryTime": expiry},
        )
    ]


def _fitted(name: str, rotate_after: str, owners: bool, expiry: str) -> tuple[str, str]:
    """The rotation time and the notice before expiry, valid for Key Vault with `expiry`: the rotation at least 7
    days after creation and 7 before expiry, the notice at least 7 days and at most `expiry` - 7 days. The owner's
    rotation (`owners`) is kept or the fix declines; the policy's own is shortened to fit."""
    span, rotate = days(expiry), days(rotate_after)
    if span is None or rotate is None:
        bad = expiry if span is None else rotate_after
        raise FixDeclined(SkipReason.UNSUPPORTED, f"key {name}: {bad!r} is not an ISO 8601 duration")
    if span < MIN_EXPIRY:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"key {name}: its expiry after {human(expiry)} is under Key Vault's minimum of {MIN_EXPIRY} days, and "
            "Cryptward keeps the owner's expiry; set one of at least 28 days",
        )
    latest = int(span) - MIN_SPAN  # whole days, at least 21
    if rotate > latest:
        if owners:
            raise FixDeclined(
                SkipReason.UNSUPPORTED,
                f"key {name}: its rotation {human(rotate_after)} after creation is not at least {MIN_SPAN} days "
                f"before the expiry {human(expiry)} (Key Vault refuses such a policy), and Cryptward changes neither "
                "the owner's rotation nor a chosen expiry to fit it; shorten the rotation or set a longer expiry",
            )
        rotate_after = f"P{latest}D"
    elif rotate < MIN_SPAN:
        if owners:
            raise FixDeclined(
                SkipReason.UNSUPPORTED,
                f"key {name}: its rotation {human(rotate_after)} after creation is under Key Vault's minimum of "
                f"{MIN_SPAN} days",
            )
        rotate_after = f"P{MIN_SPAN}D"
    notify_days = days(NOTIFY_BEFORE_EXPIRY) or 0
    notify = NOTIFY_BEFORE_EXPIRY if notify_days <= latest else f"P{latest}D"
    return rotate_after, notify
