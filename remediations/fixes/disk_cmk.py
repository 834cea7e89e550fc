"""Encrypt a managed disk with a customer-managed key through the configured disk encryption set of its subscription
and region.

Never on a disk that is or was encrypted with Azure Disk Encryption (Azure refuses it), never on a disk with
incremental snapshots (Azure: "A disk and all of its associated incremental snapshots must have the same disk
encryption set"), never to change a disk that already uses a customer-managed key, and only while its VM is
deallocated. The change can be undone: Microsoft's current docs let a disk go back to a platform-managed key, except
a disk with incremental snapshots ("If this feature is enabled for a disk with incremental snapshots, it can't be
disabled on that disk or its snapshots"; both under Restrictions at
https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import DEALLOCATED, Change, Operation, PlanContext, Ref, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import (
    DISK_API,
    cryptward,
    disk_ade_trace,
    get,
    name_of,
    same,
    subscription_of,
    vm_ade_trace,
)

PLATFORM_KEY = "EncryptionAtRestWithPlatformKey"
TYPE = "properties.encryption.type"
DES = "properties.encryption.diskEncryptionSetId"
# diskState values of a disk whose VM is running: its encryption can only change once the VM is deallocated.
ATTACHED_RUNNING = ("attached",)
RESTRICTIONS = "https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions"


def configured_set(resource: Mapping[str, Any], wanted: str, ctx: PlanContext) -> str:
    """The disk encryption set of type `wanted` the operator configured for the resource's subscription and region
    (CRYPTWARD_DES_MAP); FixDeclined when there is none. Azure: a disk and its set must be "in the same subscription
    and region" (RESTRICTIONS)."""
    region, subscription = str(resource.get("location", "")), subscription_of(str(resource.get("id", "")))
    des_id = ctx.settings.disk_encryption_set(region, wanted, subscription)
    if not des_id:
        raise FixDeclined(
            SkipReason.NOT_CONFIGURED,
            f"no disk encryption set of type {wanted} is configured for subscription {subscription} in {region} "
            "(a disk can only use a set of its own subscription and region)",
        )
    return str(des_id)


@register("disk-cmk")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    disk_id, name = str(resource["id"]), name_of(str(resource["id"]))
    wanted = str(params["encryptionType"])
    vm = ctx.related(resource.get("managedBy"))
    ade = disk_ade_trace(resource) or (vm_ade_trace(vm) if vm else None)
    if ade:
        raise FixDeclined(SkipReason.ADE_HISTORY, f"{ade}; Azure cannot add a customer-managed key to such a disk")
    current = get(resource, TYPE) or PLATFORM_KEY
    if not same(current, PLATFORM_KEY):
        raise FixDeclined(
            SkipReason.IMMUTABLE,
            f"disk {name} already uses {current}, and a disk's customer-managed key encryption cannot be changed",
        )
    snapshots = [str(i) for i in cryptward(resource, "incrementalSnapshots") or []]
    if snapshots:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"disk {name} has {len(snapshots)} incremental snapshot(s) ({', '.join(name_of(i) for i in snapshots)}), "
            "and Azure requires a disk and all of its incremental snapshots to have the same disk encryption set "
            f"({RESTRICTIONS}): its encryption cannot change while they exist",
        )
    des_id = configured_set(resource, wanted, ctx)
    body = {"properties": {"encryption": {"type": wanted, "diskEncryptionSetId": des_id}}}
    attached = str(get(resource, "properties.diskState") or "").lower() in ATTACHED_RUNNING
    when = f" once VM {name_of(str(resource.get('managedBy')))} is deallocated" if attached else ""
    return [
        Change(
            resource_id=disk_id,
            summary=(
                f"Encrypt disk {name} with the customer-managed key of disk encryption set {name_of(des_id)} "
                f"({wanted}){when}. It can go back to a platform-managed key later, unless it then has incremental "
                f"snapshots ({RESTRICTIONS})."
            ),
            operation=Operation("PATCH", disk_id, DISK_API, body),
            before={TYPE: get(resource, TYPE), DES: get(resource, DES)},
            after={TYPE: wanted, DES: des_id},
            irreversible=False,  # CMK -> platform key is allowed (see the module's docstring)
            requires=(DEALLOCATED,) if attached else (),
            needs=(Ref(des_id, "des-key-access", required=False),),
        )
    ]
