"""Encrypt a managed disk with a customer-managed key through the configured disk encryption set of its region.

Never on a disk that is or was encrypted with Azure Disk Encryption (Azure refuses it), never to change a disk that
already uses a customer-managed key (the choice cannot be changed), and only while its VM is deallocated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import DEALLOCATED, Change, Operation, PlanContext, Ref, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import DISK_API, disk_ade_trace, get, name_of, same, subscription_of, vm_ade_trace

PLATFORM_KEY = "EncryptionAtRestWithPlatformKey"
TYPE = "properties.encryption.type"
DES = "properties.encryption.diskEncryptionSetId"
# diskState values of a disk whose VM is running: its encryption can only change once the VM is deallocated.
ATTACHED_RUNNING = ("attached",)


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
    region, subscription = str(resource.get("location", "")), subscription_of(disk_id)
    des_id = ctx.settings.disk_encryption_set(region, wanted, subscription)
    if not des_id:
        # Azure: a disk and its set must be "in the same subscription and region"
        # (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions)
        raise FixDeclined(
            SkipReason.NOT_CONFIGURED,
            f"no disk encryption set of type {wanted} is configured for subscription {subscription} in {region} "
            "(a disk can only use a set of its own subscription and region)",
        )
    body = {"properties": {"encryption": {"type": wanted, "diskEncryptionSetId": des_id}}}
    attached = str(get(resource, "properties.diskState") or "").lower() in ATTACHED_RUNNING
    when = f" once VM {name_of(str(resource.get('managedBy')))} is deallocated" if attached else ""
    return [
        Change(
            resource_id=disk_id,
            summary=(
                f"Encrypt disk {name} with the customer-managed key of disk encryption set {name_of(des_id)} "
                f"({wanted}){when}; this choice cannot be changed later."
            ),
            operation=Operation("PATCH", disk_id, DISK_API, body),
            before={TYPE: get(resource, TYPE), DES: get(resource, DES)},
            after={TYPE: wanted, DES: des_id},
            irreversible=True,
            requires=(DEALLOCATED,) if attached else (),
            needs=(Ref(des_id, "des-key-access", required=False),),
        )
    ]
