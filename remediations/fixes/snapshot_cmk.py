"""Encrypt a full snapshot on a platform-managed key with the customer-managed key its source disk uses: the source's
encryption type and disk encryption set, written with one PATCH of the snapshot's `encryption`.

Azure allows it: the Azure CLI's `az snapshot update --encryption-type EncryptionAtRestWithCustomerKey
--disk-encryption-set ...` re-PUT a platform-key full snapshot with a set and Azure answered 202, the snapshot then
using the set (Azure/azure-cli, src/azure-cli/azure/cli/command_modules/vm/tests/latest/recordings/
test_disk_encryption_set_snapshot.yaml; tests/conformance/recordings/snapshots/cli-snapshot-get-des-2021-12-01.json).
The PATCH is DiskRP's Snapshots_Update, whose SnapshotUpdateProperties carry `encryption` (azure-rest-api-specs,
specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/2025-01-02/snapshot.json; the SDK's
SnapshotUpdateProperties.encryption), as disk-cmk's Disks_Update: it sends only what changes, so nothing the owner
set meanwhile is written back.

Never an incremental snapshot ("A disk and all of its associated incremental snapshots must have the same disk
encryption set": they follow their disk, disk-cmk), never one that is or was encrypted with Azure Disk Encryption,
never one already on a customer-managed key (and so never double encryption down to one key: the applier refuses
that too), never while it is exported (`diskState` ActiveSAS) or still being copied (`completionPercent` below 100),
and only with a set of the snapshot's own subscription and region ("Most resources related to your customer-managed
keys (disk encryption sets, VMs, disks, and snapshots) must be in the same subscription and region") whose identity
can use its key (its `keyAccess`, as des-key-access reads it). Both quotes: RESTRICTIONS.

Who decides: the set is never named by the snapshot's owner. It is the one the source disk uses, as the bot reads that
disk from `creationData.sourceResourceId`, which Azure records when it makes the snapshot and nobody can change; tags
and the snapshot's body name nothing. The snapshot's owner may not be the disk's owner, though: the write puts the
disk owner's key over a snapshot in another resource group, a link Azure checks (`diskEncryptionSets/read` on the set)
and its owner may not be able to make. So when the snapshot and the set are in different resource groups and the set
is not the one the operator configured for the snapshot's subscription and region (CRYPTWARD_DES_MAP, disk-cmk's
choice, which the operator made for every disk there), a person approves it, whatever the policy's mode, as
des-key-access does for a set and a vault in different resource groups. docs/threat-model.md says what remains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import APPROVAL, Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.fixes.des_key_access import _group, _same_group
from remediations.fixes.disk_cmk import DES, PLATFORM_KEY, RESTRICTIONS, TYPE
from remediations.resources import DISK_API, cryptward, disk_ade_trace, get, name_of, same, subscription_of

CMK_TYPES = ("EncryptionAtRestWithCustomerKey", "EncryptionAtRestWithPlatformAndCustomerKeys")
# diskState values of a snapshot with a SAS to read it out (DiskRP DiskState: "The disk currently has an Active SAS
# Uri associated with it"), and `completionPercent` ("Percentage complete for the background copy when a resource is
# created via the CopyStart operation"; both from DiskRP's spec, as azure-mgmt-compute's models carry them).
# Cryptward leaves an export or a copy alone: whether DiskRP refuses an encryption change then is # unverified.
EXPORTED = ("activesas", "activesasfrozen")


def _region(resource: Mapping[str, Any]) -> str:
    return str(resource.get("location") or "").replace(" ", "").lower()


def _guards(snapshot: Mapping[str, Any], name: str) -> None:
    """FixDeclined when the snapshot itself rules the change out."""
    if get(snapshot, "properties.incremental") is True:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"snapshot {name} is incremental, and Azure requires a disk and all of its incremental snapshots to have "
            f"the same disk encryption set ({RESTRICTIONS}): it follows its disk (disk-cmk)",
        )
    if disk_ade_trace(snapshot):  # its encryptionSettingsCollection: made from a disk encrypted with ADE
        raise FixDeclined(
            SkipReason.ADE_HISTORY,
            f"snapshot {name} carries Azure Disk Encryption settings, and Azure cannot add a customer-managed key to "
            "what is or was encrypted with Azure Disk Encryption (as for disks, disk-cmk)",
        )
    current = get(snapshot, TYPE) or PLATFORM_KEY
    if not same(current, PLATFORM_KEY):
        raise FixDeclined(
            SkipReason.IMMUTABLE,
            f"snapshot {name} already uses {current}: Cryptward never changes a customer-managed key's encryption",
        )
    state = str(get(snapshot, "properties.diskState") or "")
    if state.lower() in EXPORTED:
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"snapshot {name} is being exported (diskState {state}): Cryptward changes it once its access is revoked",
        )
    done = get(snapshot, "properties.completionPercent")
    if isinstance(done, int | float) and done < 100:
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"snapshot {name} is still being copied ({done}% done): Cryptward changes it once the copy completes",
        )


def _source_set(snapshot: Mapping[str, Any], name: str, ctx: PlanContext) -> tuple[str, Mapping[str, Any], str]:
    """The source's encryption type and disk encryption set (its id and body), or FixDeclined."""
    source = cryptward(snapshot, "sourceEncryption") or {}
    given, des_id = str(source.get("type") or ""), str(source.get("diskEncryptionSetId") or "")
    wanted = next((t for t in CMK_TYPES if same(t, given)), "")  # Azure's enums compare without case
    if not wanted or not des_id:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"the source of snapshot {name} uses {given or 'no known encryption'}, not a disk encryption set "
            f"({' or '.join(CMK_TYPES)}) Cryptward can give the snapshot",
        )
    des = ctx.related(des_id)
    if des is None:
        raise FixDeclined(
            SkipReason.CANNOT_READ,
            f"disk encryption set {name_of(des_id)} of the source of snapshot {name} was not read (a sweep reads it)",
        )
    snap_sub, des_sub = subscription_of(str(snapshot["id"])), subscription_of(des_id)
    if des_sub.lower() != snap_sub.lower() or _region(des) != _region(snapshot):
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"disk encryption set {name_of(des_id)} is in {des.get('location')} (subscription {des_sub}) and snapshot "
            f"{name} in {snapshot.get('location')} (subscription {snap_sub}): Azure requires a snapshot and its set "
            f"in the same subscription and region ({RESTRICTIONS})",
        )
    access = cryptward(des, "keyAccess")
    if not isinstance(access, Mapping):
        raise FixDeclined(
            SkipReason.CANNOT_READ,
            f"whether disk encryption set {name_of(des_id)} can use its key was not read: Cryptward does not act on it",
        )
    if access.get("missing"):
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"disk encryption set {name_of(des_id)} cannot use its key yet (its identity lacks access: des-key-access "
            f"grants it), and Azure refuses a snapshot on a set that cannot: snapshot {name} waits for that",
        )
    return wanted, des, des_id


def _why_approval(snapshot: Mapping[str, Any], des_id: str, wanted: str, ctx: PlanContext) -> str:
    """Why a person must approve ('' when the set shares the snapshot's resource group or the operator chose it)."""
    snap_id = str(snapshot["id"])
    configured = ctx.settings.disk_encryption_set(_region(snapshot), wanted, subscription_of(snap_id))
    if _same_group(snap_id, des_id) or (configured and same(str(configured), des_id)):
        return ""
    return (
        f"Snapshot {name_of(snap_id)} in resource group {_group(snap_id)} would use disk encryption set "
        f"{name_of(des_id)} of resource group {_group(des_id)} (its source disk's): an approver must agree, since the "
        "snapshot's owner may not be the key's. "
    )


@register("snapshot-cmk")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    snap_id, name = str(resource["id"]), name_of(str(resource["id"]))
    _guards(resource, name)
    wanted, _des, des_id = _source_set(resource, name, ctx)
    asks = _why_approval(resource, des_id, wanted, ctx)
    source = name_of(str(get(resource, "properties.creationData.sourceResourceId") or ""))
    body = {"properties": {"encryption": {"type": wanted, "diskEncryptionSetId": des_id}}}
    return [
        Change(
            resource_id=snap_id,
            summary=(
                f"{asks}Encrypt snapshot {name} with the customer-managed key of disk encryption set {name_of(des_id)} "
                f"({wanted}), as its source {source} is."
            ),
            operation=Operation("PATCH", snap_id, DISK_API, body),
            before={TYPE: get(resource, TYPE), DES: get(resource, DES)},
            after={TYPE: wanted, DES: des_id},
            irreversible=False,  # as disk-cmk; that a full snapshot can go back to a platform key is # unverified
            requires=(APPROVAL,) if asks else (),
        )
    ]
