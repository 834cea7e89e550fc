"""Let a disk encryption set follow its key's latest version (within an hour of each rotation).

Azure requires purge protection on the key's vault for this, so the change depends on the vault's purge-protection
change when the vault lacks it: it waits for it, needs the same approval, and is blocked when no such change is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, Ref, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import DES_API, cryptward, get, name_of, same_subscription, versionless

ROTATION = "properties.rotationToLatestKeyVersionEnabled"
KEY_URL = "properties.activeKey.keyUrl"


def key_vault(des: Mapping[str, Any], ctx: PlanContext) -> Mapping[str, Any] | None:
    """The vault of the DES's active key: injected by the reader, else among the related resources."""
    return cryptward(des, "keyVault") or ctx.related(get(des, "properties.activeKey.sourceVault.id"))


@register("des-auto-rotation")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    des_id, name = str(resource["id"]), name_of(str(resource["id"]))
    key_url = get(resource, KEY_URL)
    vault = key_vault(resource, ctx)
    if not key_url or vault is None:
        raise FixDeclined(
            SkipReason.CANNOT_READ, f"the active key or its key vault of disk encryption set {name} was not read"
        )
    # The key URL stays the current, versioned one: DiskRP requires the version segment whatever the rotation flag
    # (KeyForDiskEncryptionSet.keyUrl in diskEncryptionSet.json); a versionless URL is refused with 400.
    active_key: dict[str, Any] = {"keyUrl": str(key_url)}
    source = get(resource, "properties.activeKey.sourceVault")
    if source and same_subscription(des_id, str(vault["id"])):
        # DiskRP: sourceVault "cannot be used if the KeyVault subscription is not the same as the Disk Encryption Set
        # subscription" (KeyForDiskEncryptionSet.sourceVault, DiskRP stable 2025-01-02 diskEncryptionSet.json).
        active_key["sourceVault"] = dict(source)
    needs: tuple[Ref, ...] = ()
    if get(vault, "properties.enablePurgeProtection") is not True:
        needs = (Ref(str(vault["id"]), "kv-purge-protection"),)
    body = {"properties": {"rotationToLatestKeyVersionEnabled": True, "activeKey": active_key}}
    return [
        Change(
            resource_id=des_id,
            summary=(
                f"Let disk encryption set {name} use the newest version of key {name_of(versionless(str(key_url)))} "
                "automatically, within an hour of each rotation, instead of a fixed version."
            ),
            operation=Operation("PATCH", des_id, DES_API, body),
            before={ROTATION: get(resource, ROTATION), KEY_URL: key_url},
            after={ROTATION: True, KEY_URL: active_key["keyUrl"]},
            verify={ROTATION: True},
            needs=needs,
        )
    ]
