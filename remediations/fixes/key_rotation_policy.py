"""Give a key a rotation policy: a new version every `maximumAge`, each version expiring after `expiryTime`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import KEYVAULT_DATA_API, get, name_of, parent_of

NOTIFY_BEFORE_EXPIRY = "P30D"
_UNITS = {"Y": "year", "M": "month", "W": "week", "D": "day"}


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
    rotate = _action(current, "rotate")
    rotate_after = get(rotate, "trigger.timeAfterCreate") or str(params["maximumAge"])
    current_expiry = get(current, "attributes.expiryTime")
    expiry = current_expiry or str(params["expiryTime"])
    actions = [
        {"trigger": {"timeAfterCreate": rotate_after}, "action": {"type": "Rotate"}},
        {"trigger": {"timeBeforeExpiry": NOTIFY_BEFORE_EXPIRY}, "action": {"type": "Notify"}},
    ]
    body = {"lifetimeActions": actions, "attributes": {"expiryTime": expiry}}
    return [
        Change(
            resource_id=key_id,
            summary=(
                f"Give key {name} a rotation policy: Key Vault creates a new version {human(rotate_after)} after "
                f"each version is created, each version expires {human(expiry)} after it is created, and a notice "
                f"goes out {human(NOTIFY_BEFORE_EXPIRY)} before expiry."
            ),
            operation=Operation("PUT", f"{vault_uri}keys/{name}/rotationpolicy", KEYVAULT_DATA_API, body, "keyvault"),
            before={"lifetimeActions": get(current, "lifetimeActions"), "attributes.expiryTime": current_expiry},
            after={"lifetimeActions": actions, "attributes.expiryTime": expiry},
        )
    ]
